//! The command line every binary shares: `serve` (the default), `migrate`, and `--help` that lists the
//! environment variables the binary reads. Works with an empty environment.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{BaseConfig, ConfigError, Env};

/// The subcommands every binary has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Run the service (the default when no subcommand is given).
    Serve,
    /// Apply pending database migrations (DATABASE_URL) and exit.
    Migrate,
}

/// What a binary's `serve` receives.
pub struct Serve<C> {
    pub config: C,
    pub base: BaseConfig,
    /// Already bound to `HTTP_ADDR`.
    pub listener: TcpListener,
    /// Cancelled on SIGTERM / Ctrl-C.
    pub shutdown: CancellationToken,
}

/// Runs a binary: loads its config (one line naming the variable on error, exit code 2), starts telemetry,
/// then either migrates or serves until shutdown. Exit code 0 on a clean stop, 1 on a failure.
pub fn run<C, L, S, Fut>(service: &'static str, command: Option<Command>, load: L, serve: S) -> ExitCode
where
    L: FnOnce(&Env) -> Result<C, ConfigError>,
    S: FnOnce(Serve<C>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env = Env::from_process();
    let base = match BaseConfig::from_env(&env) {
        Ok(base) => base,
        Err(e) => return config_error(service, &e),
    };
    let command = command.unwrap_or(Command::Serve);
    let config = match command {
        Command::Migrate => None,
        Command::Serve => match load(&env) {
            Ok(config) => Some(config),
            Err(e) => return config_error(service, &e),
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let telemetry = crate::telemetry::init(service, base.log_format, base.otlp_endpoint.as_deref())?;
        let result = match config {
            None => crate::db::migrate(&base.database_url).await.map(|applied| {
                tracing::info!(migrations.applied = applied, "database schema is up to date");
            }),
            Some(config) => serve_until_shutdown(service, base, config, serve).await,
        };
        if let Err(e) = &result {
            tracing::error!(error = format!("{e:#}"), "{service} stopped with an error");
        }
        telemetry.shutdown();
        result
    });
    // Background tasks (e.g. blocking client threads) get a short grace period, never a hang.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{service}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_shutdown<C, S, Fut>(
    service: &'static str,
    base: BaseConfig,
    config: C,
    serve: S,
) -> anyhow::Result<()>
where
    S: FnOnce(Serve<C>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use anyhow::Context as _;
    let listener = TcpListener::bind(base.http_addr)
        .await
        .with_context(|| format!("cannot listen on HTTP_ADDR {}", base.http_addr))?;
    let shutdown = crate::shutdown::on_signals();
    tracing::info!(http.addr = %listener.local_addr()?, version = env!("CARGO_PKG_VERSION"), "{service} starting");
    serve(Serve {
        config,
        base,
        listener,
        shutdown,
    })
    .await?;
    tracing::info!("{service} stopped cleanly");
    Ok(())
}

fn config_error(service: &str, e: &ConfigError) -> ExitCode {
    eprintln!("{service}: configuration error: {e}");
    ExitCode::from(2)
}

/// How long the HTTP server keeps serving after `shutdown` fires, answering with `Connection: close`, before it
/// stops accepting: clients that reuse pooled keep-alive connections learn to reconnect from a response instead of
/// racing the server's close of an idle connection (the request they just sent would be lost in that race).
pub const HTTP_DRAIN: Duration = Duration::from_millis(500);

/// After the listening socket is closed, how long connections accepted just before may still deliver their request
/// (then answered with `Connection: close`) before idle connections are closed.
pub const HTTP_LAST_REQUESTS: Duration = Duration::from_millis(300);

/// Serves `router` until `shutdown` fires, then shuts down without breaking a request a client already sent:
/// for [`HTTP_DRAIN`] it keeps serving with `Connection: close`; then it closes the listening socket (new
/// connections are refused, which a client can always retry); [`HTTP_LAST_REQUESTS`] later it closes idle
/// connections and lets in-flight requests finish.
pub async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let draining = shutdown.clone();
    let router = router
        .layer(axum::middleware::from_fn(crate::health::track_requests))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let draining = draining.clone();
                async move {
                    let mut resp = next.run(req).await;
                    if draining.is_cancelled() {
                        resp.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    resp
                }
            },
        ));
    let stop_accepting = CancellationToken::new();
    let listener = ClosingListener {
        addr: listener.local_addr()?,
        inner: Some(listener),
        stop: stop_accepting.clone(),
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(HTTP_DRAIN).await;
            stop_accepting.cancel();
            tokio::time::sleep(HTTP_LAST_REQUESTS).await;
        })
        .await
}

/// A TCP listener that, when `stop` fires, accepts what waits in the backlog and closes its socket (new
/// connections are then refused, never reset), and accepts nothing more.
struct ClosingListener {
    addr: std::net::SocketAddr,
    inner: Option<TcpListener>,
    stop: CancellationToken,
}

impl axum::serve::Listener for ClosingListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(listener) = &self.inner else {
                return std::future::pending().await;
            };
            if self.stop.is_cancelled() {
                // Take what already waits in the kernel's backlog (those clients have sent their request), then
                // close: closing with connections in the backlog would reset them.
                if let Ok(Ok((stream, addr))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await
                {
                    let _ = stream.set_nodelay(true);
                    return (stream, addr);
                }
                self.inner = None;
                continue;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        return (stream, addr);
                    }
                    // Out of file descriptors and the like: back off a little, as axum's own listener does.
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = self.stop.cancelled() => {}
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The `--help` text listing environment variables: pass `(name, meaning)` pairs.
pub fn env_help(vars: &[(&str, &str)]) -> String {
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::from("Environment variables:\n");
    for (name, meaning) in vars {
        out.push_str(&format!("  {name:<width$}  {meaning}\n"));
    }
    out.push_str(
        "\nEvery binary serves GET /health/live, GET /health/ready and GET /metrics on HTTP_ADDR,\n\
         and stops cleanly on SIGTERM or Ctrl-C.",
    );
    out
}

/// The variables every binary reads, for `--help`.
pub const BASE_VARS: &[(&str, &str)] = &[
    (
        "HTTP_ADDR",
        "listen address for the API, health and metrics [default: 0.0.0.0:8080]",
    ),
    (
        "DATABASE_URL",
        "PostgreSQL URL [default: postgres://localhost/seller_backend]",
    ),
    ("RUST_LOG", "log filter [default: info]"),
    ("LOG_FORMAT", "json | pretty [default: pretty]"),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP/gRPC endpoint for traces; unset = no export",
    ),
];

/// Shopee variables, for `--help`.
pub const SHOPEE_VARS: &[(&str, &str)] = &[
    (
        "SHOPEE_API_BASE_URL",
        "Shopee Open Platform host [default: https://partner.shopeemobile.com]",
    ),
    ("SHOPEE_PARTNER_ID", "partner id (required)"),
    ("SHOPEE_PARTNER_KEY", "partner key (required, secret)"),
    (
        "SHOPEE_RATE_LIMIT_PER_SHOP",
        "Shopee calls per second per shop, all replicas together [default: 10]",
    ),
    (
        "TOKEN_ENCRYPTION_KEY",
        "32 bytes, base64: encrypts shop tokens at rest (required, secret)",
    ),
    (
        "REDIS_URL",
        "Redis URL for caches and rate limits [default: redis://127.0.0.1:6379]",
    ),
];

/// Pub/Sub variables, for `--help`.
pub const PUBSUB_VARS: &[(&str, &str)] = &[
    (
        "PUBSUB_PROJECT_ID",
        "Google Cloud project of the topics (required)",
    ),
    (
        "PUBSUB_EMULATOR_HOST",
        "host:port of the Pub/Sub emulator; set = no credentials",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr) -> Option<reqwest::Response> {
        reqwest::get(format!("http://{addr}/")).await.ok()
    }

    #[tokio::test]
    async fn after_shutdown_the_server_answers_with_connection_close_then_stops_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = tokio::spawn(serve_http(listener, router, shutdown.clone()));

        let before = get(addr).await.expect("served");
        assert_eq!(before.status(), 200);
        assert!(
            before.headers().get("connection").is_none(),
            "keep-alive before shutdown"
        );

        shutdown.cancel();
        let draining = get(addr).await.expect("still served while draining");
        assert_eq!(draining.status(), 200);
        assert_eq!(draining.headers()["connection"], "close");

        tokio::time::timeout((HTTP_DRAIN + HTTP_LAST_REQUESTS) * 3, server)
            .await
            .expect("stops after the drain")
            .unwrap()
            .unwrap();
        assert!(get(addr).await.is_none(), "no longer accepting");
    }
}
