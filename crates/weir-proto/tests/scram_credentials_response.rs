//! The hand-written DescribeUserScramCredentials and AlterUserScramCredentials response decoders against
//! `kafka-protocol`'s encoder, and against hostile input.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{AlterUserScramCredentialsResponse, DescribeUserScramCredentialsResponse};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::scram_credentials::{
    decode_alter_user_scram_credentials_response, decode_describe_user_scram_credentials_response,
    ScramCredentialInfo, ScramMechanism,
};

type User = (String, i16, Option<String>, Vec<(i8, i32)>);

proptest! {
    #[test]
    fn describe_matches_kafka_protocol(
        error_code in any::<i16>(),
        message in proptest::option::of("[a-z ]{0,16}"),
        users in proptest::collection::vec(
            ("[a-z]{0,8}", any::<i16>(), proptest::option::of("[a-z ]{0,12}"),
             proptest::collection::vec((any::<i8>(), any::<i32>()), 0..3)),
            0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DescribeUserScramCredentialsResponse::default()
            .with_throttle_time_ms(5)
            .with_error_code(error_code)
            .with_error_message(message.as_deref().map(s))
            .with_results(users.iter().map(|u: &User| {
                let mut r = DescribeUserScramCredentialsResult::default()
                    .with_user(s(&u.0))
                    .with_error_code(u.1)
                    .with_error_message(u.2.as_deref().map(s))
                    .with_credential_infos(u.3.iter().map(|(m, i)| {
                        let mut c = CredentialInfo::default().with_mechanism(*m).with_iterations(*i);
                        c.unknown_tagged_fields = tags(true, &tag);
                        c
                    }).collect());
                r.unknown_tagged_fields = tags(true, &tag);
                r
            }).collect());
        resp.unknown_tagged_fields = tags(true, &tag);
        let body = encode(&resp, 0);
        let got = decode_describe_user_scram_credentials_response(body.clone(), 0).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        prop_assert_eq!(&got.error_message, &message);
        prop_assert_eq!(got.results.len(), users.len());
        for (g, u) in got.results.iter().zip(&users) {
            prop_assert_eq!(&g.user, &u.0);
            prop_assert_eq!(g.error_code, u.1);
            prop_assert_eq!(&g.error_message, &u.2);
            let want: Vec<ScramCredentialInfo> = u.3.iter().map(|(m, i)| ScramCredentialInfo {
                mechanism: ScramMechanism::from_code(*m),
                iterations: *i,
            }).collect();
            prop_assert_eq!(&g.credentials, &want);
        }
        all_truncations_fail(&body, |b| decode_describe_user_scram_credentials_response(b, 0))?;
    }

    #[test]
    fn alter_matches_kafka_protocol(
        users in proptest::collection::vec(("[a-z]{0,8}", any::<i16>(), proptest::option::of("[a-z ]{0,12}")), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = AlterUserScramCredentialsResponse::default().with_throttle_time_ms(3).with_results(
            users.iter().map(|(u, c, m)| AlterUserScramCredentialsResult::default()
                .with_user(s(u))
                .with_error_code(*c)
                .with_error_message(m.as_deref().map(s))).collect());
        resp.unknown_tagged_fields = tags(true, &tag);
        let body = encode(&resp, 0);
        let got = decode_alter_user_scram_credentials_response(body.clone(), 0).unwrap();
        let got: Vec<(String, i16, Option<String>)> =
            got.into_iter().map(|r| (r.user, r.error_code, r.error_message)).collect();
        prop_assert_eq!(got, users);
        all_truncations_fail(&body, |b| decode_alter_user_scram_credentials_response(b, 0))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_describe_user_scram_credentials_response(b.clone(), 0);
        let _ = decode_alter_user_scram_credentials_response(b, 0);
    }
}

#[test]
fn huge_counts_are_refused() {
    // Alter: throttle, 2^31 - 1 results.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&HUGE);
    assert!(decode_alter_user_scram_credentials_response(Bytes::from(b), 0).is_err());
    // Describe: throttle, no error, null message, 2^31 - 1 results.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_user_scram_credentials_response(Bytes::from(b), 0).is_err());
    // ... one user "u", no error, null message, 2^31 - 1 credentials.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 2, 2, b'u', 0, 0, 0]);
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_user_scram_credentials_response(Bytes::from(b), 0).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    let body = || Bytes::from(vec![0u8; 16]);
    for v in [-1, 1] {
        assert!(decode_describe_user_scram_credentials_response(body(), v).is_err());
        assert!(decode_alter_user_scram_credentials_response(body(), v).is_err());
    }
}
