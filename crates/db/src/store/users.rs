//! Web users, sessions and API tokens in the case database, and the audit log of admin
//! actions. Passwords are argon2 PHC strings; session ids and tokens are kept as sha256
//! hashes, so a copy of the database gives no way in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

/// Shortest password anyone may set, in the UI or with `citywatch user add`.
pub const MIN_PASSWORD: usize = 10;
/// The rule for user names, as said to whoever breaks it.
pub const NAME_RULE: &str = "1 to 64 letters, digits, '_', '.' or '-'";
/// The rule for passwords, as said to whoever breaks it.
pub const PASSWORD_RULE: &str = "at least 10 characters";

/// Whether `name` may be a user's name (see [`NAME_RULE`]).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Whether `password` may be set (see [`PASSWORD_RULE`]).
pub fn valid_password(password: &str) -> bool {
    password.chars().count() >= MIN_PASSWORD
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A random URL-safe secret of 32 bytes.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    getrandom(&mut b);
    hex::encode(b)
}

fn getrandom(buf: &mut [u8]) {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(buf);
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters")
        .to_string()
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl Store {
    /// Adds a user, or replaces the role and password of an existing one.
    pub async fn upsert_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        let hash = hash_password(password);
        sqlx::query("INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash")
        .bind(name)
        .bind(role.as_str())
        .bind(&hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.audit("cli", "user.add", name, Some(role.as_str()), now)
            .await
    }

    /// Checks a password; the user when it matches.
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT role, password_hash, disabled FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        let Some((role, hash, disabled)) = row else {
            // Spend the same time as a real check, so a name cannot be probed by timing.
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let _ = verify_password(password, DUMMY.get_or_init(|| hash_password("-")));
            return Ok(None);
        };
        let role =
            Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?;
        Ok(
            (verify_password(password, &hash) && disabled == 0).then(|| User {
                name: name.into(),
                role,
            }),
        )
    }

    /// Starts a session; returns the cookie value (only its hash is stored) and the CSRF token.
    pub async fn create_session(
        &self,
        user: &str,
        ttl_s: f64,
        now: f64,
    ) -> Result<(String, String), StoreError> {
        let token = random_secret();
        let csrf = random_secret();
        sqlx::query(
            "INSERT INTO sessions (id, user_name, csrf, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(user)
        .bind(&csrf)
        .bind(now + ttl_s)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok((token, csrf))
    }

    /// The session of a cookie, unless it expired (absolutely, or unused for `idle_s`) or its
    /// user is disabled. Using it keeps it alive.
    pub async fn session(
        &self,
        token: &str,
        now: f64,
        idle_s: f64,
    ) -> Result<Option<Session>, StoreError> {
        let id = sha256_hex(token);
        let row: Option<(String, String, String, f64)> = sqlx::query_as("SELECT s.csrf, u.name, u.role, s.last_seen_at FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.id = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.disabled = 0")
        .bind(&id)
        .bind(now)
        .bind(now - idle_s)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        if let Some((_, _, _, seen)) = &row {
            // Written at most every 10 s, not on every request.
            if now - *seen >= 10.0 {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        row.map(|(csrf, name, role, _)| -> Result<Session, StoreError> {
            Ok(Session {
                csrf,
                user: User {
                    name,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
                },
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(sha256_hex(token))
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes an API token for a user; returns it (only its hash is stored).
    pub async fn create_token(
        &self,
        user: &str,
        label: &str,
        now: f64,
    ) -> Result<String, StoreError> {
        let token = format!("cwt_{}", random_secret());
        sqlx::query(
            "INSERT INTO api_tokens (id, user_name, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(user)
        .bind(label)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.audit("cli", "token.create", user, Some(label), now)
            .await?;
        Ok(token)
    }

    pub async fn token_user(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT u.name, u.role FROM api_tokens t JOIN users u ON u.name = t.user_name \
             WHERE t.id = $1 AND u.disabled = 0",
        )
        .bind(sha256_hex(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        row.map(|(name, role)| -> Result<User, StoreError> {
            Ok(User {
                name,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
            })
        })
        .transpose()
    }
}

/// A user as the admin page lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: f64,
    /// Sessions alive now.
    pub sessions: i64,
}

impl Store {
    /// Every user, by name.
    pub async fn list_users(&self, now: f64) -> Result<Vec<UserRow>, StoreError> {
        let g = |e| self.err(e);
        let rows: Vec<(String, String, i64, f64, i64)> = sqlx::query_as(
            "SELECT u.name, u.role, u.disabled, u.created_at, \
             (SELECT COUNT(*) FROM sessions s WHERE s.user_name = u.name AND s.expires_at > $1) \
             FROM users u ORDER BY u.name",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(g)?;
        Ok(rows
            .into_iter()
            .map(|(name, role, disabled, created_at, sessions)| UserRow {
                name,
                role,
                disabled: disabled != 0,
                created_at,
                sessions,
            })
            .collect())
    }

    /// An admin adds a user. Refuses a name that exists (false).
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let hash = hash_password(password);
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let added = sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected()
            == 1;
        if added {
            self.audit_in(
                &mut tx,
                None,
                now,
                actor,
                "user.add",
                name,
                Some(role.as_str()),
            )
            .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(added)
    }

    /// Disables or enables a user; disabling ends their sessions. False: no such user.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let found = sqlx::query("UPDATE users SET disabled = $2 WHERE name = $1")
            .bind(name)
            .bind(i64::from(disabled))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected()
            == 1;
        if found {
            if disabled {
                self.end_sessions_in(&mut tx, name).await?;
            }
            let action = if disabled {
                "user.disable"
            } else {
                "user.enable"
            };
            self.audit_in(&mut tx, None, now, actor, action, name, None)
                .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(found)
    }

    /// Sets a new password and ends the user's sessions. False: no such user.
    pub async fn reset_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let hash = hash_password(password);
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let found = sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
            .bind(name)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected()
            == 1;
        if found {
            self.end_sessions_in(&mut tx, name).await?;
            self.audit_in(&mut tx, None, now, actor, "user.reset_password", name, None)
                .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(found)
    }

    async fn end_sessions_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2_and_verify() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert_ne!(h, hash_password("correct horse"), "salted");
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
