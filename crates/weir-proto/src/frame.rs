//! Size-prefixed framing and request/response encoding.
//!
//! Every Kafka request and response is an `i32` big-endian size followed by that many bytes. The size comes
//! from the wire, so [`FrameDecoder`] checks it against a limit before reserving any memory.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};

use crate::ProtoError;

/// Default largest frame accepted from a peer: 100 MiB (Kafka's `socket.request.max.bytes`).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Splits a byte stream into frames, refusing frames larger than a limit before allocating for them.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_size` bytes (excluding the 4-byte prefix).
    pub fn new(max_size: usize) -> Self {
        Self { max_size }
    }

    /// Takes one whole frame (without its size prefix) off the front of `buf`, if one is there.
    ///
    /// Returns `Ok(None)` when more bytes are needed; in that case `buf` has been given room for the rest of the
    /// frame, so the caller can read into it without further reallocation.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtoError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if size < 0 {
            return Err(ProtoError::NegativeFrameSize(size));
        }
        let size = size as usize;
        if size > self.max_size {
            return Err(ProtoError::FrameTooLarge {
                size: size as i64,
                max: self.max_size,
            });
        }
        if buf.len() < 4 + size {
            buf.reserve(4 + size - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

/// Encodes `body` with a request header into one frame, size prefix included (see [`crate::call::Call`]).
pub(crate) fn encode_request<R: Request>(
    body: &R,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Result<Bytes, ProtoError> {
    let key = ApiKey::try_from(R::KEY).expect("kafka-protocol request types have known keys");
    let header_version = key.request_header_version(version);
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
    let err = |e: anyhow::Error| ProtoError::Encode {
        api: crate::call::api_name(R::KEY),
        version,
        reason: e.to_string(),
    };
    let size = header.compute_size(header_version).map_err(err)? + body.compute_size(version).map_err(err)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    Ok(buf.freeze())
}

/// Reads the correlation id at the front of a response frame (every response header starts with it).
pub fn response_correlation_id(frame: &Bytes) -> Option<i32> {
    (frame.len() >= 4).then(|| i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]))
}
