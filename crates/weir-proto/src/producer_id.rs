//! The InitProducerId response (v0–v4), decoded here rather than by `kafka-protocol`, like every response weir
//! reads. Tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
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

impl ErrorCodes for InitProducerIdResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
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

/// An InitProducerId request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// The transactional id, `None` for an idempotent producer without transactions.
    pub transactional_id: Option<String>,
    /// Transaction timeout (-1 without transactions).
    pub transaction_timeout_ms: i32,
    /// The current producer id, -1 for a new one (v3+: bumps the epoch of this id).
    pub producer_id: i64,
    /// The current epoch, -1 for a new producer id.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: -1,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl InitProducerIdRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::InitProducerIdRequest {
        kafka_protocol::messages::InitProducerIdRequest::default()
            .with_transactional_id(
                self.transactional_id
                    .as_deref()
                    .map(crate::call::wire_transactional_id),
            )
            .with_transaction_timeout_ms(self.transaction_timeout_ms)
            .with_producer_id(kafka_protocol::messages::ProducerId(self.producer_id))
            .with_producer_epoch(self.producer_epoch)
    }
}
