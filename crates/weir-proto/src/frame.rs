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
        let needed = 4 + size;
        if buf.len() < needed {
            if buf.capacity() < needed {
                // The rest of the frame goes into an allocation of exactly its size, of its own. Records decoded
                // from a response point into it and keep it alive while they are buffered: `reserve` would give
                // it up to twice the frame's size (a growing buffer doubles) and let the frames read after it
                // share, and so pin, the same allocation.
                let mut own = BytesMut::with_capacity(needed);
                own.extend_from_slice(buf);
                *buf = own;
            }
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

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn a_frame_larger_than_the_buffer_gets_an_allocation_of_exactly_its_size() {
        let d = FrameDecoder::new(1 << 20);
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let whole = frame(&body);
        let mut buf = BytesMut::with_capacity(1024);
        buf.put_slice(&whole[..1024]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.capacity(), whole.len(), "room for the frame, and no more");
        assert_eq!(&buf[..], &whole[..1024], "the bytes read so far are kept");
        buf.put_slice(&whole[1024..]);
        assert_eq!(buf.capacity(), whole.len(), "the rest fitted without growing");
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&body[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn frames_within_the_buffer_are_split_off_without_copying() {
        let d = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::with_capacity(4096);
        let start = buf.as_ptr();
        buf.put_slice(&frame(b"first"));
        buf.put_slice(&frame(b"second"));
        let third = frame(b"third");
        buf.put_slice(&third[..5]);
        let a = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!((&a[..], a.as_ptr()), (&b"first"[..], start.wrapping_add(4)));
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], b"second");
        assert_eq!(d.decode(&mut buf).unwrap(), None, "a partial frame waits");
        buf.put_slice(&third[5..]);
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], b"third");
    }

    #[test]
    fn bad_sizes_are_errors_before_anything_is_allocated() {
        let d = FrameDecoder::new(1000);
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(ProtoError::NegativeFrameSize(-1))
        ));
        let mut buf = BytesMut::from(&1001i32.to_be_bytes()[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(ProtoError::FrameTooLarge { size: 1001, .. })
        ));
        assert!(buf.capacity() < 1000);
    }
}
