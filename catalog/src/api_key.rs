//! API keys: who may call the admin API, and what they may do there.
//!
//! A key is made like a stream key (see `key`: 32 random bytes shown once as `ak_` + hex,
//! only its SHA-256 stored) and has a name, so an operator can list and remove keys without
//! ever seeing one again, and a [`Scope`]. `sealcast up` makes one named `admin` on its
//! first start ([`Catalog::has_api_keys`] tells it whether this is one).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::{now_unix, with_pool};
use crate::columns::parse_name_of;
use crate::key::{ApiKey, ApiKeyKind, KeyHash};
use crate::{sql, Catalog, CatalogError};

/// How often `last_used_at` is written, at most: it tells an operator whether a key is
/// still in use, for which the minute is precise enough, and the dashboard calls the API
/// every 2 seconds, which must not mean a database write every 2 seconds.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// Longest API key name, in bytes (all ASCII).
const MAX_NAME_LEN: usize = 64;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every `GET` route: for dashboards and monitoring, which should not be able to change
    /// anything.
    Read,
    /// Every route.
    Admin,
}

impl Scope {
    /// Every scope, narrowest first.
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Admin];

    /// The scope's name: `read` or `admin`, as stored and as the CLI and API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of this scope may call a route that requires `required`: `admin`
    /// allows everything, `read` only `read`.
    pub fn allows(self, required: Scope) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Read => required == Scope::Read,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = CatalogError;

    /// Parses `read` or `admin` (exactly; as `--scope` and the stored column spell it).
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        parse_name_of(&Scope::ALL, Scope::as_str, "API key scope", s)
    }
}

/// One API key, as `sealcast api-keys list` prints it. Holds nothing secret: the key's hash
/// stays in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    /// The key's name, unique, to list and remove it by.
    pub name: String,
    /// What the key may do.
    pub scope: Scope,
    /// When the key was made, in unix seconds.
    pub created_at: i64,
    /// When the key was last accepted, in unix seconds, to the minute; `None` if never.
    /// Lets an operator spot keys nobody uses any more.
    pub last_used_at: Option<i64>,
}

/// An `api_keys` row as read (without its hash), before its scope is checked.
#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    name: String,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl ApiKeyRow {
    fn into_record(self) -> Result<ApiKeyRecord, CatalogError> {
        let scope = self
            .scope
            .parse()
            .map_err(|e: CatalogError| CatalogError::InvalidRow {
                column: "scope",
                reason: e.to_string(),
            })?;
        Ok(ApiKeyRecord {
            name: self.name,
            scope,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// An `api_keys` row found by its hash, with the hash to compare again.
#[derive(sqlx::FromRow)]
struct ApiKeyHashRow {
    key_hash: String,
    #[sqlx(flatten)]
    key: ApiKeyRow,
}

/// Checks an API key name: 1 to 64 ASCII letters, digits, `_` or `-`, so it needs no
/// quoting on a command line or in a URL. The error never repeats the name (a pasted key
/// is 67 such characters, so it always fails here).
fn check_name(name: &str) -> Result<(), CatalogError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(CatalogError::InvalidApiKeyName {
            reason: "use 1 to 64 ASCII letters, digits, '_' or '-'",
        })
    }
}

impl Catalog {
    /// Makes an API key and returns it with its record; the key is shown this once and
    /// stored only as a hash.
    ///
    /// Fails with [`CatalogError::InvalidApiKeyName`] if the name is not 1 to 64 ASCII
    /// letters, digits, `_` or `-`, and with [`CatalogError::ApiKeyExists`] if it is taken
    /// (the existing key stays valid).
    pub async fn add_api_key(
        &self,
        name: &str,
        scope: Scope,
    ) -> Result<(ApiKeyRecord, ApiKey), CatalogError> {
        check_name(name)?;
        let key = ApiKey::generate().map_err(CatalogError::Random)?;
        let created_at = now_unix();
        let inserted = with_pool!(&self.pool, |p| sqlx::query(sql::API_KEY_INSERT)
            .bind(name)
            .bind(key.hash().as_str())
            .bind(scope.as_str())
            .bind(created_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if inserted == 0 {
            return Err(CatalogError::ApiKeyExists {
                name: name.to_owned(),
            });
        }
        tracing::info!(name, %scope, "API key added");
        let record = ApiKeyRecord {
            name: name.to_owned(),
            scope,
            created_at,
            last_used_at: None,
        };
        Ok((record, key))
    }

    /// The API key whose text is `presented` (an `x-api-key` header), or `None` if it is
    /// malformed (a stream key, say) or no key we issued.
    ///
    /// Checked like a stream key (see [`Catalog::authenticate`]): looked up by hash, the
    /// hash compared again in constant time, neither logged. An accepted key's
    /// `last_used_at` is brought up to date when it is a minute or more behind, so a busy
    /// dashboard costs one read per request and one write per minute; if that write fails,
    /// the key is still accepted (the time is a hint for operators, not a permission).
    pub async fn authenticate_api_key(
        &self,
        presented: &str,
    ) -> Result<Option<ApiKeyRecord>, CatalogError> {
        let Some(hash) = KeyHash::of_presented::<ApiKeyKind>(presented) else {
            tracing::debug!("presented API key is malformed");
            return Ok(None);
        };
        let row: Option<ApiKeyHashRow> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::API_KEY_BY_HASH)
                .bind(hash.as_str())
                .fetch_optional(p)
                .await)?;
        let Some(row) = row.filter(|row| hash.matches_stored(&row.key_hash)) else {
            tracing::debug!("presented API key matches no key");
            return Ok(None);
        };
        let mut record = row.key.into_record()?;
        let now = now_unix();
        let stale_before = now - LAST_USED_GRANULARITY_SECS;
        if record.last_used_at.is_none_or(|t| t < stale_before) {
            let touched = with_pool!(&self.pool, |p| sqlx::query(sql::API_KEY_TOUCH)
                .bind(now)
                .bind(record.name.as_str())
                .bind(stale_before)
                .execute(p)
                .await
                .map(drop));
            match touched {
                Ok(_) => record.last_used_at = Some(now),
                Err(error) => tracing::warn!(
                    name = %record.name,
                    %error,
                    "cannot record an API key's last use; accepting it anyway"
                ),
            }
        }
        tracing::debug!(name = %record.name, scope = %record.scope, "API key accepted");
        Ok(Some(record))
    }

    /// Every API key, ordered by name (byte order, the same on both backends).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, CatalogError> {
        let rows: Vec<ApiKeyRow> = with_pool!(&self.pool, |p| sqlx::query_as(sql::API_KEY_LIST)
            .fetch_all(p)
            .await)?;
        let mut keys = rows
            .into_iter()
            .map(ApiKeyRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// Removes the API key named `name`; it stops working at once. Fails with
    /// [`CatalogError::InvalidApiKeyName`] for a name no key can have (so a key pasted by
    /// mistake is not echoed back) and [`CatalogError::ApiKeyNotFound`] if there is no such
    /// key.
    pub async fn remove_api_key(&self, name: &str) -> Result<(), CatalogError> {
        check_name(name)?;
        let deleted = with_pool!(&self.pool, |p| sqlx::query(sql::API_KEY_DELETE)
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if deleted == 0 {
            return Err(CatalogError::ApiKeyNotFound {
                name: name.to_owned(),
            });
        }
        tracing::info!(name, "API key removed");
        Ok(())
    }

    /// Whether any API key exists: `sealcast up` makes its `admin` key only when none does,
    /// so an operator who removed it (having made others) is not handed a new one.
    pub async fn has_api_keys(&self) -> Result<bool, CatalogError> {
        let any: Option<(String,)> = with_pool!(&self.pool, |p| sqlx::query_as(sql::API_KEY_ANY)
            .fetch_optional(p)
            .await)?;
        Ok(any.is_some())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn scope_allows() {
        assert!(Scope::Admin.allows(Scope::Admin));
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Admin));
    }

    #[test]
    fn scope_spellings() {
        for (scope, text) in [(Scope::Read, "read"), (Scope::Admin, "admin")] {
            assert_eq!(scope.to_string(), text);
            assert_eq!(text.parse::<Scope>().expect("parses"), scope);
            let json = serde_json::to_string(&scope).expect("serializes");
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Scope>(&json).expect("deserializes"),
                scope
            );
        }
        for bad in ["", "Read", "ADMIN", "write", " read", "read "] {
            assert!(
                matches!(
                    bad.parse::<Scope>(),
                    Err(CatalogError::InvalidInput {
                        what: "API key scope",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names() {
        for ok in ["admin", "a", "dash-board_2", "_", "-x", &"n".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok:?}");
        }
        let key = ApiKey::generate().expect("OS random source");
        for bad in [
            "",
            "with space",
            "dots.no",
            "é",
            &"n".repeat(65),
            key.expose_secret(),
        ] {
            let err = check_name(bad).expect_err(bad);
            assert!(matches!(err, CatalogError::InvalidApiKeyName { .. }));
            assert!(!err.to_string().contains(bad) || bad.is_empty());
        }
    }

    proptest! {
        /// Exactly the two names parse, and each parses to what displays as it.
        #[test]
        fn scope_parses_only_its_own_names(s in "(read|admin|[a-zA-Z ]{0,8})") {
            match s.parse::<Scope>() {
                Ok(scope) => prop_assert_eq!(scope.to_string(), s),
                Err(_) => prop_assert!(s != "read" && s != "admin"),
            }
        }
    }
}
