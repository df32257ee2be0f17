//! Reading an object of a JetStream object store whole, without the client's object
//! reader: that one creates a consumer per read that the server keeps for 30 s
//! (nats-server 2.15 allows 1,000 per stream by default, so 30 nodes fetching each
//! deploy's package and code ran out), and it panics when the consumer cannot be
//! created. Here the consumer is in memory, forgotten 5 s after its last use,
//! deleted once read, and every failure is an error.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::object_store::{InfoErrorKind, ObjectStore};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;

/// Chunks fetched at a time (128 KiB each: 32 MiB).
const BATCH: usize = 256;
/// Pulls that may fail (a consumer not answering yet) before a read gives up.
const RETRIES: u64 = 3;
/// How long one fetch waits for the chunks it asked for.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// The bytes of object `name` in `store` (whose stream is `stream`), or `None` when
/// there is no such object. Callers check what they read: a package against its
/// SHA-256, shared code against its signature.
pub(crate) async fn read(
    store: &ObjectStore,
    stream: &Stream,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let info = match store.info(name).await {
        Ok(info) if info.deleted => return Ok(None),
        Ok(info) => info,
        Err(e) if e.kind() == InfoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if info.size == 0 {
        return Ok(Some(Vec::new()));
    }
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("$O.{}.C.{}", info.bucket, info.nuid),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            memory_storage: true,
            num_replicas: 1,
            inactive_threshold: Duration::from_secs(5),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("reading `{name}`: {e}"))?;
    let consumer_name = consumer.cached_info().name.clone();
    let read = async {
        let mut bytes = Vec::with_capacity(info.size);
        let mut refused = 0;
        while bytes.len() < info.size {
            let mut batch = consumer
                .batch()
                .max_messages(BATCH)
                .expires(FETCH_WAIT)
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            let before = bytes.len();
            let mut failed = None;
            while let Some(chunk) = batch.next().await {
                match chunk {
                    Ok(chunk) => bytes.extend_from_slice(&chunk.payload),
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
                if bytes.len() >= info.size {
                    break;
                }
            }
            if let Some(e) = failed {
                // A consumer just made may not answer its first pull yet (503, no
                // responders): pull again, a few times.
                refused += 1;
                if refused > RETRIES {
                    return Err(format!("reading `{name}`: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(20 * refused)).await;
                continue;
            }
            if bytes.len() == before {
                return Err(format!(
                    "`{name}` ended after {before} of its {} bytes",
                    info.size
                ));
            }
        }
        if bytes.len() != info.size {
            return Err(format!(
                "`{name}` holds {} bytes, not the {} its description says",
                bytes.len(),
                info.size
            ));
        }
        Ok(bytes)
    };
    let bytes = read.await;
    let _ = stream.delete_consumer(&consumer_name).await;
    bytes.map(Some)
}
