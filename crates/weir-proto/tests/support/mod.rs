//! What the response-decoder tests share: a `kafka-protocol` message encoded at a version into the body weir
//! decodes, unknown tagged fields to check that tags are skipped, every truncation of a body refused, and the
//! largest compact count.
//!
//! Included by each test file with `mod support;` (a folder under `tests/` is not a test binary of its own).

#![allow(dead_code)]

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

/// 2^31 - 1 as a compact count or length (an unsigned varint of `n + 1`): more than any body can hold.
pub const HUGE: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x08];

/// `m` encoded at `version`, as the body of a response frame (no size, no header).
pub fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// A `kafka-protocol` string.
pub fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

/// An unknown tagged field (tag 42 holding `tag`) for flexible versions, to check that tags are skipped;
/// nothing when `flex` is false (a non-flexible version has no tagged fields) or `tag` is `None`.
pub fn tags(flex: bool, tag: &Option<Vec<u8>>) -> BTreeMap<i32, Bytes> {
    match tag {
        Some(t) if flex => BTreeMap::from([(42, Bytes::from(t.clone()))]),
        _ => BTreeMap::new(),
    }
}

/// Every proper prefix of `body` (from empty to all but its last byte) fails to decode.
pub fn all_truncations_fail<T: std::fmt::Debug, E>(
    body: &Bytes,
    decode: impl Fn(Bytes) -> Result<T, E>,
) -> Result<(), TestCaseError> {
    for cut in 0..body.len() {
        let got = decode(body.slice(..cut));
        prop_assert!(got.is_err(), "cut at {cut} of {}: {:?}", body.len(), got.ok());
    }
    Ok(())
}
