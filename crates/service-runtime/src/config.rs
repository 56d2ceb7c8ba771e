//! Typed configuration read from environment variables.
//!
//! Every value is parsed once at start-up; a missing or malformed variable becomes a [`ConfigError`] whose
//! message names the variable and says what is expected, on one line.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A configuration problem, always naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: {hint}")]
    Missing { var: &'static str, hint: &'static str },
    #[error("{var} is malformed: {problem}")]
    Malformed { var: &'static str, problem: String },
}

/// Where variables come from: the process environment, or a fixed map in tests.
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

    /// A variable that must be set. `hint` says what it should hold.
    pub fn required<T: FromStr>(&self, var: &'static str, hint: &'static str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        let raw = self.raw(var).ok_or(ConfigError::Missing { var, hint })?;
        parse(var, raw)
    }

    /// A variable with a default used when it is unset.
    pub fn or_default<T: FromStr>(&self, var: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        parse(var, self.raw(var).unwrap_or(default))
    }

    /// A variable that may be absent.
    pub fn optional<T: FromStr>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.raw(var).map(|raw| parse(var, raw)).transpose()
    }
}

fn parse<T: FromStr>(var: &'static str, raw: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    raw.trim().parse().map_err(|e: T::Err| ConfigError::Malformed {
        var,
        problem: e.to_string(),
    })
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected `json` or `pretty`, got `{other}`")),
        }
    }
}

/// Settings every binary reads.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    pub http_addr: SocketAddr,
    pub database_url: Secret,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
}

impl BaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            http_addr: env.or_default("HTTP_ADDR", "0.0.0.0:8080")?,
            database_url: env.or_default("DATABASE_URL", "postgres://localhost/seller_backend")?,
            log_format: env.or_default("LOG_FORMAT", "pretty")?,
            otlp_endpoint: env.optional("OTEL_EXPORTER_OTLP_ENDPOINT")?,
        })
    }
}

/// `REDIS_URL`.
pub fn redis_url(env: &Env) -> Result<Secret, ConfigError> {
    env.or_default("REDIS_URL", "redis://127.0.0.1:6379")
}

/// How to reach Shopee and verify what it sends.
#[derive(Debug, Clone)]
pub struct ShopeeConfig {
    pub api_base_url: String,
    pub partner_id: u64,
    pub partner_key: Secret,
    pub rate_limit_per_shop: u32,
}

impl ShopeeConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let rate_limit_per_shop = env.or_default("SHOPEE_RATE_LIMIT_PER_SHOP", "10")?;
        if rate_limit_per_shop == 0 {
            return Err(ConfigError::Malformed {
                var: "SHOPEE_RATE_LIMIT_PER_SHOP",
                problem: "must be at least 1 call per second".into(),
            });
        }
        Ok(Self {
            api_base_url: env.or_default("SHOPEE_API_BASE_URL", "https://partner.shopeemobile.com")?,
            partner_id: env.required(
                "SHOPEE_PARTNER_ID",
                "the numeric partner id from the Shopee Open Platform console",
            )?,
            partner_key: env.required(
                "SHOPEE_PARTNER_KEY",
                "the partner key from the Shopee Open Platform console",
            )?,
            rate_limit_per_shop,
        })
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

pub fn token_encryption_key(env: &Env) -> Result<EncryptionKey, ConfigError> {
    env.required(
        "TOKEN_ENCRYPTION_KEY",
        "32 random bytes, base64 (e.g. `openssl rand -base64 32`)",
    )
}

/// Pub/Sub: the project and, locally, the emulator.
#[derive(Debug, Clone)]
pub struct PubSubConfig {
    pub project_id: String,
    pub emulator_host: Option<String>,
}

impl PubSubConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            project_id: env.required(
                "PUBSUB_PROJECT_ID",
                "the Google Cloud project that owns the topics",
            )?,
            emulator_host: env.optional("PUBSUB_EMULATOR_HOST")?,
        })
    }

    pub fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{topic}", self.project_id)
    }

    pub fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{subscription}", self.project_id)
    }
}

/// `HUB_CONFIG_URL`.
pub fn hub_config_url(env: &Env) -> Result<String, ConfigError> {
    env.or_default("HUB_CONFIG_URL", "http://127.0.0.1:8090")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_is_named_on_one_line() {
        let env = Env::from_pairs([]);
        let err = ShopeeConfig::from_env(&env).unwrap_err().to_string();
        assert!(err.starts_with("SHOPEE_PARTNER_ID is not set"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn malformed_variable_is_named_with_the_problem() {
        let env = Env::from_pairs([("HTTP_ADDR", "not-an-addr")]);
        let err = BaseConfig::from_env(&env).unwrap_err().to_string();
        assert!(err.starts_with("HTTP_ADDR is malformed:"), "{err}");
    }

    #[test]
    fn defaults_apply_and_empty_counts_as_unset() {
        let env = Env::from_pairs([("LOG_FORMAT", "")]);
        let base = BaseConfig::from_env(&env).unwrap();
        assert_eq!(base.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(base.log_format, LogFormat::Pretty);
        assert_eq!(base.database_url.expose(), "postgres://localhost/seller_backend");
    }

    #[test]
    fn encryption_key_must_be_32_bytes() {
        let env = Env::from_pairs([("TOKEN_ENCRYPTION_KEY", "c2hvcnQ=")]);
        let err = token_encryption_key(&env).unwrap_err().to_string();
        assert!(
            err.contains("TOKEN_ENCRYPTION_KEY is malformed") && err.contains("got 5"),
            "{err}"
        );
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
        assert!(
            err.starts_with("SHOPEE_RATE_LIMIT_PER_SHOP is malformed"),
            "{err}"
        );
    }
}
