//! Input files of realistic records: JSON-like log lines whose numbers vary from record to record, so that the
//! compression codecs have something to work on, as they would in production (not one repeated byte, which
//! every codec shrinks to nothing, nor random bytes, which none can shrink).

use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `n` lines of exactly `size` bytes each (the newline not counted): record `i` is [`json_line`]`(i)`.
pub fn write_json_lines(path: &Path, n: u64, size: usize) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("input file"));
    let mut line = Vec::with_capacity(size + 64);
    for i in 0..n {
        json_line(i, size, &mut line);
        assert!(
            line.len() == size && !line.contains(&b'\n'),
            "record {i} is not {size} bytes on one line"
        );
        w.write_all(&line).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
}

/// Record `i` as `size` bytes of a JSON-like log line (ASCII, no newline; cut at `size`, so short sizes keep
/// its start): a header of fields, then order items until it is long enough. Numbers come from a xorshift
/// generator seeded by `i`.
pub fn json_line(i: u64, size: usize, out: &mut Vec<u8>) {
    const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "DEBUG"];
    const PATHS: [&str; 4] = ["orders", "customers", "items", "carts"];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    out.clear();
    let r = next();
    write!(
        out,
        "{{\"seq\":{i},\"ts\":{},\"host\":\"web-{:02}\",\"level\":\"{}\",\"path\":\"/api/v2/{}/{}\",\
         \"status\":{},\"latency_ms\":{}.{:03},\"bytes\":{}",
        1_764_680_000_000 + i * 3 + r % 3,
        r % 24,
        LEVELS[(r >> 8) as usize % LEVELS.len()],
        PATHS[(r >> 12) as usize % PATHS.len()],
        next() % 1_000_000,
        if r % 50 == 0 { 500 } else { 200 },
        next() % 250,
        next() % 1000,
        next() % 65536
    )
    .unwrap();
    let mut k = 0;
    while out.len() < size {
        let r = next();
        write!(
            out,
            ",\"item{k}\":{{\"sku\":\"SKU-{:06}\",\"qty\":{},\"price\":{}.{:02},\"note\":\"gift wrap {}\"}}",
            r % 1_000_000,
            1 + (r >> 20) % 9,
            (r >> 24) % 500,
            (r >> 32) % 100,
            if r % 3 == 0 { "yes" } else { "no" }
        )
        .unwrap();
        k += 1;
    }
    out.truncate(size);
}
