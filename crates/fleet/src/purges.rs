//! Purges across a fleet. Every node's purges go, in order, into one JetStream
//! stream, `PREFIX-purge` (subject `PREFIX.purge`, R3, kept a day), with the purging
//! node's name in a header; every node follows the stream from where it joined and
//! applies the others' purges. A node that applied one says so to the node that
//! made it, on core NATS (`PREFIX.purge-applied.ORIGIN`), so that node's purge call
//! can answer once every live node has it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use verge_control::ControlError;

const NODE: &str = "Verge-Node";
/// How long the stream keeps a purge: a node cut off for longer than this cannot
/// replay what it missed, and drops its cache instead.
pub const PURGES_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// One purge from the stream.
#[derive(Debug, Clone)]
pub struct RemotePurge {
    /// Its place in the fleet's order of purges.
    pub sequence: u64,
    /// The node that made it.
    pub origin: String,
    /// The purge, as the node that made it wrote it (`verge_cache::Purge` in JSON).
    pub payload: Bytes,
}

/// The fleet's purge stream.
pub struct PurgeStream {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    applied_prefix: String,
}

impl std::fmt::Debug for PurgeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurgeStream")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

impl PurgeStream {
    /// Opens the fleet's purge stream, making it when the fleet has none yet (a
    /// fleet made before purges travelled).
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        replicas: usize,
    ) -> Result<Self, ControlError> {
        let subject = format!("{prefix}.purge");
        let stream = js
            .get_or_create_stream(stream::Config {
                name: format!("{prefix}-purge"),
                description: Some("Verge's cache purges, in the order the fleet made them".into()),
                subjects: vec![subject.clone()],
                max_age: PURGES_KEPT,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(PurgeStream {
            js: js.clone(),
            stream,
            subject,
            applied_prefix: format!("{prefix}.purge-applied."),
        })
    }

    /// Appends `node`'s purge; its sequence, once JetStream (a quorum) has it.
    pub async fn publish(&self, node: &str, purge: Vec<u8>) -> Result<u64, ControlError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE, node);
        let ack = self
            .js
            .publish_with_headers(self.subject.clone(), headers, purge.into())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(ack.sequence)
    }

    /// The sequence of the last purge in the stream (0: none yet).
    pub async fn last_sequence(&self) -> Result<u64, ControlError> {
        let mut stream = self.stream.clone();
        Ok(stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence)
    }

    /// Every purge after `after`, in order, as the fleet makes them, until dropped.
    /// The consumer follows across reconnects (an ordered consumer, recreated
    /// from the last sequence it delivered).
    pub async fn follow(
        &self,
        after: u64,
    ) -> Result<impl Stream<Item = Result<RemotePurge, ControlError>> + Send + Unpin, ControlError>
    {
        let messages = self
            .stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?
            .messages()
            .await
            .map_err(unavailable)?;
        Ok(messages.map(|message| {
            let message = message.map_err(unavailable)?;
            let sequence = message.info().map_err(unavailable)?.stream_sequence;
            let origin = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NODE))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            Ok(RemotePurge {
                sequence,
                origin,
                payload: message.payload.clone(),
            })
        }))
    }

    /// Tells `origin` that `node` applied its purge `sequence`. Best effort: a lost
    /// word leaves the purge call naming `node` as pending.
    pub async fn applied(&self, origin: &str, node: &str, sequence: u64) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE, node);
        let _ = self
            .js
            .client()
            .publish_with_headers(
                format!("{}{origin}", self.applied_prefix),
                headers,
                sequence.to_string().into(),
            )
            .await;
    }

    /// What the other nodes say they applied of `node`'s purges: (node, sequence).
    pub async fn applied_by_others(
        &self,
        node: &str,
    ) -> Result<impl Stream<Item = (String, u64)> + Send + Unpin + 'static, ControlError> {
        let subscriber = self
            .js
            .client()
            .subscribe(format!("{}{node}", self.applied_prefix))
            .await
            .map_err(unavailable)?;
        Ok(subscriber.filter_map(|message| {
            let by = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NODE))
                .map(|v| v.as_str().to_owned());
            let sequence = std::str::from_utf8(&message.payload)
                .ok()
                .and_then(|s| s.parse().ok());
            std::future::ready(by.zip(sequence))
        }))
    }
}
