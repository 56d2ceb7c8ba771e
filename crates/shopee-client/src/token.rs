//! Shop tokens in PostgreSQL (`shop_tokens`), encrypted at rest, refreshed single-flight across replicas.
//!
//! Encryption: AES-256-GCM with `TOKEN_ENCRYPTION_KEY`; each column holds `nonce (12 bytes) || ciphertext+tag`, with
//! `shop_tokens:{shop_id}:{column}` as associated data so a ciphertext copied to another shop or column does not
//! decrypt.
//!
//! Single flight: a refresh takes `SELECT ... FOR UPDATE` on the shop's row inside a transaction, re-reads the row
//! and only calls Shopee when the row still needs it (another replica may have rotated the pair while we waited); the
//! rotated pair is written in the same transaction (`generation + 1`). Within one process, a tokio mutex per shop
//! makes all local callers share one database wait.
//!
//! Known limit: if Shopee rotates the pair and the process dies before the `COMMIT`, the new refresh token is lost
//! and the old one is spent: the seller must authorize again. The window is one HTTP round trip.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use chrono::{DateTime, Utc};
use domain::ShopId;
use rand::Rng;
use sqlx::{PgPool, Row};

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;
/// Shopee's refresh tokens live 30 days; it does not send their expiry, so we record this.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Authorizations last at most 365 days; used when Shopee does not say.
pub const AUTHORIZATION_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A shop's current token pair (decrypted). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub shop_id: ShopId,
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
    /// Grows by one at every rotation.
    pub generation: i64,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("shop_id", &self.shop_id)
            .field("access_token", &"***")
            .field("refresh_token", &"***")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("generation", &self.generation)
            .finish()
    }
}

impl TokenPair {
    /// True while more than `ahead` is left on the access token.
    pub fn is_fresh(&self, now: DateTime<Utc>, ahead: Duration) -> bool {
        let ahead = chrono::Duration::from_std(ahead).unwrap_or(chrono::Duration::zero());
        self.access_expires_at - ahead > now
    }
}

/// A new pair just received from Shopee.
#[derive(Clone)]
pub struct NewTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token lives (`expire_in`).
    pub expire_in: u64,
}

impl fmt::Debug for NewTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTokens")
            .field("expire_in", &self.expire_in)
            .finish_non_exhaustive()
    }
}

/// What an operator needs to know about a shop's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopAuthorization {
    pub shop_id: ShopId,
    pub authorized_at: Option<DateTime<Utc>>,
    pub authorization_expires_at: Option<DateTime<Utc>>,
    pub deauthorized_at: Option<DateTime<Utc>>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub generation: Option<i64>,
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// AES-256-GCM over the token columns.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCipher(***)")
    }
}

impl TokenCipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)),
        }
    }

    fn aad(shop_id: ShopId, column: &str) -> String {
        format!("shop_tokens:{shop_id}:{column}")
    }

    /// `nonce || ciphertext` with a fresh random nonce.
    pub fn encrypt(&self, shop_id: ShopId, column: &str, plaintext: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::aad(shop_id, column);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Crypto { shop_id })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, shop_id: ShopId, column: &str, stored: &[u8]) -> Result<String> {
        if stored.len() <= NONCE_LEN {
            return Err(Error::Crypto { shop_id });
        }
        let (nonce, ct) = stored.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Crypto { shop_id })?;
        let aad = Self::aad(shop_id, column);
        let pt = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Crypto { shop_id })?;
        String::from_utf8(pt).map_err(|_| Error::Crypto { shop_id })
    }
}

fn storage(e: sqlx::Error) -> Error {
    Error::Storage(e.to_string())
}

/// The `shop_tokens` / `shops` tables.
#[derive(Clone)]
pub struct TokenStore {
    pool: PgPool,
    cipher: TokenCipher,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenStore")
    }
}

const SELECT_PAIR: &str = "SELECT access_token_enc, refresh_token_enc, access_expires_at, refresh_expires_at, generation \
     FROM shop_tokens WHERE shop_id = $1";
const SELECT_PAIR_FOR_UPDATE: &str = "SELECT access_token_enc, refresh_token_enc, access_expires_at, refresh_expires_at, generation, \
     refresh_refused_generation, refresh_refused_reason FROM shop_tokens WHERE shop_id = $1 FOR UPDATE";

impl TokenStore {
    /// `key`: the 32-byte `TOKEN_ENCRYPTION_KEY`.
    pub fn new(pool: PgPool, key: [u8; 32]) -> Self {
        Self {
            pool,
            cipher: TokenCipher::new(key),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn decode(&self, shop_id: ShopId, row: &sqlx::postgres::PgRow) -> Result<TokenPair> {
        let access: Vec<u8> = row.try_get("access_token_enc").map_err(storage)?;
        let refresh: Vec<u8> = row.try_get("refresh_token_enc").map_err(storage)?;
        Ok(TokenPair {
            shop_id,
            access_token: self.cipher.decrypt(shop_id, "access_token", &access)?,
            refresh_token: self.cipher.decrypt(shop_id, "refresh_token", &refresh)?,
            access_expires_at: row.try_get("access_expires_at").map_err(storage)?,
            refresh_expires_at: row.try_get("refresh_expires_at").map_err(storage)?,
            generation: row.try_get("generation").map_err(storage)?,
        })
    }

    /// The stored pair, if any (no lock).
    pub async fn load(&self, shop_id: ShopId) -> Result<Option<TokenPair>> {
        let row = sqlx::query(SELECT_PAIR)
            .bind(shop_id.as_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        row.map(|r| self.decode(shop_id, &r)).transpose()
    }

    /// Stores a pair obtained from an authorization code: upserts the `shops` row (authorized now, authorization
    /// expiring at `authorization_expires_at` or in 365 days) and replaces any previous pair (`generation + 1`).
    pub async fn store_authorization(
        &self,
        shop_id: ShopId,
        tokens: &NewTokens,
        authorization_expires_at: Option<DateTime<Utc>>,
    ) -> Result<TokenPair> {
        let now = Utc::now();
        let auth_expiry = authorization_expires_at.unwrap_or_else(|| now + to_chrono(AUTHORIZATION_LIFETIME));
        let (access_expires_at, refresh_expires_at) = expiries(now, tokens.expire_in);
        let access_enc = self
            .cipher
            .encrypt(shop_id, "access_token", &tokens.access_token)?;
        let refresh_enc = self
            .cipher
            .encrypt(shop_id, "refresh_token", &tokens.refresh_token)?;
        let mut tx = self.pool.begin().await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO shops (shop_id, authorized_at, authorization_expires_at, deauthorized_at) \
             VALUES ($1, $2, $3, NULL) \
             ON CONFLICT (shop_id) DO UPDATE SET authorized_at = EXCLUDED.authorized_at, \
               authorization_expires_at = EXCLUDED.authorization_expires_at, deauthorized_at = NULL, updated_at = now()",
        )
        .bind(shop_id.as_i64())
        .bind(now)
        .bind(auth_expiry)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO shop_tokens (shop_id, access_token_enc, refresh_token_enc, access_expires_at, refresh_expires_at, generation, refreshed_at) \
             VALUES ($1, $2, $3, $4, $5, 1, now()) \
             ON CONFLICT (shop_id) DO UPDATE SET access_token_enc = EXCLUDED.access_token_enc, \
               refresh_token_enc = EXCLUDED.refresh_token_enc, access_expires_at = EXCLUDED.access_expires_at, \
               refresh_expires_at = EXCLUDED.refresh_expires_at, generation = shop_tokens.generation + 1, refreshed_at = now() \
             RETURNING generation",
        )
        .bind(shop_id.as_i64())
        .bind(&access_enc)
        .bind(&refresh_enc)
        .bind(access_expires_at)
        .bind(refresh_expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(TokenPair {
            shop_id,
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            access_expires_at,
            refresh_expires_at,
            generation,
        })
    }

    /// Under the row lock: re-reads the pair; if `needs_refresh` still says so, calls `refresh(refresh_token)` and
    /// stores the rotated pair in the same transaction. Returns the pair to use.
    pub(crate) async fn refresh_locked<F, Fut>(
        &self,
        shop_id: ShopId,
        needs_refresh: impl Fn(&TokenPair) -> bool,
        refresh: F,
    ) -> Result<TokenPair>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<NewTokens>>,
    {
        let mut tx = self.pool.begin().await.map_err(storage)?;
        // Never wait forever behind a replica stuck in its refresh.
        sqlx::query("SET LOCAL lock_timeout = '30s'")
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let row = sqlx::query(SELECT_PAIR_FOR_UPDATE)
            .bind(shop_id.as_i64())
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?
            .ok_or(Error::NotAuthorized { shop_id })?;
        let current = self.decode(shop_id, &row)?;
        if !needs_refresh(&current) {
            tx.commit().await.map_err(storage)?;
            return Ok(current);
        }
        let refused_generation: Option<i64> = row.try_get("refresh_refused_generation").map_err(storage)?;
        if refused_generation == Some(current.generation) {
            // Shopee already refused this refresh token: asking again can only fail the same way.
            let reason: Option<String> = row.try_get("refresh_refused_reason").map_err(storage)?;
            return Err(Error::Auth {
                api: "/api/v2/auth/access_token/get",
                shop_id: Some(shop_id),
                code: "refresh_token_refused".into(),
                message: reason.unwrap_or_default(),
                request_id: "-".into(),
            });
        }
        let new = match refresh(current.refresh_token.clone()).await {
            Ok(new) => new,
            Err(e @ Error::Auth { .. }) => {
                sqlx::query(
                    "UPDATE shop_tokens SET refresh_refused_generation = generation, refresh_refused_reason = $2 \
                     WHERE shop_id = $1",
                )
                .bind(shop_id.as_i64())
                .bind(e.to_string())
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
                tx.commit().await.map_err(storage)?;
                tracing::error!(shop.id = %shop_id, error = %e, "Shopee refused the refresh token; the shop needs a new authorization");
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let now = Utc::now();
        let (access_expires_at, refresh_expires_at) = expiries(now, new.expire_in);
        let access_enc = self.cipher.encrypt(shop_id, "access_token", &new.access_token)?;
        let refresh_enc = self
            .cipher
            .encrypt(shop_id, "refresh_token", &new.refresh_token)?;
        let generation: i64 = sqlx::query_scalar(
            "UPDATE shop_tokens SET access_token_enc = $2, refresh_token_enc = $3, access_expires_at = $4, \
               refresh_expires_at = $5, generation = generation + 1, refreshed_at = now() \
             WHERE shop_id = $1 RETURNING generation",
        )
        .bind(shop_id.as_i64())
        .bind(&access_enc)
        .bind(&refresh_enc)
        .bind(access_expires_at)
        .bind(refresh_expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(TokenPair {
            shop_id,
            access_token: new.access_token,
            refresh_token: new.refresh_token,
            access_expires_at,
            refresh_expires_at,
            generation,
        })
    }

    /// Push code 2 (or an operator): the shop withdrew its authorization. Marks the shop and deletes its tokens.
    pub async fn deauthorize(&self, shop_id: ShopId) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(storage)?;
        sqlx::query("DELETE FROM shop_tokens WHERE shop_id = $1")
            .bind(shop_id.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        sqlx::query("UPDATE shops SET deauthorized_at = now(), updated_at = now() WHERE shop_id = $1")
            .bind(shop_id.as_i64())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    /// Every known shop's authorization, by shop id.
    pub async fn authorizations(&self) -> Result<Vec<ShopAuthorization>> {
        let rows = sqlx::query(
            "SELECT s.shop_id, s.authorized_at, s.authorization_expires_at, s.deauthorized_at, \
                    t.access_expires_at, t.refresh_expires_at, t.generation, t.refreshed_at \
             FROM shops s LEFT JOIN shop_tokens t ON t.shop_id = s.shop_id ORDER BY s.shop_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("shop_id").map_err(storage)?;
                let shop_id = ShopId::from_i64(id).map_err(|e| Error::Storage(e.to_string()))?;
                authorization_row(shop_id, r)
            })
            .collect()
    }

    /// Authorization and token expiry of a shop (`None` when the shop is unknown).
    pub async fn authorization(&self, shop_id: ShopId) -> Result<Option<ShopAuthorization>> {
        let row = sqlx::query(
            "SELECT s.authorized_at, s.authorization_expires_at, s.deauthorized_at, \
                    t.access_expires_at, t.refresh_expires_at, t.generation, t.refreshed_at \
             FROM shops s LEFT JOIN shop_tokens t ON t.shop_id = s.shop_id WHERE s.shop_id = $1",
        )
        .bind(shop_id.as_i64())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        row.map(|r| authorization_row(shop_id, &r)).transpose()
    }
}

fn authorization_row(shop_id: ShopId, r: &sqlx::postgres::PgRow) -> Result<ShopAuthorization> {
    Ok(ShopAuthorization {
        shop_id,
        authorized_at: r.try_get("authorized_at").map_err(storage)?,
        authorization_expires_at: r.try_get("authorization_expires_at").map_err(storage)?,
        deauthorized_at: r.try_get("deauthorized_at").map_err(storage)?,
        access_expires_at: r.try_get("access_expires_at").map_err(storage)?,
        refresh_expires_at: r.try_get("refresh_expires_at").map_err(storage)?,
        generation: r.try_get("generation").map_err(storage)?,
        refreshed_at: r.try_get("refreshed_at").map_err(storage)?,
    })
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

fn expiries(now: DateTime<Utc>, expire_in: u64) -> (DateTime<Utc>, DateTime<Utc>) {
    let access = now + to_chrono(Duration::from_secs(expire_in));
    let refresh = (now + to_chrono(REFRESH_TOKEN_LIFETIME)).max(access);
    (access, refresh)
}

/// Per-process cache and single flight in front of the [`TokenStore`].
pub(crate) struct TokenManager {
    pub(crate) store: TokenStore,
    slots: Mutex<HashMap<ShopId, Arc<tokio::sync::Mutex<Option<TokenPair>>>>>,
    ahead: Duration,
}

impl TokenManager {
    pub(crate) fn new(store: TokenStore, ahead: Duration) -> Self {
        Self {
            store,
            slots: Mutex::new(HashMap::new()),
            ahead,
        }
    }

    fn slot(&self, shop_id: ShopId) -> Arc<tokio::sync::Mutex<Option<TokenPair>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(shop_id).or_default().clone()
    }

    /// A pair with more than `ahead` left, refreshing it (once, across replicas) when needed.
    pub(crate) async fn current<F, Fut>(&self, shop_id: ShopId, refresh: F) -> Result<TokenPair>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<NewTokens>>,
    {
        let slot = self.slot(shop_id);
        let mut cached = slot.lock().await;
        let ahead = self.ahead;
        if let Some(p) = cached.as_ref().filter(|p| p.is_fresh(Utc::now(), ahead)) {
            return Ok(p.clone());
        }
        let loaded = self
            .store
            .load(shop_id)
            .await?
            .ok_or(Error::NotAuthorized { shop_id })?;
        if loaded.is_fresh(Utc::now(), ahead) {
            *cached = Some(loaded.clone());
            return Ok(loaded);
        }
        let pair = match self
            .store
            .refresh_locked(shop_id, |p| !p.is_fresh(Utc::now(), ahead), refresh)
            .await
        {
            Ok(pair) => pair,
            // The early refresh was refused, but the access token still works until it expires: use it.
            Err(Error::Auth { .. }) if loaded.access_expires_at > Utc::now() => loaded,
            Err(e) => return Err(e),
        };
        *cached = Some(pair.clone());
        Ok(pair)
    }

    /// Shopee refused the access token of `rejected_generation`: refresh unless someone (here or another replica)
    /// already rotated past it.
    pub(crate) async fn after_rejection<F, Fut>(
        &self,
        shop_id: ShopId,
        rejected_generation: i64,
        refresh: F,
    ) -> Result<TokenPair>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<NewTokens>>,
    {
        let slot = self.slot(shop_id);
        let mut cached = slot.lock().await;
        if let Some(p) = cached.as_ref().filter(|p| p.generation > rejected_generation) {
            return Ok(p.clone());
        }
        let pair = self
            .store
            .refresh_locked(shop_id, |p| p.generation <= rejected_generation, refresh)
            .await?;
        *cached = Some(pair.clone());
        Ok(pair)
    }

    /// Forgets the cached pair of a shop.
    pub(crate) async fn forget(&self, shop_id: ShopId) {
        let slot = self.slot(shop_id);
        *slot.lock().await = None;
    }

    /// Replaces the cached pair (after a new authorization).
    pub(crate) async fn set_cached(&self, pair: TokenPair) {
        let slot = self.slot(pair.shop_id);
        *slot.lock().await = Some(pair);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cipher_round_trips_and_binds_shop_and_column() {
        let c = TokenCipher::new([7u8; 32]);
        let shop = ShopId::new(1).unwrap();
        let enc = c.encrypt(shop, "access_token", "secret-token").unwrap();
        assert_eq!(&enc.len(), &(12 + "secret-token".len() + 16));
        assert!(!enc.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.decrypt(shop, "access_token", &enc).unwrap(), "secret-token");
        assert!(c.decrypt(ShopId::new(2).unwrap(), "access_token", &enc).is_err());
        assert!(c.decrypt(shop, "refresh_token", &enc).is_err());
        assert!(
            TokenCipher::new([8u8; 32])
                .decrypt(shop, "access_token", &enc)
                .is_err()
        );
        // Two encryptions of one value differ (fresh nonce).
        assert_ne!(enc, c.encrypt(shop, "access_token", "secret-token").unwrap());
    }

    #[test]
    fn freshness_honours_the_margin() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let pair = TokenPair {
            shop_id: ShopId::new(1).unwrap(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at: now + chrono::Duration::minutes(6),
            refresh_expires_at: now + chrono::Duration::days(30),
            generation: 1,
        };
        assert!(pair.is_fresh(now, Duration::from_secs(300)));
        assert!(!pair.is_fresh(now + chrono::Duration::minutes(2), Duration::from_secs(300)));
        assert!(!format!("{pair:?}").contains("\"a\""));
    }

    proptest! {
        #[test]
        fn any_tampering_is_detected(token in "[ -~]{1,64}", idx in any::<usize>(), flip in 1u8..=255) {
            let c = TokenCipher::new([3u8; 32]);
            let shop = ShopId::new(9).unwrap();
            let mut enc = c.encrypt(shop, "refresh_token", &token).unwrap();
            prop_assert_eq!(c.decrypt(shop, "refresh_token", &enc).unwrap(), token);
            let i = idx % enc.len();
            enc[i] ^= flip;
            prop_assert!(c.decrypt(shop, "refresh_token", &enc).is_err());
        }
    }
}
