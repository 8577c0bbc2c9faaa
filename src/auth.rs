//! Who is calling: password hashing, login tokens, and `AuthUser`, the
//! proven caller (REST extracts it in `http::extract`; the WebSocket
//! upgrade checks the token itself).

use actix_web::{web, HttpRequest};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::db::models::UserRow;
use crate::db::{self, from_db_time, Db};
use crate::domain::rate_limit::TokenBucket;
use crate::domain::Role;
use crate::error::{AppError, AppResult};

/// The caller of a request, proven by a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl AuthUser {
    pub fn from_row(row: &UserRow) -> AppResult<Self> {
        Ok(Self {
            id: Uuid::parse_str(&row.id).map_err(AppError::internal)?,
            email: row.email.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role).ok_or_else(|| AppError::internal(format!("unknown role {}", row.role)))?,
        })
    }
}

/// Hashes a password with Argon2id and a fresh salt. Slow on purpose: call
/// it off the async threads.
pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(AppError::internal)
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A new random token (256 bits, hex) and the digest under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let digest = token_digest(&token);
    (token, digest)
}

pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short fingerprint of a token, for telling which socket was opened
/// with which token (16 bytes of its digest: no collision among one user's).
pub fn token_fingerprint(token: &str) -> u128 {
    let digest = Sha256::digest(token.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(bytes)
}

/// Runs password hashes off the async threads, a bounded number at once:
/// each Argon2 hash holds about 19 MiB while it runs, so unbounded logins
/// would be a way to exhaust memory without an account.
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    /// How long an attempt may wait for its turn before it is refused.
    wait: std::time::Duration,
}

impl PasswordHashing {
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), wait: std::time::Duration::from_secs(2) }
    }

    /// Slots free now (for `/metrics` and tests).
    pub fn idle_slots(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `work` (a hash or a verification) when a slot is free, or
    /// answers 503 `busy` (with `Retry-After`) after the wait.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| AppError::unavailable("busy", "Too many sign-ins at once; please retry in a moment."))?;
        Ok(web::block(move || {
            let _permit = permit;
            work()
        })
        .await?)
    }
}

/// Limits how often sign-in and sign-up are tried, per key (a client
/// address, an account): a token bucket each, refilled over a minute.
pub struct AttemptLimiter {
    per_minute: u32,
    buckets: DashMap<String, TokenBucket>,
}

/// Buckets kept before idle ones are dropped (so the map stays bounded).
const MAX_ATTEMPT_BUCKETS: usize = 10_000;

impl AttemptLimiter {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, buckets: DashMap::new() }
    }

    /// Takes one attempt for `key`; 429 when its bucket is empty.
    pub fn attempt(&self, key: &str) -> AppResult<()> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if self.buckets.len() >= MAX_ATTEMPT_BUCKETS && !self.buckets.contains_key(key) {
            // Full buckets hold nothing worth remembering.
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.per_minute);
        let allowed =
            self.buckets.entry(key.to_string()).or_insert_with(|| TokenBucket::new(rate, burst, now)).try_take(now);
        if allowed {
            Ok(())
        } else {
            Err(AppError::rate_limited("Too many attempts; wait a minute and try again."))
        }
    }
}

/// Checks tokens, remembering recent answers so a busy client does not cost
/// a database read per request. Revocation goes through `forget`.
pub struct Authenticator {
    db: Db,
    clock: SharedClock,
    known: DashMap<String, (AuthUser, DateTime<Utc>)>,
    /// Password hashes, a bounded number at once.
    pub hashing: PasswordHashing,
    /// Sign-in and sign-up attempts per client address.
    pub attempts_by_client: AttemptLimiter,
    /// Sign-in attempts per account.
    pub attempts_by_account: AttemptLimiter,
}

impl Authenticator {
    pub fn new(db: Db, clock: SharedClock, config: &crate::config::Config) -> Self {
        Self {
            db,
            clock,
            known: DashMap::new(),
            hashing: PasswordHashing::new(config.password_hash_concurrency()),
            attempts_by_client: AttemptLimiter::new(config.auth_attempts_per_client),
            attempts_by_account: AttemptLimiter::new(config.auth_attempts_per_account),
        }
    }

    pub async fn authenticate(&self, token: &str) -> AppResult<AuthUser> {
        self.authenticate_until(token).await.map(|(user, _)| user)
    }

    /// The token's owner and when the token expires.
    pub async fn authenticate_until(&self, token: &str) -> AppResult<(AuthUser, DateTime<Utc>)> {
        let digest = token_digest(token);
        let now = self.clock.now();
        if let Some(entry) = self.known.get(&digest) {
            let (user, expires_at) = entry.value();
            if *expires_at > now {
                return Ok((user.clone(), *expires_at));
            }
        }
        let lookup = digest.clone();
        let found = self.db.read(move |conn| Ok(db::tokens::find_owner(conn, &lookup)?)).await?;
        let Some((row, expires_at)) = found else {
            self.known.remove(&digest);
            return Err(AppError::unauthorized("This token is unknown or was revoked; please sign in again."));
        };
        let expires_at = from_db_time(expires_at);
        if expires_at <= now {
            self.known.remove(&digest);
            return Err(AppError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                "This token has expired; please sign in again.",
            ));
        }
        let user = AuthUser::from_row(&row)?;
        self.known.insert(digest, (user.clone(), expires_at));
        Ok((user, expires_at))
    }

    /// Drops a token from memory; the caller revokes it in the database.
    pub fn forget(&self, token: &str) {
        self.known.remove(&token_digest(token));
    }
}

/// The token of a request: the `Authorization: Bearer` header, or for the
/// WebSocket upgrade (browsers cannot set headers there) `?token=`.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    token_of(req.headers(), req.query_string())
}

/// As [`bearer_token`], from a request's headers and query string (the
/// WebSocket upgrade is served outside actix-web, without an `HttpRequest`).
pub fn token_of(headers: &actix_web::http::header::HeaderMap, query: &str) -> Option<String> {
    if let Some(header) = headers.get(actix_web::http::header::AUTHORIZATION) {
        let value = header.to_str().ok()?;
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
        return Some(token.trim().to_string());
    }
    web::Query::<TokenQuery>::from_query(query).ok().and_then(|q| q.into_inner().token)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let (a, digest_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(digest_a, token_digest(&a));
        assert_ne!(digest_a, a);
    }
}
