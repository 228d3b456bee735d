//! A bounded reader for hand-decoded responses: every read checks the bytes that remain, every array count is
//! checked against them before anything is reserved, and strings and bytes are zero-copy slices.

use bytes::{Buf, Bytes};

use crate::ProtoError;

/// Reads protocol primitives from a response body without trusting any length in it.
pub(crate) struct WireReader {
    buf: Bytes,
    api: &'static str,
    version: i16,
}

impl WireReader {
    pub(crate) fn new(buf: Bytes, api: &'static str, version: i16) -> Self {
        Self { buf, api, version }
    }

    pub(crate) fn err(&self, what: &str) -> ProtoError {
        ProtoError::Decode {
            api: self.api,
            version: self.version,
            reason: format!("truncated or invalid {what}"),
        }
    }

    fn need(&self, n: usize, what: &str) -> Result<(), ProtoError> {
        if self.buf.remaining() < n {
            Err(self.err(what))
        } else {
            Ok(())
        }
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8, ProtoError> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, ProtoError> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, ProtoError> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, ProtoError> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes, ProtoError> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    pub(crate) fn skip(&mut self, n: usize, what: &str) -> Result<(), ProtoError> {
        self.bytes(n, what).map(drop)
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u32, ProtoError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            self.need(1, what)?;
            let b = self.buf.get_u8();
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err(what))
    }

    /// An array length (`i32`, or unsigned varint + 1 when `compact`), `None` if null, refused if the bytes
    /// left cannot hold that many elements of at least `min_element` bytes.
    pub(crate) fn count(
        &mut self,
        compact: bool,
        min_element: usize,
        what: &str,
    ) -> Result<Option<usize>, ProtoError> {
        let Some(n) = self.nullable_len(compact, false, what)? else {
            return Ok(None);
        };
        if n.saturating_mul(min_element.max(1)) > self.buf.remaining() {
            return Err(self.err(what));
        }
        Ok(Some(n))
    }

    /// A (nullable) string, compact or not, as UTF-8.
    pub(crate) fn string(&mut self, compact: bool, what: &str) -> Result<Option<String>, ProtoError> {
        let Some(len) = self.nullable_len(compact, true, what)? else {
            return Ok(None);
        };
        let raw = self.bytes(len, what)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| self.err(what))
    }

    /// A string that must not be null.
    pub(crate) fn required_string(&mut self, compact: bool, what: &str) -> Result<String, ProtoError> {
        match self.string(compact, what)? {
            Some(s) => Ok(s),
            None => Err(self.err(&format!("{what} (null)"))),
        }
    }

    /// A (nullable) byte string, compact or not, as a zero-copy slice.
    pub(crate) fn nullable_bytes(&mut self, compact: bool, what: &str) -> Result<Option<Bytes>, ProtoError> {
        let Some(len) = self.nullable_len(compact, false, what)? else {
            return Ok(None);
        };
        self.bytes(len, what).map(Some)
    }

    /// A nullable length prefix: an unsigned varint holding length + 1 when `compact` (0 is null), else an
    /// `i16` (`short`, strings) or `i32` (arrays, bytes) where -1 is null and other negatives are invalid.
    fn nullable_len(&mut self, compact: bool, short: bool, what: &str) -> Result<Option<usize>, ProtoError> {
        let n = match (compact, short) {
            (true, _) => i64::from(self.uvarint(what)?) - 1,
            (false, true) => i64::from(self.i16(what)?),
            (false, false) => i64::from(self.i32(what)?),
        };
        match n {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| self.err(what)),
        }
    }

    /// A boolean (one byte, non-zero is true).
    pub(crate) fn bool(&mut self, what: &str) -> Result<bool, ProtoError> {
        Ok(self.i8(what)? != 0)
    }

    /// Skips a tagged-field section (flexible versions).
    pub(crate) fn tagged_fields(&mut self) -> Result<(), ProtoError> {
        let n = self.uvarint("tagged field count")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.skip(size, "tagged field")?;
        }
        Ok(())
    }

    /// Tagged fields, each handed to `f` with its tag and a reader over its bytes alone (a field cannot read
    /// past its declared size); `f` reads the tags it knows and ignores the others.
    pub(crate) fn tagged_fields_with(
        &mut self,
        mut f: impl FnMut(u32, &mut WireReader) -> Result<(), ProtoError>,
    ) -> Result<(), ProtoError> {
        let n = self.uvarint("tagged field count")?;
        for _ in 0..n {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            let mut field = WireReader::new(self.bytes(size, "tagged field")?, self.api, self.version);
            f(tag, &mut field)?;
        }
        Ok(())
    }

    /// An `i32` array (compact or not), e.g. replica lists.
    pub(crate) fn i32_array(&mut self, compact: bool, what: &str) -> Result<Vec<i32>, ProtoError> {
        let n = self.count(compact, 4, what)?.unwrap_or(0);
        (0..n).map(|_| self.i32(what)).collect()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(self) -> Bytes {
        self.buf
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.remaining()
    }
}

/// Elements to reserve up front for an array of `n` (a count already checked against the bytes present): at
/// most 256, the vector grows from there as elements are actually decoded. A count only bounds the bytes on
/// the wire, and a decoded element can be many times larger than its minimal encoding.
pub(crate) fn prealloc(n: usize) -> usize {
    n.min(256)
}

/// Refuses a `version` outside the `supported` range of the hand-written decoder for `api`.
pub(crate) fn check_version(
    api: &'static str,
    version: i16,
    supported: &std::ops::RangeInclusive<i16>,
) -> Result<(), ProtoError> {
    if supported.contains(&version) {
        Ok(())
    } else {
        Err(ProtoError::Decode {
            api,
            version,
            reason: "unsupported version".into(),
        })
    }
}

/// Removes the response header (`header_version` 0: the correlation id; 1: it and a tagged-field section).
pub fn strip_response_header(frame: Bytes, header_version: i16) -> Result<Bytes, ProtoError> {
    let mut r = WireReader::new(frame, "response header", header_version);
    r.i32("correlation id")?;
    if header_version >= 1 {
        r.tagged_fields()?;
    }
    Ok(r.buf)
}
