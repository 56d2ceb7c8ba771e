//! Kafka: settings and the readiness probe.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Built from [`KafkaArgs`](crate::config::KafkaArgs), where the variables are declared.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub delivery_topic: String,
    pub group_id: String,
}

/// Asks the brokers for the topic's metadata; ready when they answer.
#[derive(Clone)]
pub struct KafkaProbe {
    client: Arc<BaseConsumer>,
    topic: String,
}

impl KafkaProbe {
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("client.id", "seller-backend-health")
            .create()?;
        Ok(Self {
            client: Arc::new(client),
            topic: config.delivery_topic.clone(),
        })
    }

    pub async fn check(&self) -> anyhow::Result<()> {
        let client = self.client.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let md = client.fetch_metadata(Some(&topic), Duration::from_millis(1500))?;
            anyhow::ensure!(!md.brokers().is_empty(), "no broker answered");
            Ok(())
        })
        .await?
    }
}
