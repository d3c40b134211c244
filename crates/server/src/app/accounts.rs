//! Who is calling: token secrets to accounts and scopes, with a short-lived cache so that a
//! busy client does not cost a catalog query per request.

use super::{unix_now, App, AppResult, Error};
use crate::auth;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidepool_api::{Scope, Scopes};
use tidepool_catalog::{AccountId, TokenRecord};

/// The id of one request, as its `X-Request-Id` header, error bodies and log lines show it.
/// A plain value (no allocation) because every request makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(uuid::Uuid);

impl RequestId {
    pub fn new() -> Self {
        RequestId(uuid::Uuid::new_v4())
    }

    /// The id's text into `buf`, without allocating.
    pub fn encode<'b>(&self, buf: &'b mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &'b str {
        self.0.hyphenated().encode_lower(buf)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    /// For request logs; the token itself is never logged. Shared with the token cache, so that
    /// a request does not copy it.
    pub account_name: Arc<str>,
    pub token_id: i64,
    pub scopes: Scopes,
    /// The request this caller makes, recorded with the jobs it queues so that their log lines
    /// lead back to it.
    pub request_id: Option<RequestId>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> AppResult<()> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "You do not have access for the attempted action: this token lacks the {} scope.",
                scope.as_str()
            )))
        }
    }
}

/// How long a token lookup is trusted before the catalog is asked again.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Bounds the cache against a flood of distinct (invalid) tokens.
const CACHE_MAX: usize = 10_000;

/// A token as the cache keeps it.
#[derive(Debug, Clone)]
struct CachedToken {
    account: AccountId,
    account_name: Arc<str>,
    token_id: i64,
    scopes: Scopes,
}

impl From<TokenRecord> for CachedToken {
    fn from(record: TokenRecord) -> Self {
        CachedToken {
            account: record.account,
            account_name: record.account_name.into(),
            token_id: record.token_id,
            scopes: record.scopes,
        }
    }
}

#[derive(Default)]
pub(super) struct TokenCache {
    entries: Mutex<HashMap<String, (Option<CachedToken>, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Option<CachedToken>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(record, _)| record.clone())
    }

    fn put(&self, hash: String, record: Option<CachedToken>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (record, Instant::now()));
    }
}

impl App {
    /// The caller a bearer token stands for, making request `request_id`.
    pub async fn authenticate(
        &self,
        secret: &str,
        request_id: Option<RequestId>,
    ) -> AppResult<Caller> {
        let hash = auth::token_hash(secret);
        let record = match self.inner.tokens.get(&hash) {
            Some(record) => record,
            None => {
                let record = self
                    .catalog()
                    .token_lookup(&hash)
                    .await?
                    .map(CachedToken::from);
                self.inner.tokens.put(hash, record.clone());
                record
            }
        };
        let record = record.ok_or(Error::Unauthenticated)?;
        Ok(Caller {
            account: record.account,
            account_name: record.account_name,
            token_id: record.token_id,
            scopes: record.scopes,
            request_id,
        })
    }

    /// Creates a token for `account` (creating the account too) and returns its secret, which
    /// is not stored anywhere.
    pub async fn token_create(&self, account: &str, scopes: Scopes) -> AppResult<String> {
        let account = account.trim();
        if account.is_empty() {
            return Err(Error::Invalid("account: must not be empty".into()));
        }
        let id = self.catalog().account_ensure(account, unix_now()).await?;
        let secret = auth::generate_token();
        self.catalog()
            .token_insert(id, &auth::token_hash(&secret), scopes, unix_now())
            .await?;
        Ok(secret)
    }

    /// On the very first start, with no token at all, creates account `default` with a
    /// full-scope token and returns its secret so that start-up can show it once.
    pub async fn bootstrap_token(&self) -> AppResult<Option<String>> {
        if self.catalog().token_count().await? > 0 {
            return Ok(None);
        }
        self.token_create("default", Scopes::all()).await.map(Some)
    }
}
