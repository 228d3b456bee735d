//! Errors raised while framing, encoding or decoding protocol messages.

use crate::record::RecordError;

/// What went wrong turning bytes into protocol values or back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// A frame announced more bytes than the configured limit allows; nothing was allocated for it.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The size announced by the peer.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// A frame announced a negative size.
    #[error("frame announced a negative size ({0})")]
    NegativeFrameSize(i32),
    /// A response could not be decoded as the message it was expected to be.
    #[error("cannot decode {api} v{version} response: {reason}")]
    Decode {
        /// The API whose response this was.
        api: &'static str,
        /// The version it was decoded with.
        version: i16,
        /// What the decoder reported.
        reason: String,
    },
    /// A request could not be encoded at the chosen version (a field unsupported there, say).
    #[error("cannot encode {api} v{version} request: {reason}")]
    Encode {
        /// The API whose request this was.
        api: &'static str,
        /// The version it was encoded with.
        version: i16,
        /// What the encoder reported.
        reason: String,
    },
    /// The response carried a correlation id other than the one expected.
    #[error("response correlation id {got} does not match the request's {expected}")]
    CorrelationMismatch {
        /// Expected id.
        expected: i32,
        /// Id found in the response.
        got: i32,
    },
    /// A record batch was malformed.
    #[error(transparent)]
    Record(#[from] RecordError),
}
