//! The InitProducerId response (v0–v4), decoded here rather than by `kafka-protocol`, like every response weir
//! reads. Tagged fields are skipped.

use bytes::Bytes;

use crate::wire::{check_version, WireReader};
use crate::ProtoError;

/// Versions [`decode_init_producer_id_response`] reads.
pub const INIT_PRODUCER_ID_VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

/// A decoded InitProducerId response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitProducerIdResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The producer id given.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
}

/// Decodes an InitProducerId response body (after the response header) of `version` (0..=4).
pub fn decode_init_producer_id_response(
    body: Bytes,
    version: i16,
) -> Result<InitProducerIdResponse, ProtoError> {
    const API: &str = "InitProducerId";
    check_version(API, version, &INIT_PRODUCER_ID_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    let producer_id = r.i64("producer id")?;
    let producer_epoch = r.i16("producer epoch")?;
    if version >= 2 {
        r.tagged_fields()?;
    }
    Ok(InitProducerIdResponse {
        error_code,
        producer_id,
        producer_epoch,
    })
}
