//! A 1 GiB upload echoed back as it streams, within the default 50 ms of guest CPU.
//!
//! A test binary of its own: guest CPU is measured on the wall clock while the guest
//! runs, so sibling tests competing for the machine's two cores would inflate it.

mod common;

use common::*;
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_1_gib_upload_is_echoed_back_streaming() {
    const LEN: u64 = 1 << 30;
    // The checker itself must catch a wrong byte.
    assert_eq!(check_pattern(5, &[5, 6, 0]), Err(7));
    let app = app_dir_for(
        &guest("echo"),
        // The default 50 ms of CPU: the SDK forwards the body inside the host.
        "[limits]\nmax_request_body = \"2GiB\"\nwall_time = \"300s\"\n",
    );
    let verge = Verge::serve(&[app.path().to_str().unwrap(), "--no-build"]);
    let baseline = verge.peak_rss();
    let resp = client()
        .post(verge.url("/"))
        .body(reqwest::Body::wrap_stream(pattern_stream(LEN)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = request_id(&resp);

    // Compare what comes back with what was sent, chunk by chunk, without keeping it.
    let mut received: u64 = 0;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap_or_else(|e| {
            panic!(
                "the body broke after {received} bytes: {e}; the server logged:\n{}",
                verge.stdout.all().join("\n")
            )
        });
        if let Err(at) = check_pattern(received, &chunk) {
            panic!("byte {at} differs");
        }
        received += chunk.len() as u64;
    }
    assert_eq!(received, LEN);
    let access = verge.access_line(&id);
    assert_eq!(access["outcome"], "ok");
    assert!(
        access["guest_cpu_us"].as_u64().unwrap() < 50_000,
        "{access}"
    );
    let growth = verge.peak_rss().saturating_sub(baseline);
    assert!(
        growth < 256 << 20,
        "the server's peak RSS grew by {growth} bytes: the body was buffered"
    );
}
