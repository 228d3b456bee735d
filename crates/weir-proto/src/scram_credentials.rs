//! The SCRAM credential administration requests (KIP-554) — DescribeUserScramCredentials and
//! AlterUserScramCredentials, v0, flexible — and their responses, decoded here rather than by `kafka-protocol`,
//! so that no count from the wire is trusted before it is checked against the bytes present. Tagged fields are
//! skipped.
//!
//! An upsertion carries a salt and a salted password (computed by the client): the `Debug` of
//! [`ScramCredentialUpsertion`] (and so of [`AlterUserScramCredentialsRequest`]) shows their lengths only.

use std::fmt;

use bytes::Bytes;

use crate::acl::code_enum;
use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_describe_user_scram_credentials_response`] reads.
pub const DESCRIBE_USER_SCRAM_CREDENTIALS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;
/// Versions [`decode_alter_user_scram_credentials_response`] reads.
pub const ALTER_USER_SCRAM_CREDENTIALS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

code_enum! {
    /// A SCRAM mechanism of a stored credential (Kafka's `ScramMechanism`).
    pub enum ScramMechanism ("SCRAM mechanism") {
        /// SCRAM-SHA-256 (RFC 7677).
        ScramSha256 = 1, "SCRAM-SHA-256";
        /// SCRAM-SHA-512.
        ScramSha512 = 2, "SCRAM-SHA-512";
    }
}

/// A DescribeUserScramCredentials request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeUserScramCredentialsRequest {
    /// The users to describe; `None` (or empty) for every user with a credential (sent as an empty array).
    pub users: Option<Vec<String>>,
}

impl DescribeUserScramCredentialsRequest {
    pub(crate) fn to_wire(
        &self,
        _version: i16,
    ) -> kafka_protocol::messages::DescribeUserScramCredentialsRequest {
        use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
        // Every user is asked for with an empty array, never null (as Kafka's Java client does): a broker that
        // refuses the request (no DESCRIBE on the cluster) fails to build its error response for a null array
        // and sends none.
        let users = self.users.as_deref().unwrap_or_default();
        kafka_protocol::messages::DescribeUserScramCredentialsRequest::default().with_users(Some(
            users
                .iter()
                .map(|u| UserName::default().with_name(crate::call::wire_str(u)))
                .collect(),
        ))
    }
}

/// One mechanism of a user's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iterations of the stored credential.
    pub iterations: i32,
}

/// One user's result in a DescribeUserScramCredentials response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedUser {
    /// The user name.
    pub user: String,
    /// Error code for this user, 0 if none (91 RESOURCE_NOT_FOUND: no credential).
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The user's credentials, one per mechanism.
    pub credentials: Vec<ScramCredentialInfo>,
}

impl ErrorCodes for DescribedUser {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// A decoded DescribeUserScramCredentials response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeUserScramCredentialsResponse {
    /// Error code of the whole request, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// One result per user.
    pub results: Vec<DescribedUser>,
}

impl ErrorCodes for DescribeUserScramCredentialsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.results.error_codes(f);
    }
}

/// Decodes a DescribeUserScramCredentials response body (after the response header) of `version` (0).
pub fn decode_describe_user_scram_credentials_response(
    body: Bytes,
    version: i16,
) -> Result<DescribeUserScramCredentialsResponse, ProtoError> {
    const API: &str = "DescribeUserScramCredentials";
    check_version(API, version, &DESCRIBE_USER_SCRAM_CREDENTIALS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    let error_message = r.string(true, "error message")?;
    // User, error code, error message, credential count, tags.
    let n = r.count(true, 1 + 2 + 1 + 1 + 1, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let user = r.required_string(true, "user")?;
        let error_code = r.i16("error code")?;
        let error_message = r.string(true, "error message")?;
        // Mechanism, iterations, tags.
        let m = r.count(true, 1 + 4 + 1, "credential count")?.unwrap_or(0);
        let mut credentials = Vec::with_capacity(prealloc(m));
        for _ in 0..m {
            let mechanism = ScramMechanism::from_code(r.i8("mechanism")?);
            let iterations = r.i32("iterations")?;
            r.tagged_fields()?;
            credentials.push(ScramCredentialInfo {
                mechanism,
                iterations,
            });
        }
        r.tagged_fields()?;
        results.push(DescribedUser {
            user,
            error_code,
            error_message,
            credentials,
        });
    }
    r.tagged_fields()?;
    Ok(DescribeUserScramCredentialsResponse {
        error_code,
        error_message,
        results,
    })
}

/// A credential to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialDeletion {
    /// The user name.
    pub name: String,
    /// The mechanism whose credential goes.
    pub mechanism: ScramMechanism,
}

/// A credential to create or replace: the client salts the password, the broker stores what it derives from the
/// salted password (never the password).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentialUpsertion {
    /// The user name.
    pub name: String,
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iterations the salted password was computed with.
    pub iterations: i32,
    /// A random salt (secret).
    pub salt: Bytes,
    /// `PBKDF2-HMAC-SHA-{256,512}(password, salt, iterations)` (secret).
    pub salted_password: Bytes,
}

impl fmt::Debug for ScramCredentialUpsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentialUpsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salt", &format_args!("<{} bytes>", self.salt.len()))
            .field(
                "salted_password",
                &format_args!("<{} bytes>", self.salted_password.len()),
            )
            .finish()
    }
}

/// An AlterUserScramCredentials request. Its `Debug` hides salts and salted passwords.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterUserScramCredentialsRequest {
    /// Credentials to remove.
    pub deletions: Vec<ScramCredentialDeletion>,
    /// Credentials to create or replace.
    pub upsertions: Vec<ScramCredentialUpsertion>,
}

impl AlterUserScramCredentialsRequest {
    pub(crate) fn to_wire(
        &self,
        _version: i16,
    ) -> kafka_protocol::messages::AlterUserScramCredentialsRequest {
        use kafka_protocol::messages::alter_user_scram_credentials_request::{
            ScramCredentialDeletion as WireDeletion, ScramCredentialUpsertion as WireUpsertion,
        };
        kafka_protocol::messages::AlterUserScramCredentialsRequest::default()
            .with_deletions(
                self.deletions
                    .iter()
                    .map(|d| {
                        WireDeletion::default()
                            .with_name(crate::call::wire_str(&d.name))
                            .with_mechanism(d.mechanism.code())
                    })
                    .collect(),
            )
            .with_upsertions(
                self.upsertions
                    .iter()
                    .map(|u| {
                        WireUpsertion::default()
                            .with_name(crate::call::wire_str(&u.name))
                            .with_mechanism(u.mechanism.code())
                            .with_iterations(u.iterations)
                            .with_salt(u.salt.clone())
                            .with_salted_password(u.salted_password.clone())
                    })
                    .collect(),
            )
    }
}

/// One user's result in an AlterUserScramCredentials response (one per user named in the request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlteredUser {
    /// The user name.
    pub user: String,
    /// Error code, 0 if every alteration of the user succeeded.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
}

impl ErrorCodes for AlteredUser {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes an AlterUserScramCredentials response body (after the response header) of `version` (0).
pub fn decode_alter_user_scram_credentials_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<AlteredUser>, ProtoError> {
    const API: &str = "AlterUserScramCredentials";
    check_version(API, version, &ALTER_USER_SCRAM_CREDENTIALS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // User, error code, error message, tags.
    let n = r.count(true, 1 + 2 + 1 + 1, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let user = r.required_string(true, "user")?;
        let error_code = r.i16("error code")?;
        let error_message = r.string(true, "error message")?;
        r.tagged_fields()?;
        results.push(AlteredUser {
            user,
            error_code,
            error_message,
        });
    }
    r.tagged_fields()?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_have_kafkas_codes_and_names() {
        assert_eq!(ScramMechanism::ScramSha256.code(), 1);
        assert_eq!(ScramMechanism::ScramSha512.code(), 2);
        assert_eq!(ScramMechanism::from_code(0), ScramMechanism::Unknown(0));
        assert_eq!(ScramMechanism::ScramSha512.to_string(), "SCRAM-SHA-512");
        assert_eq!("scram-sha-256".parse(), Ok(ScramMechanism::ScramSha256));
        assert_eq!("SCRAM_SHA_512".parse(), Ok(ScramMechanism::ScramSha512));
        assert!("SCRAM-SHA-1".parse::<ScramMechanism>().is_err());
    }

    #[test]
    fn debug_hides_salts_and_salted_passwords() {
        let req = AlterUserScramCredentialsRequest {
            deletions: vec![],
            upsertions: vec![ScramCredentialUpsertion {
                name: "carol".into(),
                mechanism: ScramMechanism::ScramSha512,
                iterations: 8192,
                salt: Bytes::from_static(b"SALTSALTSALT"),
                salted_password: Bytes::from_static(b"SECRETSECRET!"),
            }],
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("SALT") && !shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("<12 bytes>") && shown.contains("<13 bytes>"),
            "{shown}"
        );
        assert!(shown.contains("carol") && shown.contains("8192"), "{shown}");
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn requests_carry_every_field() {
        let all = DescribeUserScramCredentialsRequest { users: None }.to_wire(0);
        assert_eq!(all.users, Some(vec![]));
        let some = DescribeUserScramCredentialsRequest {
            users: Some(vec!["a".into(), "b".into()]),
        }
        .to_wire(0);
        let names: Vec<&str> = some.users.as_ref().unwrap().iter().map(|u| &*u.name).collect();
        assert_eq!(names, ["a", "b"]);
        let alter = AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: "d".into(),
                mechanism: ScramMechanism::ScramSha256,
            }],
            upsertions: vec![ScramCredentialUpsertion {
                name: "u".into(),
                mechanism: ScramMechanism::ScramSha512,
                iterations: 4096,
                salt: Bytes::from_static(b"s"),
                salted_password: Bytes::from_static(b"p"),
            }],
        }
        .to_wire(0);
        assert_eq!(
            (&*alter.deletions[0].name, alter.deletions[0].mechanism),
            ("d", 1)
        );
        let u = &alter.upsertions[0];
        assert_eq!((&*u.name, u.mechanism, u.iterations), ("u", 2, 4096));
        assert_eq!((&u.salt[..], &u.salted_password[..]), (&b"s"[..], &b"p"[..]));
    }
}
