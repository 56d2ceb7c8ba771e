//! Google Cloud Pub/Sub through the official `google-cloud-pubsub` crate.
//!
//! That crate does not read `PUBSUB_EMULATOR_HOST` by itself: every client built here points at the emulator with
//! anonymous credentials when [`PubSubConfig::emulator_host`] is set, and at Google with default credentials
//! otherwise.

use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
use google_cloud_pubsub::client::{Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};

pub use google_cloud_pubsub;

use crate::config::PubSubConfig;

fn emulator_endpoint(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    }
}

/// Applies the emulator endpoint and anonymous credentials to any google-cloud client builder.
macro_rules! for_target {
    ($builder:expr, $config:expr) => {{
        let builder = $builder;
        match &$config.emulator_host {
            Some(host) => builder
                .with_endpoint(emulator_endpoint(host))
                .with_credentials(Anonymous::new().build()),
            None => builder,
        }
    }};
}

pub async fn topic_admin(config: &PubSubConfig) -> anyhow::Result<TopicAdmin> {
    Ok(for_target!(TopicAdmin::builder(), config).build().await?)
}

pub async fn subscription_admin(config: &PubSubConfig) -> anyhow::Result<SubscriptionAdmin> {
    Ok(for_target!(SubscriptionAdmin::builder(), config).build().await?)
}

/// A streaming-pull subscriber (emulator + anonymous credentials when configured). Flow control, ack deadlines and
/// shutdown behaviour are set per stream on `subscriber.subscribe(name)`.
pub async fn subscriber(config: &PubSubConfig) -> anyhow::Result<Subscriber> {
    Ok(for_target!(Subscriber::builder(), config).build().await?)
}

/// A batching publisher for `topic` (a full `projects/../topics/..` path).
pub async fn publisher(config: &PubSubConfig, topic: &str) -> anyhow::Result<Publisher> {
    Ok(for_target!(Publisher::builder(topic), config).build().await?)
}

/// What readiness asks Pub/Sub about: the topic a binary publishes to or the subscription it pulls from.
#[derive(Clone)]
pub enum PubSubProbe {
    Topic { admin: TopicAdmin, name: String },
    Subscription { admin: SubscriptionAdmin, name: String },
}

impl PubSubProbe {
    /// Ready when Pub/Sub answers about the resource. A permission error still proves Pub/Sub is reachable (in
    /// production the workers hold publish/subscribe roles, not the viewer role), so only transport failures and
    /// a missing resource count as "not ready".
    pub async fn check(&self) -> anyhow::Result<()> {
        let result = match self {
            Self::Topic { admin, name } => admin.get_topic().set_topic(name.clone()).send().await.map(|_| ()),
            Self::Subscription { admin, name } => admin
                .get_subscription()
                .set_subscription(name.clone())
                .send()
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if e.status()
                    .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::PermissionDenied) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }
}

/// Creates a topic unless it exists (local stack and tests only; production topics are made by infrastructure).
pub async fn ensure_topic(admin: &TopicAdmin, name: &str) -> anyhow::Result<()> {
    match admin.create_topic().set_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot create topic {name}: {e}")),
    }
}

/// Creates a subscription unless it exists (local stack and tests only).
pub async fn ensure_subscription(
    admin: &SubscriptionAdmin,
    name: &str,
    topic: &str,
    ack_deadline_secs: i32,
) -> anyhow::Result<()> {
    let request = admin
        .create_subscription()
        .set_name(name)
        .set_topic(topic)
        .set_ack_deadline_seconds(ack_deadline_secs);
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot create subscription {name}: {e}")),
    }
}

fn is_already_exists(e: &google_cloud_pubsub::Error) -> bool {
    e.status()
        .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::AlreadyExists)
}
