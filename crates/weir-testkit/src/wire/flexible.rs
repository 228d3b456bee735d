//! The primitives of flexible message versions (compact strings and arrays, tagged fields), for the few
//! requests the harness encodes itself: a writer, and a reader that checks every length and count against the
//! bytes present before using it.

use bytes::{Buf, Bytes};

/// Builds a request body.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    fn uvarint(&mut self, mut v: u32) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }

    /// A compact array's length (`n + 1`; 0 would be null).
    pub(crate) fn len(&mut self, n: usize) -> &mut Self {
        self.uvarint(n as u32 + 1)
    }

    /// A compact string.
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        self.len(s.len()).raw(s.as_bytes())
    }

    /// An empty tagged-field section.
    pub(crate) fn tags(&mut self) -> &mut Self {
        self.uvarint(0)
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads a response body; every read fails, naming `what`, if the bytes run out.
pub(crate) struct Reader {
    buf: Bytes,
    api: &'static str,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, api: &'static str) -> Reader {
        Reader { buf, api }
    }

    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        if self.buf.remaining() < n {
            Err(format!("{} response: truncated {what}", self.api))
        } else {
            Ok(())
        }
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, String> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, String> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    fn uvarint(&mut self, what: &str) -> Result<u32, String> {
        let mut v = 0u32;
        for i in 0..5 {
            self.need(1, what)?;
            let b = self.buf.get_u8();
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{} response: invalid varint in {what}", self.api))
    }

    /// A compact length, `None` for null, refused when the bytes left cannot hold `n` items of `min_item`
    /// bytes each.
    pub(crate) fn len(&mut self, min_item: usize, what: &str) -> Result<Option<usize>, String> {
        let Some(n) = (self.uvarint(what)? as usize).checked_sub(1) else {
            return Ok(None);
        };
        self.need(n.saturating_mul(min_item.max(1)), what)?;
        Ok(Some(n))
    }

    /// A compact nullable string.
    pub(crate) fn string(&mut self, what: &str) -> Result<Option<String>, String> {
        let Some(n) = self.len(1, what)? else {
            return Ok(None);
        };
        let raw = self.buf.split_to(n);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| format!("{} response: {what} is not UTF-8", self.api))
    }

    /// Skips a tagged-field section.
    pub(crate) fn tags(&mut self) -> Result<(), String> {
        for _ in 0..self.uvarint("tagged field count")? {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.need(size, "tagged field")?;
            self.buf.advance(size);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_writer_writes_the_reader_reads() {
        let mut w = Writer::default();
        w.i16(-2).i32(300).string("é-topic").len(2).tags();
        let mut r = Reader::new(Bytes::from(w.finish()), "test");
        assert_eq!(r.i16("a").unwrap(), -2);
        assert_eq!(r.i32("b").unwrap(), 300);
        assert_eq!(r.string("c").unwrap().as_deref(), Some("é-topic"));
        // Two items of at least one byte each, but only the tag section's byte is left.
        assert!(r.len(1, "d").is_err());
    }

    #[test]
    fn lengths_beyond_the_bytes_present_are_refused() {
        // A compact array claiming 2^28 items, then nothing.
        let mut r = Reader::new(Bytes::from_static(&[0x81, 0x80, 0x80, 0x80, 0x01]), "test");
        assert!(r.len(4, "items").is_err());
        let mut r = Reader::new(Bytes::from_static(&[0x00]), "test");
        assert_eq!(r.len(4, "items").unwrap(), None);
        let mut r = Reader::new(Bytes::from_static(&[0x05, b'a']), "test");
        assert!(r.string("name").is_err());
    }
}
