//! What the side-by-side benches share: the weir client children (produce stdin, consume to stdout, with
//! `key=value` settings), the input files (here the fixed 100 B records; [`records`]: the realistic, sized ones
//! of the matrix), the check of a child's outcome, the statistics, and the line-up of clients with the commands
//! that start them ([`lineup`]). Each bench target is its own crate and includes this with `mod clients;`.

pub mod lineup;
pub mod records;

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::peers::franz_go::Measured;

/// Bytes of every record value.
pub const VALUE: usize = 100;

pub fn check(what: &str, m: &Measured) {
    if !m.status.success() {
        panic!(
            "{}: {what} failed ({}): {}",
            env!("CARGO_CRATE_NAME"),
            m.status,
            String::from_utf8_lossy(&m.stderr)
        );
    }
}

/// One figure over runs: median and range.
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    (med, s[0], s[s.len() - 1])
}

pub fn median(v: &[f64]) -> f64 {
    stats(v).0
}

pub fn write_input(path: &Path, n: u64) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        // VALUE bytes: the record number, then padding.
        writeln!(w, "{i:010}-{}", "x".repeat(VALUE - 11)).unwrap();
    }
    w.flush().unwrap();
}

/// The weir child's `mode` (`produce`: `BOOTSTRAP TOPIC [key=value...]`, or `consume`: `BOOTSTRAP TOPIC
/// PARTITIONS COUNT [key=value...]`) on a fresh multi-threaded runtime; `false` for another mode.
pub fn run_child(mode: &str, args: &[String]) -> bool {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    match mode {
        "produce" => rt().block_on(child_produce(&args[0], &args[1], &args[2..])),
        "consume" => rt().block_on(child_consume(
            &args[0],
            &args[1],
            args[2].parse().expect("partitions"),
            args[3].parse().expect("count"),
            &args[4..],
        )),
        _ => return false,
    }
    true
}

pub fn split_setting(s: &str) -> (&str, &str) {
    s.split_once('=')
        .unwrap_or_else(|| panic!("{}: setting {s:?} is not key=value", env!("CARGO_CRATE_NAME")))
}

/// One record per line of stdin (newline removed), pipelined like `weir produce`.
pub async fn child_produce(b: &str, topic: &str, settings: &[String]) {
    let mut cfg = ProducerConfig::new(b);
    for s in settings {
        let (k, v) = split_setting(s);
        cfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    let producer = Producer::new(cfg).expect("producer");
    let mut pending = std::collections::VecDeque::new();
    let mut stdin = std::io::stdin().lock();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut n = 0u64;
    loop {
        if buf.capacity() - buf.len() < 1 << 18 {
            buf.reserve(1 << 20);
        }
        let filled = buf.len();
        buf.resize(buf.capacity(), 0);
        let got = stdin.read(&mut buf[filled..]).expect("stdin");
        buf.truncate(filled + got);
        let Some(last) = buf.iter().rposition(|&c| c == b'\n') else {
            if got == 0 {
                break;
            }
            continue;
        };
        let chunk: Bytes = buf.split_to(last + 1).freeze();
        let mut start = 0;
        for end in memchr_all(&chunk) {
            if end > start {
                let rec = ProducerRecord::new(topic, chunk.slice(start..end));
                pending.push_back(producer.send(rec).await.expect("send"));
                n += 1;
                if pending.len() >= 256 * 1024 {
                    pending.pop_front().unwrap().await.expect("delivery");
                }
            }
            start = end + 1;
        }
        if got == 0 {
            break;
        }
    }
    for d in pending {
        d.await.expect("delivery");
    }
    producer.close().await.expect("close");
    eprintln!("{{\"records\":{n}}}");
}

pub fn memchr_all(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter_map(|(i, &c)| (c == b'\n').then_some(i))
}

/// Every partition from the start until `n` records; values and newlines to stdout, like `weir consume`.
pub async fn child_consume(b: &str, topic: &str, partitions: i32, n: u64, settings: &[String]) {
    let mut cfg = ConsumerConfig::new(b);
    for s in settings {
        let (k, v) = split_setting(s);
        cfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    let consumer = Consumer::new(cfg).expect("consumer");
    let tps: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
        .collect();
    consumer.assign(&tps).await.expect("assign");
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut got = 0u64;
    while got < n {
        let recs = consumer
            .poll(16 * 1024, Duration::from_secs(1))
            .await
            .expect("poll");
        for r in recs.iter().take((n - got) as usize) {
            out.write_all(r.value.as_deref().unwrap_or_default()).unwrap();
            out.write_all(b"\n").unwrap();
        }
        got += recs.len() as u64;
    }
    out.flush().unwrap();
    consumer.close().await.unwrap();
}
