//! Log lines across a fleet, on core NATS subjects `PREFIX.logs.SERVICE` (not
//! JetStream: a tail wants the lines of now, not a history). A node publishes a
//! service's lines only while some other node's tail watches that service (their
//! heartbeats say which), and subscribes only while a tail of its own is open, so
//! log fan-in costs nothing when no one watches. Publishing never waits on a slow or
//! absent server for long: a line that cannot be handed over within a few
//! milliseconds is dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use verge_control::ControlError;

/// How long handing one line to the client may take before it is dropped.
const PUBLISH_WAIT: Duration = Duration::from_millis(20);

const NODE: &str = "Verge-Node";
const REQUEST_ID: &str = "Verge-Request-Id";
const STATUS: &str = "Verge-Status";

/// One line from another node.
#[derive(Debug, Clone)]
pub struct RelayedLine {
    pub node: String,
    pub service: String,
    pub request_id: String,
    /// The response status, on access lines.
    pub status: Option<u16>,
    /// The JSON line.
    pub json: Bytes,
}

/// Publishes this node's lines and subscribes to the others'.
pub struct LogRelay {
    client: async_nats::Client,
    prefix: String,
    dropped: AtomicU64,
}

impl LogRelay {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        LogRelay {
            client,
            prefix: prefix.to_owned(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Publishes one of `node`'s lines of `service`; false (and counted) if it was
    /// dropped.
    pub async fn publish(
        &self,
        node: &str,
        service: &str,
        request_id: &str,
        status: Option<u16>,
        json: Bytes,
    ) -> bool {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NODE, node);
        headers.insert(REQUEST_ID, request_id);
        if let Some(status) = status {
            headers.insert(STATUS, status.to_string().as_str());
        }
        let subject = format!("{}.logs.{service}", self.prefix);
        let sent = tokio::time::timeout(
            PUBLISH_WAIT,
            self.client.publish_with_headers(subject, headers, json),
        )
        .await;
        let ok = matches!(sent, Ok(Ok(())));
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Lines dropped on the way out since the node started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Every node's lines, as they are published, until the stream is dropped.
    pub async fn subscribe(
        &self,
    ) -> Result<impl Stream<Item = RelayedLine> + Send + Unpin + 'static, ControlError> {
        let prefix = format!("{}.logs.", self.prefix);
        let subscriber = self
            .client
            .subscribe(format!("{prefix}*"))
            .await
            .map_err(|e| ControlError::Unavailable(e.to_string()))?;
        Ok(subscriber.filter_map(move |msg| {
            let header = |name: &str| {
                let value = msg.headers.as_ref()?.get(name)?;
                Some(value.as_str().to_owned())
            };
            let (node, request_id, status) = (header(NODE), header(REQUEST_ID), header(STATUS));
            let service = msg
                .subject
                .as_str()
                .strip_prefix(&prefix)
                .map(str::to_owned);
            let line = match (node, service) {
                (Some(node), Some(service)) => Some(RelayedLine {
                    node,
                    service,
                    request_id: request_id.unwrap_or_default(),
                    status: status.and_then(|s| s.parse().ok()),
                    json: msg.payload,
                }),
                _ => None,
            };
            std::future::ready(line)
        }))
    }
}
