//! SCRAM credentials (KIP-554): list the users that have them, set a user's password for SCRAM-SHA-256 or
//! SCRAM-SHA-512, delete a credential.
//!
//! The password never leaves the client: weir draws a random salt and sends
//! `PBKDF2-HMAC-SHA-{256,512}(password, salt, iterations)`, from which the broker derives the stored keys (as
//! Kafka's own admin client does). Altering credentials needs `ALTER` on the cluster, describing them
//! `DESCRIBE`.
//!
//! ```no_run
//! use weir::admin::ScramMechanism;
//! use weir::config::Secret;
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! let password = Secret::new("carol-secret");
//! admin.upsert_scram_credential("carol", ScramMechanism::ScramSha512, &password, None).await?;
//! for user in admin.describe_user_scram_credentials(Some(&["carol"])).await? {
//!     println!("{}: {:?}", user.user, user.credentials?);
//! }
//! admin.delete_scram_credential("carol", ScramMechanism::ScramSha512).await?;
//! # Ok(()) }
//! ```

use bytes::Bytes;
use rand::RngCore;
use sha2::{Sha256, Sha512};
pub use weir_proto::scram_credentials::ScramMechanism;
use weir_proto::scram_credentials::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, ScramCredentialDeletion,
    ScramCredentialUpsertion,
};

use super::{count_mismatch, Admin};
use crate::config::Secret;
use crate::error::{check, Error, Result};

/// The PBKDF2 iterations weir uses when none are given.
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 8192;
/// The fewest iterations Kafka accepts for either mechanism.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;
/// The most iterations Kafka accepts for either mechanism.
pub const MAX_SCRAM_ITERATIONS: u32 = 16384;
/// Bytes of random salt weir draws for each credential.
const SALT_LEN: usize = 32;

/// One stored credential of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScramCredentialInfo {
    /// The mechanism it serves.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iterations it was made with (0 if the broker sent a negative number).
    pub iterations: u32,
}

/// A user's SCRAM credentials, as [`Admin::describe_user_scram_credentials`] finds them.
#[derive(Debug, Clone)]
pub struct UserScramCredentials {
    /// The user name.
    pub user: String,
    /// The user's credentials, one per mechanism (SCRAM-SHA-256 first), or the error for this user: [`crate::Error::Kafka`] with
    /// `ResourceNotFound` for a user named in the request who has no credential, `DuplicateResource` for a
    /// user named twice.
    pub credentials: Result<Vec<ScramCredentialInfo>>,
}

/// A change to one user's SCRAM credentials, for [`Admin::alter_user_scram_credentials`] (at most one per user
/// in a request).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScramAlteration {
    /// Creates or replaces the user's credential for `mechanism`.
    Upsert {
        /// The user name.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The password (hashed with a fresh salt before it is sent; never sent itself).
        password: Secret,
        /// PBKDF2 iterations, [`MIN_SCRAM_ITERATIONS`] to [`MAX_SCRAM_ITERATIONS`];
        /// [`DEFAULT_SCRAM_ITERATIONS`] if `None`.
        iterations: Option<u32>,
    },
    /// Deletes the user's credential for `mechanism`.
    Delete {
        /// The user name.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

impl ScramAlteration {
    /// Sets `user`'s password for `mechanism`, with [`DEFAULT_SCRAM_ITERATIONS`] (see
    /// [`ScramAlteration::with_iterations`]).
    pub fn upsert(user: impl Into<String>, mechanism: ScramMechanism, password: impl Into<Secret>) -> Self {
        ScramAlteration::Upsert {
            user: user.into(),
            mechanism,
            password: password.into(),
            iterations: None,
        }
    }

    /// Deletes `user`'s credential for `mechanism`.
    pub fn delete(user: impl Into<String>, mechanism: ScramMechanism) -> Self {
        ScramAlteration::Delete {
            user: user.into(),
            mechanism,
        }
    }

    /// An upsertion with `iterations` PBKDF2 iterations (a deletion is returned unchanged).
    pub fn with_iterations(self, iterations: u32) -> Self {
        match self {
            ScramAlteration::Upsert {
                user,
                mechanism,
                password,
                ..
            } => ScramAlteration::Upsert {
                user,
                mechanism,
                password,
                iterations: Some(iterations),
            },
            d => d,
        }
    }

    /// The user it alters.
    pub fn user(&self) -> &str {
        match self {
            ScramAlteration::Upsert { user, .. } | ScramAlteration::Delete { user, .. } => user,
        }
    }
}

/// `PBKDF2-HMAC-SHA-{256,512}(password, salt, iterations)`: SCRAM's `SaltedPassword` (RFC 5802).
fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>> {
    Ok(match mechanism {
        ScramMechanism::ScramSha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
        }
        ScramMechanism::ScramSha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "SCRAM mechanism {other}: expected SCRAM-SHA-256 or SCRAM-SHA-512"
            )))
        }
    })
}

/// Checks an alteration and turns it into the request's part: the password salted and hashed.
fn to_request(a: &ScramAlteration, req: &mut AlterUserScramCredentialsRequest) -> Result<()> {
    if a.user().is_empty() {
        return Err(Error::InvalidArgument(
            "SCRAM credential: the user name must not be empty".into(),
        ));
    }
    match a {
        ScramAlteration::Delete { user, mechanism } => {
            if let ScramMechanism::Unknown(c) = mechanism {
                return Err(Error::InvalidArgument(format!(
                    "SCRAM mechanism code {c}: expected SCRAM-SHA-256 or SCRAM-SHA-512"
                )));
            }
            req.deletions.push(ScramCredentialDeletion {
                name: user.clone(),
                mechanism: *mechanism,
            });
        }
        ScramAlteration::Upsert {
            user,
            mechanism,
            password,
            iterations,
        } => {
            if password.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "SCRAM credential of {user}: the password must not be empty"
                )));
            }
            let iterations = iterations.unwrap_or(DEFAULT_SCRAM_ITERATIONS);
            if !(MIN_SCRAM_ITERATIONS..=MAX_SCRAM_ITERATIONS).contains(&iterations) {
                return Err(Error::InvalidArgument(format!(
                    "SCRAM credential of {user}: {iterations} iterations, Kafka accepts \
                     {MIN_SCRAM_ITERATIONS} to {MAX_SCRAM_ITERATIONS}"
                )));
            }
            let mut salt = vec![0u8; SALT_LEN];
            rand::thread_rng().fill_bytes(&mut salt);
            let salted = salted_password(*mechanism, password.expose().as_bytes(), &salt, iterations)?;
            req.upsertions.push(ScramCredentialUpsertion {
                name: user.clone(),
                mechanism: *mechanism,
                iterations: iterations as i32,
                salt: Bytes::from(salt),
                salted_password: Bytes::from(salted),
            });
        }
    }
    Ok(())
}

impl Admin {
    /// The SCRAM credentials of `users` (`None`: of every user that has one), one entry per user, each with its
    /// own outcome (see [`UserScramCredentials::credentials`]). The outer error is the request's
    /// (`ClusterAuthorizationFailed` without `DESCRIBE` on the cluster). Sorted by user for `None`, else in
    /// the broker's order. The answering broker describes its copy of the cluster metadata, which shows an
    /// alteration a moment after [`Admin::alter_user_scram_credentials`] returned.
    ///
    /// ```no_run
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// for u in admin.describe_user_scram_credentials(None).await? {
    ///     for c in u.credentials? {
    ///         println!("{} {} iterations={}", u.user, c.mechanism, c.iterations);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<Vec<UserScramCredentials>> {
        let req = DescribeUserScramCredentialsRequest {
            users: users.map(|us| us.iter().map(|u| (*u).to_owned()).collect()),
        };
        let resp = self.cluster()?.any_connection().await?.call(&req).await?;
        let msg = resp.error_message.unwrap_or_default();
        check(resp.error_code, || format!("describe SCRAM credentials {msg}"))?;
        let mut out: Vec<UserScramCredentials> = resp
            .results
            .into_iter()
            .map(|r| {
                let user = r.user;
                let msg = r.error_message.unwrap_or_default();
                let credentials =
                    check(r.error_code, || format!("SCRAM credentials of {user} {msg}")).map(|()| {
                        let mut cs: Vec<ScramCredentialInfo> = r
                            .credentials
                            .into_iter()
                            .map(|c| ScramCredentialInfo {
                                mechanism: c.mechanism,
                                iterations: u32::try_from(c.iterations).unwrap_or(0),
                            })
                            .collect();
                        cs.sort_by_key(|c| c.mechanism);
                        cs
                    });
                UserScramCredentials { user, credentials }
            })
            .collect();
        if users.is_none() {
            out.sort_by(|a, b| a.user.cmp(&b.user));
        }
        Ok(out)
    }

    /// Applies `alterations` in one request: upsertions (each password salted and hashed here) and deletions.
    /// Returns one outcome per user named, in the order users first appear: `Ok(())` if every alteration of
    /// the user succeeded, else [`crate::Error::Kafka`] (`ResourceNotFound`: deleting a credential that does
    /// not exist; `UnacceptableCredential`; `DuplicateResource`: Kafka takes at most one alteration per user
    /// in a request, even for different mechanisms, and fails every alteration of a user named twice).
    ///
    /// An empty user name or password, an unknown mechanism or iterations outside
    /// [`MIN_SCRAM_ITERATIONS`]`..=`[`MAX_SCRAM_ITERATIONS`] fail the whole call with
    /// [`crate::Error::InvalidArgument`] before anything is sent.
    ///
    /// ```no_run
    /// use weir::admin::{ScramAlteration, ScramMechanism};
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let changes = [
    ///     ScramAlteration::upsert("carol", ScramMechanism::ScramSha512, "carol-secret").with_iterations(16384),
    ///     // Another user: Kafka takes one alteration per user and request.
    ///     ScramAlteration::delete("dave", ScramMechanism::ScramSha256),
    /// ];
    /// for (user, outcome) in admin.alter_user_scram_credentials(&changes).await? {
    ///     println!("{user}: {outcome:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[ScramAlteration],
    ) -> Result<Vec<(String, Result<()>)>> {
        if alterations.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = AlterUserScramCredentialsRequest::default();
        for a in alterations {
            to_request(a, &mut req)?;
        }
        let mut users: Vec<String> = Vec::new();
        for a in alterations {
            if !users.iter().any(|u| u == a.user()) {
                users.push(a.user().to_owned());
            }
        }
        let conn = self.cluster()?.controller_connection().await?;
        let results = conn.call(&req).await?;
        Ok(users
            .into_iter()
            .map(|user| {
                let outcome = match results.iter().find(|r| r.user == user) {
                    Some(r) => {
                        let msg = r.error_message.clone().unwrap_or_default();
                        check(r.error_code, || {
                            format!("alter SCRAM credentials of {user} {msg}")
                        })
                    }
                    None => Err(count_mismatch::<AlterUserScramCredentialsRequest>(
                        &conn,
                        format!("no result for user {user}"),
                    )),
                };
                (user, outcome)
            })
            .collect())
    }

    /// Creates or replaces `user`'s credential for `mechanism` with `password`, hashed with a fresh random salt
    /// and `iterations` PBKDF2 iterations ([`DEFAULT_SCRAM_ITERATIONS`] if `None`). The user can authenticate
    /// with it once the brokers have applied the change, a moment after this returns.
    ///
    /// ```no_run
    /// use weir::admin::ScramMechanism;
    /// use weir::config::Secret;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let pw = Secret::new("carol-secret");
    /// admin.upsert_scram_credential("carol", ScramMechanism::ScramSha256, &pw, Some(4096)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upsert_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        password: &Secret,
        iterations: Option<u32>,
    ) -> Result<()> {
        let a = ScramAlteration::Upsert {
            user: user.to_owned(),
            mechanism,
            password: password.clone(),
            iterations,
        };
        self.alter_one(a).await
    }

    /// Deletes `user`'s credential for `mechanism` (`ResourceNotFound` if there is none).
    ///
    /// ```no_run
    /// use weir::admin::ScramMechanism;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// admin.delete_scram_credential("carol", ScramMechanism::ScramSha256).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_scram_credential(&self, user: &str, mechanism: ScramMechanism) -> Result<()> {
        self.alter_one(ScramAlteration::delete(user, mechanism)).await
    }

    async fn alter_one(&self, a: ScramAlteration) -> Result<()> {
        let mut results = self
            .alter_user_scram_credentials(std::slice::from_ref(&a))
            .await?;
        // One alteration names one user: one outcome.
        results.pop().map_or(Ok(()), |(_, outcome)| outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn salted_passwords_are_pbkdf2_of_the_mechanisms_hash() {
        // RFC 7914 section 11 (PBKDF2-HMAC-SHA256, "passwd", "salt", c = 1): the first 32 bytes.
        let s = salted_password(ScramMechanism::ScramSha256, b"passwd", b"salt", 1).unwrap();
        assert_eq!(
            hex(&s),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        // PBKDF2-HMAC-SHA512 ("password", "salt", c = 1, 64 bytes).
        let s = salted_password(ScramMechanism::ScramSha512, b"password", b"salt", 1).unwrap();
        assert_eq!(
            hex(&s),
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        );
        assert!(salted_password(ScramMechanism::Unknown(0), b"p", b"s", 1).is_err());
    }

    #[test]
    fn upsertions_get_fresh_salts_and_invalid_ones_are_refused() {
        let mut req = AlterUserScramCredentialsRequest::default();
        let a = ScramAlteration::upsert("carol", ScramMechanism::ScramSha512, "pw");
        to_request(&a, &mut req).unwrap();
        to_request(&a, &mut req).unwrap();
        let (x, y) = (&req.upsertions[0], &req.upsertions[1]);
        assert_eq!(x.iterations, DEFAULT_SCRAM_ITERATIONS as i32);
        assert_eq!(x.salt.len(), SALT_LEN);
        assert_ne!(x.salt, y.salt);
        assert_ne!(x.salted_password, y.salted_password);
        assert_eq!(x.salted_password.len(), 64);
        let shown = format!("{a:?} {req:?}");
        assert!(!shown.contains("\"pw\""), "{shown}");
        for bad in [
            ScramAlteration::upsert("", ScramMechanism::ScramSha256, "pw"),
            ScramAlteration::upsert("u", ScramMechanism::ScramSha256, ""),
            ScramAlteration::upsert("u", ScramMechanism::Unknown(9), "pw"),
            ScramAlteration::upsert("u", ScramMechanism::ScramSha256, "pw").with_iterations(4095),
            ScramAlteration::upsert("u", ScramMechanism::ScramSha256, "pw").with_iterations(16385),
            ScramAlteration::delete("u", ScramMechanism::Unknown(0)),
        ] {
            let e = to_request(&bad, &mut req).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
        }
    }
}
