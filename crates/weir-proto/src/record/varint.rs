//! Zig-zag varints as Kafka writes them (protobuf style).

/// Reason used when a varint runs past the end of its buffer.
pub(crate) const SHORT: &str = "varint runs past the end of the record";
/// Reason used when a varint has too many continuation bytes.
pub(crate) const TOO_LONG: &str = "varint longer than its maximum encoded size";

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes at `*pos`, advancing `*pos`.
#[inline(always)]
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Result<u64, &'static str> {
    let mut p = *pos;
    let first = *buf.get(p).ok_or(SHORT)?;
    p += 1;
    if first < 0x80 {
        *pos = p;
        return Ok(u64::from(first));
    }
    let mut result = u64::from(first & 0x7f);
    let mut shift = 7u32;
    for _ in 1..max_bytes {
        let b = *buf.get(p).ok_or(SHORT)?;
        p += 1;
        result |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            *pos = p;
            return Ok(result);
        }
        shift += 7;
    }
    Err(TOO_LONG)
}

/// Reads a zig-zag `varint` (i32, at most 5 bytes). Extra high bits of the 5th byte are dropped, as Java does.
#[inline(always)]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, &'static str> {
    let u = read_unsigned(buf, pos, 5)? as u32;
    Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
}

/// Reads a zig-zag `varlong` (i64, at most 10 bytes).
#[inline(always)]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, &'static str> {
    let u = read_unsigned(buf, pos, 10)?;
    Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
}

#[inline(always)]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline(always)]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
fn unsigned_len(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

/// Encoded size of a zig-zag `varint`.
#[inline(always)]
pub(crate) fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

/// Encoded size of a zig-zag `varlong`.
#[inline(always)]
pub(crate) fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

#[inline(always)]
fn put_unsigned(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Appends a zig-zag `varint`.
#[inline(always)]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, u64::from(zigzag32(v)));
}

/// Appends a zig-zag `varlong`.
#[inline(always)]
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag64(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_edges() {
        for v in [0, 1, -1, 63, -64, 64, -65, i32::MAX, i32::MIN, 300, -300] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn known_encodings() {
        // Kafka: -1 (null length) is the single byte 0x01; 1 is 0x02.
        let mut out = Vec::new();
        put_varint(&mut out, -1);
        put_varint(&mut out, 1);
        assert_eq!(out, [0x01, 0x02]);
    }

    #[test]
    fn rejects_short_and_long() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), Err(SHORT));
        let mut pos = 0;
        assert_eq!(read_varint(&[0xff; 6], &mut pos), Err(TOO_LONG));
        let mut pos = 0;
        assert_eq!(read_varlong(&[0xff; 11], &mut pos), Err(TOO_LONG));
        let mut pos = 0;
        assert_eq!(read_varint(&[], &mut pos), Err(SHORT));
    }
}
