//! Each node's traffic samples across a fleet, on the core NATS subject
//! `PREFIX.traffic` (not JetStream: a node that missed a round misses its points on
//! a chart, nothing more). Every node publishes one small message per 10-second
//! round with traffic and keeps everyone's rounds in memory, so any node's console
//! charts the whole fleet.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use verge_control::ControlError;

/// How long handing a round to the client may take before it is dropped.
const PUBLISH_WAIT: Duration = Duration::from_millis(200);

pub struct TrafficRelay {
    client: async_nats::Client,
    subject: String,
}

impl TrafficRelay {
    pub fn new(client: async_nats::Client, prefix: &str) -> Self {
        TrafficRelay {
            client,
            subject: format!("{prefix}.traffic"),
        }
    }

    /// Publishes one round (the node's JSON); false if it could not be handed over.
    pub async fn publish(&self, round: Bytes) -> bool {
        let sent = tokio::time::timeout(
            PUBLISH_WAIT,
            self.client.publish(self.subject.clone(), round),
        )
        .await;
        matches!(sent, Ok(Ok(())))
    }

    /// Every node's rounds (this one's too), as they are published.
    pub async fn subscribe(
        &self,
    ) -> Result<impl Stream<Item = Bytes> + Send + Unpin + 'static, ControlError> {
        let subscriber = self
            .client
            .subscribe(self.subject.clone())
            .await
            .map_err(|e| ControlError::Unavailable(e.to_string()))?;
        Ok(subscriber.map(|msg| msg.payload))
    }
}
