//! The frame reader of weir's connections: `FrameDecoder` splitting the bytes read from a socket into response
//! frames, driven as the connection's read loop drives it (reads of whatever size the socket gives into the
//! buffer's spare room, then every whole frame taken off), over an in-memory stream.
//!
//! Input: `[limit, chunks...]` then the stream: `limit` picks the largest frame accepted, each chunk byte the
//! size of one read (a 0 ends the list). Beyond "no panic": the frames are exactly those of a reference
//! splitter, in order; a bad size prefix is refused exactly when the reference refuses it; the buffer never
//! grows past what the largest accepted frame, or one read, needs.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use weir_proto::frame::FrameDecoder;

/// Room the read loop starts with and adds when it runs out (as the connection does: 64 KiB), scaled down so
/// that small inputs exercise the growth paths too.
const READ_ROOM: usize = 256;

/// The reference: frames of `stream`, and whether a bad size prefix ended it.
fn reference(stream: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= 4 {
        let size = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if size < 0 || size as usize > max {
            return (frames, true);
        }
        let size = size as usize;
        if rest.len() < 4 + size {
            break;
        }
        frames.push(&rest[4..4 + size]);
        rest = &rest[4 + size..];
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let [limit, rest @ ..] = data else { return };
    let max = [0, 1, 7, 64, 300, 4096, 1 << 20][usize::from(*limit) % 7];
    let n_chunks = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (chunks, stream) = rest.split_at(n_chunks);
    let stream = stream.get(1..).unwrap_or_default();
    let decoder = FrameDecoder::new(max);
    let (expected, refused) = reference(stream, max);

    let mut buf = BytesMut::with_capacity(READ_ROOM);
    let mut got = Vec::new();
    let mut pos = 0;
    let mut error = false;
    let mut reads = chunks.iter().copied().cycle();
    'reading: while pos < stream.len() {
        // A read fills at most the spare room; a full buffer gets room first, as tokio's `read_buf` does.
        if buf.capacity() == buf.len() {
            buf.reserve(64);
        }
        let want = usize::from(reads.next().unwrap_or(255)).max(1);
        let n = want.min(buf.capacity() - buf.len()).min(stream.len() - pos);
        buf.put_slice(&stream[pos..pos + n]);
        pos += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    got.push(frame);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    error = true;
                    break 'reading;
                }
            }
        }
        // The decoder made room for a frame it knows the size of; never more than that frame, or a read.
        assert!(
            buf.capacity() <= (4 + max).max(READ_ROOM + 64).max(buf.len() + 64) * 2,
            "capacity {} for frames of at most {max} bytes",
            buf.capacity()
        );
        if buf.len() < 4 && buf.capacity() - buf.len() < 64 {
            buf.reserve(READ_ROOM);
        }
    }
    assert_eq!(error, refused, "refused exactly the bad size prefixes");
    assert_eq!(got.len(), expected.len());
    for (a, b) in got.iter().zip(&expected) {
        assert_eq!(&a[..], *b);
    }
});
