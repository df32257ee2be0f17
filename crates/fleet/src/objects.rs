//! Reading an object of a JetStream object store whole, without the client's object
//! reader: that one creates a consumer per read that the server keeps for 30 s
//! (nats-server 2.15 allows 1,000 per stream by default, so 30 nodes fetching each
//! deploy's package and code ran out), and it panics when the consumer cannot be
//! created. Here the consumer is forgotten 5 s after its last use, deleted once
//! read, and every failure is an error.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, push};
use async_nats::jetstream::object_store::{InfoErrorKind, ObjectStore};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;

/// How long a read waits for its next chunk.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// The bytes of object `name` in `store` (whose stream is `stream`), or `None` when
/// there is no such object. Callers check what they read: a package against its
/// SHA-256, shared code against its signature.
pub(crate) async fn read(
    client: &async_nats::Client,
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
    // A push consumer, as the client's own reader uses (pulls through a PoP's leaf
    // server in another JetStream domain came back empty).
    let consumer = stream
        .create_consumer(push::Config {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("$O.{}.C.{}", info.bucket, info.nuid),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            memory_storage: true,
            num_replicas: 1,
            inactive_threshold: Duration::from_secs(5),
            // Without flow control the server pushes a large object faster than the
            // client takes it, and the client drops chunks (a 128 MiB read stalled).
            flow_control: true,
            idle_heartbeat: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("reading `{name}`: {e}"))?;
    let consumer_name = consumer.cached_info().name.clone();
    let read = async {
        let mut chunks = consumer
            .messages()
            .await
            .map_err(|e| format!("reading `{name}`: {e}"))?;
        let mut bytes = Vec::with_capacity(info.size);
        while bytes.len() < info.size {
            match tokio::time::timeout(FETCH_WAIT, chunks.next()).await {
                Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk.payload),
                Ok(Some(Err(e))) => return Err(format!("reading `{name}`: {e}")),
                Ok(None) | Err(_) => {
                    return Err(format!(
                        "`{name}` ended after {} of its {} bytes",
                        bytes.len(),
                        info.size
                    ));
                }
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
