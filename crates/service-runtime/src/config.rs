//! Typed configuration read from environment variables, declared once with clap.
//!
//! Each variable is one `#[arg(long, env = "VAR", ...)]` field: its name, default, range and help live there and
//! nowhere else; `--help` is generated from them. The groups every binary shares are here ([`RuntimeArgs`],
//! [`ShopeeArgs`], [`TokenKeyArgs`], [`RedisArgs`], [`PubSubArgs`], [`HubConfigArgs`], [`KafkaArgs`]); a binary
//! flattens the ones it reads into its own `Args` and builds its runtime config from it in one `TryFrom` that
//! holds the cross-field checks.
//!
//! A missing or malformed variable becomes a [`ConfigError`] whose message names the variable and says what is
//! expected, on one line, and never shows the value of a secret.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// A configuration problem, always naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: {hint}")]
    Missing { var: String, hint: String },
    #[error("{var} is malformed: {problem}")]
    Malformed { var: String, problem: String },
    /// A command-line mistake that names no variable (an unknown flag, a missing `--shop`).
    #[error("{0} (see --help)")]
    Usage(String),
}

/// For runtime configs built with `From` (no cross-field check to fail).
impl From<std::convert::Infallible> for ConfigError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl ConfigError {
    pub fn malformed(var: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Malformed {
            var: var.into(),
            problem: problem.into(),
        }
    }

    /// The one-line form of a clap error, naming the variable behind the argument clap complains about. `cmd` is
    /// the command that produced the error (its arguments tell the variables).
    pub fn from_clap(cmd: &clap::Command, e: &clap::Error) -> Self {
        let shown = |kind| match e.get(kind) {
            Some(ContextValue::String(s)) => vec![s.as_str()],
            Some(ContextValue::Strings(v)) => v.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        // clap names an argument by its Display form (`--http-addr <HTTP_ADDR>`), which needs a built command.
        let mut cmd = cmd.clone();
        cmd.build();
        let cmd = &cmd;
        let arg = shown(ContextKind::InvalidArg)
            .into_iter()
            .find_map(|s| find_arg(cmd, s));
        let var = arg
            .and_then(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned());
        match (e.kind(), arg, var) {
            (ErrorKind::MissingRequiredArgument, Some(arg), Some(var)) => Self::Missing {
                var,
                hint: arg.get_help().map(ToString::to_string).unwrap_or_default(),
            },
            (ErrorKind::ValueValidation, Some(_), Some(var)) => {
                let problem =
                    std::error::Error::source(e).map_or_else(|| e.kind().to_string(), ToString::to_string);
                Self::malformed(var, problem)
            }
            (ErrorKind::InvalidValue, Some(arg), Some(var)) => {
                let mut problem = format!("expected one of {}", shown(ContextKind::ValidValue).join(", "));
                if let (false, Some(got)) = (
                    arg.is_hide_env_values_set(),
                    shown(ContextKind::InvalidValue).first(),
                ) {
                    problem.push_str(&format!(", got `{got}`"));
                }
                Self::malformed(var, problem)
            }
            // Other complaints about a variable: clap's description of the kind, never the value.
            (kind, Some(_), Some(var)) => Self::malformed(var, kind.to_string()),
            // A command-line mistake: clap's first paragraph (before the usage), on one line.
            _ => {
                let rendered = e.to_string();
                let paragraph: Vec<&str> = rendered
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                Self::Usage(paragraph.join(" ").trim_start_matches("error: ").to_owned())
            }
        }
    }
}

fn find_arg<'a>(cmd: &'a clap::Command, shown: &str) -> Option<&'a clap::Arg> {
    cmd.get_arguments()
        .find(|a| a.to_string() == shown)
        .or_else(|| cmd.get_subcommands().find_map(|sub| find_arg(sub, shown)))
}

/// Where variables come from, as a map: the process environment, or fixed pairs in tests. A value that is empty
/// (or only white space) counts as unset.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The raw value; an empty string counts as unset.
    pub fn raw(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Parses the variables of `A` from this map alone, through clap (the same declarations, defaults, ranges and
    /// messages as the binaries' command line; the process environment is not consulted).
    pub fn parse<A: clap::Args>(&self) -> Result<A, ConfigError> {
        let cmd = A::augment_args(clap::Command::new("config").no_binary_name(true));
        let argv: Vec<String> = cmd
            .get_arguments()
            .filter_map(|arg| {
                let value = self.raw(arg.get_env()?.to_str()?)?;
                Some(format!("--{}={value}", arg.get_long()?))
            })
            .collect();
        let matches = cmd
            .clone()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(argv)
            .map_err(|e| ConfigError::from_clap(&cmd, &e))?;
        A::from_arg_matches(&matches).map_err(|e| ConfigError::from_clap(&cmd, &e))
    }
}

/// The values of `A` when no variable is set: its declared defaults. Panics if `A` has a required variable.
pub fn defaults<A: clap::Args>() -> A {
    match Env::from_pairs([]).parse() {
        Ok(a) => a,
        Err(e) => panic!(
            "{} has no default for every variable: {e}",
            std::any::type_name::<A>()
        ),
    }
}

/// A value parser for a number of at least `min` (`value_parser = at_least(1u32)`).
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + fmt::Display + Copy + Send + Sync + 'static,
    T::Err: fmt::Display,
{
    move |raw: &str| {
        let value: T = raw.parse().map_err(|e: T::Err| e.to_string())?;
        if value < min {
            return Err(format!("must be at least {min}, got {value}"));
        }
        Ok(value)
    }
}

/// A string that must not be printed: keys, tokens, URLs with passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// `LOG_FORMAT`: `json` for machines, `pretty` for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s, true)
    }
}

/// `HTTP_ADDR`.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// listen address for the API, health and metrics
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
}

/// `DATABASE_URL`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL (secret)
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://localhost/seller_backend",
        hide_env_values = true
    )]
    pub database_url: Secret,
}

/// Logs and traces. `RUST_LOG` is read by the log filter itself (see `telemetry`).
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// log format
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", ignore_case = true)]
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint for traces; unset = no export
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// What every binary reads, `migrate` included.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Runtime")]
pub struct RuntimeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Settings every binary reads.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    pub http_addr: SocketAddr,
    pub database_url: Secret,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
}

impl From<RuntimeArgs> for BaseConfig {
    fn from(args: RuntimeArgs) -> Self {
        Self {
            http_addr: args.http.http_addr,
            database_url: args.database.database_url,
            log_format: args.telemetry.log_format,
            otlp_endpoint: args.telemetry.otlp_endpoint,
        }
    }
}

impl BaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<RuntimeArgs>().map(Self::from)
    }
}

/// `REDIS_URL`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisArgs {
    /// Redis URL for caches and rate limits (secret)
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: Secret,
}

/// `REDIS_URL`.
pub fn redis_url(env: &Env) -> Result<Secret, ConfigError> {
    env.parse::<RedisArgs>().map(|a| a.redis_url)
}

/// How to reach Shopee and verify what it sends.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Shopee")]
pub struct ShopeeArgs {
    /// Shopee Open Platform host
    #[arg(
        long,
        env = "SHOPEE_API_BASE_URL",
        default_value = "https://partner.shopeemobile.com"
    )]
    pub shopee_api_base_url: String,
    /// the numeric partner id from the Shopee Open Platform console
    #[arg(long, env = "SHOPEE_PARTNER_ID")]
    pub shopee_partner_id: u64,
    /// the partner key from the Shopee Open Platform console (secret)
    #[arg(long, env = "SHOPEE_PARTNER_KEY", hide_env_values = true)]
    pub shopee_partner_key: Secret,
    /// Shopee calls per second per shop, all replicas together
    #[arg(
        long,
        env = "SHOPEE_RATE_LIMIT_PER_SHOP",
        default_value = "10",
        value_parser = at_least(1u32)
    )]
    pub shopee_rate_limit_per_shop: u32,
}

/// How to reach Shopee and verify what it sends.
#[derive(Debug, Clone)]
pub struct ShopeeConfig {
    pub api_base_url: String,
    pub partner_id: u64,
    pub partner_key: Secret,
    pub rate_limit_per_shop: u32,
}

impl From<ShopeeArgs> for ShopeeConfig {
    fn from(args: ShopeeArgs) -> Self {
        Self {
            api_base_url: args.shopee_api_base_url,
            partner_id: args.shopee_partner_id,
            partner_key: args.shopee_partner_key,
            rate_limit_per_shop: args.shopee_rate_limit_per_shop,
        }
    }
}

impl ShopeeConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<ShopeeArgs>().map(Self::from)
    }
}

/// `TOKEN_ENCRYPTION_KEY`: 32 bytes, base64.
#[derive(Clone)]
pub struct EncryptionKey(pub [u8; 32]);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(***)")
    }
}

impl FromStr for EncryptionKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| {
                "expected 32 bytes encoded as standard base64 (e.g. `openssl rand -base64 32`)".to_owned()
            })?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("expected 32 bytes after base64 decoding, got {}", b.len()))?;
        Ok(Self(key))
    }
}

/// `TOKEN_ENCRYPTION_KEY`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Shopee")]
pub struct TokenKeyArgs {
    /// 32 random bytes, base64 (e.g. `openssl rand -base64 32`): encrypts shop tokens at rest (secret)
    #[arg(long, env = "TOKEN_ENCRYPTION_KEY", hide_env_values = true)]
    pub token_encryption_key: EncryptionKey,
}

pub fn token_encryption_key(env: &Env) -> Result<EncryptionKey, ConfigError> {
    env.parse::<TokenKeyArgs>().map(|a| a.token_encryption_key)
}

/// Pub/Sub: the project and, locally, the emulator.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Pub/Sub")]
pub struct PubSubArgs {
    /// the Google Cloud project that owns the topics
    #[arg(long, env = "PUBSUB_PROJECT_ID")]
    pub pubsub_project_id: String,
    /// host:port of the Pub/Sub emulator; set = no credentials (local runs only)
    #[arg(long, env = "PUBSUB_EMULATOR_HOST")]
    pub pubsub_emulator_host: Option<String>,
}

/// Pub/Sub: the project and, locally, the emulator.
#[derive(Debug, Clone)]
pub struct PubSubConfig {
    pub project_id: String,
    pub emulator_host: Option<String>,
}

impl From<PubSubArgs> for PubSubConfig {
    fn from(args: PubSubArgs) -> Self {
        Self {
            project_id: args.pubsub_project_id,
            emulator_host: args.pubsub_emulator_host,
        }
    }
}

impl PubSubConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        env.parse::<PubSubArgs>().map(Self::from)
    }

    pub fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{topic}", self.project_id)
    }

    pub fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{subscription}", self.project_id)
    }
}

/// `HUB_CONFIG_URL`: the Hub Config Service.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Hub Config Service")]
pub struct HubConfigArgs {
    /// Hub Config Service base URL
    #[arg(long, env = "HUB_CONFIG_URL", default_value = "http://127.0.0.1:8090")]
    pub hub_config_url: String,
}

/// Kafka: the brokers, the delivery topic and the consumer group.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kafka")]
pub struct KafkaArgs {
    /// bootstrap servers
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// topic of the fleet's delivery events
    #[arg(long, env = "KAFKA_DELIVERY_TOPIC", default_value = "deliveries.out")]
    pub kafka_delivery_topic: String,
    /// consumer group
    #[arg(
        long,
        env = "KAFKA_GROUP_ID",
        default_value = "seller-backend-delivery-status"
    )]
    pub kafka_group_id: String,
}

impl From<KafkaArgs> for crate::kafka::KafkaConfig {
    fn from(args: KafkaArgs) -> Self {
        Self {
            brokers: args.kafka_brokers,
            delivery_topic: args.kafka_delivery_topic,
            group_id: args.kafka_group_id,
        }
    }
}

/// Whether `var` names a variable of `A` (for tests of what a binary declares).
pub fn declares<A: clap::Args>(var: &str) -> bool {
    A::augment_args(clap::Command::new("config"))
        .get_arguments()
        .any(|a| a.get_env() == Some(OsStr::new(var)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_variable_is_named_on_one_line() {
        let env = Env::from_pairs([]);
        let err = ShopeeConfig::from_env(&env).unwrap_err().to_string();
        assert!(
            err.starts_with("SHOPEE_PARTNER_ID is not set: the numeric partner id"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn malformed_variable_is_named_with_the_problem() {
        let env = Env::from_pairs([("HTTP_ADDR", "not-an-addr")]);
        let err = BaseConfig::from_env(&env).unwrap_err().to_string();
        assert_eq!(err, "HTTP_ADDR is malformed: invalid socket address syntax");
        let env = Env::from_pairs([("LOG_FORMAT", "xml")]);
        let err = BaseConfig::from_env(&env).unwrap_err().to_string();
        assert_eq!(
            err,
            "LOG_FORMAT is malformed: expected one of json, pretty, got `xml`"
        );
    }

    #[test]
    fn defaults_apply_and_empty_counts_as_unset() {
        let env = Env::from_pairs([("LOG_FORMAT", ""), ("HTTP_ADDR", "  ")]);
        let base = BaseConfig::from_env(&env).unwrap();
        assert_eq!(base.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(base.log_format, LogFormat::Pretty);
        assert_eq!(base.database_url.expose(), "postgres://localhost/seller_backend");
        assert_eq!(base.otlp_endpoint, None);
        let env = Env::from_pairs([("LOG_FORMAT", "JSON")]);
        assert_eq!(BaseConfig::from_env(&env).unwrap().log_format, LogFormat::Json);
    }

    #[test]
    fn values_that_look_like_flags_are_values() {
        let env = Env::from_pairs([("SHOPEE_PARTNER_ID", "1"), ("SHOPEE_PARTNER_KEY", "--k=v")]);
        assert_eq!(
            ShopeeConfig::from_env(&env).unwrap().partner_key.expose(),
            "--k=v"
        );
    }

    #[test]
    fn encryption_key_must_be_32_bytes() {
        let env = Env::from_pairs([("TOKEN_ENCRYPTION_KEY", "c2hvcnQ=")]);
        let err = token_encryption_key(&env).unwrap_err().to_string();
        assert!(
            err.contains("TOKEN_ENCRYPTION_KEY is malformed") && err.contains("got 5"),
            "{err}"
        );
        assert!(!err.contains("c2hvcnQ="), "the secret is not echoed: {err}");
        let ok = Env::from_pairs([(
            "TOKEN_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )]);
        assert!(token_encryption_key(&ok).is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn zero_rate_limit_is_rejected() {
        let env = Env::from_pairs([
            ("SHOPEE_PARTNER_ID", "1"),
            ("SHOPEE_PARTNER_KEY", "k"),
            ("SHOPEE_RATE_LIMIT_PER_SHOP", "0"),
        ]);
        let err = ShopeeConfig::from_env(&env).unwrap_err().to_string();
        assert_eq!(
            err,
            "SHOPEE_RATE_LIMIT_PER_SHOP is malformed: must be at least 1, got 0"
        );
    }

    #[test]
    fn defaults_come_from_the_declarations() {
        let kafka: crate::kafka::KafkaConfig = defaults::<KafkaArgs>().into();
        assert_eq!(kafka.delivery_topic, "deliveries.out");
        assert!(declares::<RuntimeArgs>("DATABASE_URL"));
        assert!(!declares::<RuntimeArgs>("REDIS_URL"));
    }
}
