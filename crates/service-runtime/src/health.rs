//! `/health/live`, `/health/ready` and `/metrics`, served by every binary on `HTTP_ADDR`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::kafka::KafkaProbe;
use crate::pubsub::PubSubProbe;

/// A dependency that must answer for the binary to be ready.
#[derive(Clone)]
pub enum Dependency {
    Postgres(sqlx::PgPool),
    Redis(deadpool_redis::Pool),
    PubSub(PubSubProbe),
    Kafka(KafkaProbe),
}

impl Dependency {
    fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
            Self::PubSub(_) => "pubsub",
            Self::Kafka(_) => "kafka",
        }
    }

    async fn check(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(pool) => Ok(crate::db::ping(pool).await?),
            Self::Redis(pool) => crate::redis::ping(pool).await,
            Self::PubSub(probe) => probe.check().await,
            Self::Kafka(probe) => probe.check().await,
        }
    }
}

/// How long one dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    service: &'static str,
    dependencies: Vec<Dependency>,
    shutdown: CancellationToken,
}

impl Health {
    pub fn new(service: &'static str, dependencies: Vec<Dependency>, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                dependencies,
                shutdown,
            }),
        }
    }

    /// The three operational routes; merge them into the binary's own router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/health/live", get(live))
            .route("/health/ready", get(ready))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// Checks every dependency concurrently. `Err` lists what failed.
    pub async fn check(&self) -> Vec<(&'static str, Result<(), String>)> {
        let checks = self.inner.dependencies.iter().map(|dep| async move {
            let started = Instant::now();
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, dep.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
            };
            metrics::histogram!("health_check_duration_seconds", "dependency" => dep.name())
                .record(started.elapsed().as_secs_f64());
            (dep.name(), outcome)
        });
        futures::future::join_all(checks).await
    }
}

async fn live(State(health): State<Health>) -> Response {
    Json(json!({"status": "live", "service": health.inner.service})).into_response()
}

async fn ready(State(health): State<Health>) -> Response {
    if health.inner.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    let results = health.check().await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| (name.to_owned(), json!(r.err().unwrap_or_else(|| "ok".into()))))
        .collect();
    for (name, value) in &checks {
        metrics::gauge!("dependency_up", "dependency" => name.clone()).set(if value == "ok" {
            1.0
        } else {
            0.0
        });
    }
    if ready {
        Json(json!({"status": "ready", "checks": checks})).into_response()
    } else {
        tracing::warn!(checks = %serde_json::Value::Object(checks.clone()), "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "checks": checks})),
        )
            .into_response()
    }
}

async fn metrics(State(_): State<Health>) -> Response {
    let body = crate::telemetry::render_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Counts and times every HTTP request by route template, method and status: `http_requests_total` and
/// `http_request_duration_seconds`. Applied by [`crate::cli::serve_http`] to every binary's router.
pub async fn track_requests(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed);
    response
}
