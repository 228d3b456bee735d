//! Consume at memory speed: weir and librdkafka reading from the replay server, beside a `memcpy` of the same
//! bytes (the physical limit).
//!
//! `cargo bench -p weir --bench replay` (about 2 minutes on 2 cores). For each log (by default 2,000,000 x 100 B
//! and 200,000 x 1 KiB, over 8 partitions, uncompressed and lz4, in batches of about 16 KiB), built once by
//! `weir_testkit::ReplayServer` (an in-process stand-in for a broker that answers Fetch from pre-encoded batches
//! with vectored writes, so no broker's cost is in the way), this measures:
//!
//! - **weir**: the weir `Consumer` in this process (all partitions assigned at the log start, `poll(16384, 1 s)`
//!   counting records and value bytes until it has every record); **weir-touch**: the same, also reading every
//!   byte of every value (a sum of 8-byte words), as an application that looks at its data would;
//! - **kcat**: librdkafka 2.16 as a child, `kcat -C -e -o beginning -f '%s\n' -X fetch.wait.max.ms=10` with
//!   stdout on `/dev/null` (without `-q`: its "Reached end" lines on stderr are checked, every partition at its
//!   log end);
//! - **memcpy**: every batch's bytes copied into one reused buffer, on one thread.
//!
//! Figures: wall time (for weir from `Consumer::new` to the last record; for kcat from spawn to exit, so it
//! includes process start, its end-of-log detection, one `fetch.wait.max.ms`, and its shutdown), wire bytes per
//! second (the batches' bytes, as they travel: compressed for lz4), records per second, client CPU seconds, and
//! wire bytes per CPU second (less disturbed than wall time when other work shares the cores).
//! kcat's CPU is its own, from `wait4(2)` (`weir_testkit::peers::franz_go::run_measured`); weir's is this
//! process's CPU over the run minus what the server's connection threads used (`ReplayServer::server_cpu`);
//! memcpy's is its thread's. Each client runs `RUNS` times (env, default 3), the order rotating every run; the
//! tables give medians and [min–max], then the ratios of medians weir/kcat and weir/memcpy (bytes per second:
//! above 1 means faster; CPU: below 1 means cheaper).
//!
//! Env: `RUNS` (3), `SHAPES` (`100x2000000,1024x200000`: value bytes x records), `CODECS` (`none,lz4`),
//! `PARTITIONS` (8), `BATCH_BYTES` (16384: records per batch = BATCH_BYTES / value bytes); `WEIR_ONLY=N` runs
//! the weir client alone N times per log (for profiles: `perf record` sees weir's threads only).
//!
//! With `WEIR_BENCH_OUT` set, every run of every client is also appended there as a results line
//! (`weir_testkit::bench_out`; kcat's as client `librdkafka`), for `scripts/bench-report`.

use std::process::Command;
use std::time::{Duration, Instant};

use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir_proto::record::Compression;
use weir_testkit::bench_env::num as env_num;
use weir_testkit::cpu_time::{process_cpu, thread_cpu};
use weir_testkit::peers::franz_go::{run_measured, Input};
use weir_testkit::{bench_out, Kcat, ReplayServer};

/// Median, min and max.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

fn median(v: &[f64]) -> f64 {
    stats(v).0
}

fn fmt_stat(v: &[f64], digits: usize) -> String {
    let (m, lo, hi) = stats(v);
    format!("{m:.digits$} [{lo:.digits$}–{hi:.digits$}]")
}

const CLIENTS: [&str; 4] = ["weir", "weir-touch", "kcat", "memcpy"];
/// The clients' names in the results lines (`bench_out`): kcat stands for librdkafka.
const RESULT_CLIENTS: [&str; 4] = ["weir", "weir-touch", "librdkafka", "memcpy"];

/// One measurement.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
    /// CPU the replay server used during the run (not counted in `cpu`).
    server_cpu: f64,
}

#[derive(Default, Clone)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    server_cpu: Vec<f64>,
}

impl Samples {
    fn add(&mut self, s: Sample) {
        self.wall.push(s.wall);
        self.cpu.push(s.cpu);
        self.server_cpu.push(s.server_cpu);
    }
}

fn main() {
    let runs = env_num("RUNS", 3).max(1) as usize;
    let partitions = env_num("PARTITIONS", 8) as i32;
    let batch_bytes = env_num("BATCH_BYTES", 16 * 1024) as usize;
    let shapes: Vec<(usize, u64)> = std::env::var("SHAPES")
        .unwrap_or_else(|_| "100x2000000,1024x200000".into())
        .split(',')
        .map(|s| {
            let (size, n) = s.split_once('x').expect("SHAPES: VALUExRECORDS,...");
            (size.parse().expect("value bytes"), n.parse().expect("records"))
        })
        .collect();
    let codecs: Vec<Compression> = std::env::var("CODECS")
        .unwrap_or_else(|_| "none,lz4".into())
        .split(',')
        .map(|c| {
            Compression::ALL
                .into_iter()
                .find(|k| k.name() == c)
                .unwrap_or_else(|| panic!("CODECS: unknown codec {c}"))
        })
        .collect();
    let kcat = Kcat::require();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "replay: weir vs kcat ({}) vs memcpy, from weir_testkit::ReplayServer; {} CPUs; {runs} runs; {partitions} partitions",
        kcat.version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    bench_out::meta(
        "replay",
        &[
            ("broker", "weir_testkit::ReplayServer"),
            ("librdkafka", kcat.short_version().as_str()),
        ],
    );

    let mut rows = Vec::new();
    for &(size, n) in &shapes {
        for &codec in &codecs {
            let per_batch = (batch_bytes / size.max(1)).max(1);
            let built = Instant::now();
            let server = ReplayServer::builder()
                .topic("replay")
                .partitions(partitions)
                .records_per_partition(n / partitions as u64)
                .record_size(size)
                .records_per_batch(per_batch)
                .compression(codec)
                .start()
                .expect("replay server");
            let label = format!("{}x{size}B {}", server.record_count(), codec.name());
            let wire = server.log_bytes();
            let values = server.record_count() * size as u64;
            println!(
                "\n== {label}: {per_batch} records per batch, {:.1} MB on the wire, {:.1} MB of values (built in {:.1} s)",
                wire as f64 / 1e6,
                values as f64 / 1e6,
                built.elapsed().as_secs_f64()
            );
            if let Ok(n) = std::env::var("WEIR_ONLY") {
                // For profiles: the weir client alone, `WEIR_ONLY` times, no summary.
                for _ in 0..n.parse().expect("WEIR_ONLY: a number of runs") {
                    let s = weir_run(&rt, &server, false);
                    println!("  weir {:.3} s wall {:.3} s CPU", s.wall, s.cpu);
                }
                continue;
            }
            let mut samples = vec![Samples::default(); CLIENTS.len()];
            for run in 0..runs {
                for k in 0..CLIENTS.len() {
                    let c = (run + k) % CLIENTS.len();
                    let s = match c {
                        0 => weir_run(&rt, &server, false),
                        1 => weir_run(&rt, &server, true),
                        2 => kcat_run(&kcat, &server),
                        _ => memcpy_run(&server),
                    };
                    println!(
                        "  run {} {:<10} {:.3} s wall {:.3} s CPU ({:.3} s server) {:.0} MB/s",
                        run + 1,
                        CLIENTS[c],
                        s.wall,
                        s.cpu,
                        s.server_cpu,
                        wire as f64 / s.wall / 1e6
                    );
                    samples[c].add(s);
                    let mut metrics = vec![
                        ("wall_s", s.wall),
                        ("cpu_s", s.cpu),
                        ("mb_per_s", wire as f64 / s.wall / 1e6),
                        ("mb_per_cpu_s", wire as f64 / s.cpu / 1e6),
                        ("records_per_s", server.record_count() as f64 / s.wall),
                    ];
                    if c != 3 {
                        // memcpy has no server.
                        metrics.push(("server_cpu_s", s.server_cpu));
                    }
                    bench_out::record(
                        "replay",
                        &label,
                        RESULT_CLIENTS[c],
                        run + 1,
                        &[
                            ("record_size", size.into()),
                            ("codec", codec.name().into()),
                            ("records", server.record_count().into()),
                            ("partitions", partitions.into()),
                        ],
                        &metrics,
                    );
                }
            }
            rows.push((label, wire, server.record_count(), samples));
        }
    }

    println!("\nmedians [min–max] of {runs} runs; wire MB/s = batch bytes / wall; CPU = the client's own (server excluded)");
    println!("| log | client | wall s | wire MB/s | M records/s | CPU s | wire MB per CPU s | server CPU s |\n|---|---|---:|---:|---:|---:|---:|---:|");
    for (label, wire, records, samples) in &rows {
        for (c, name) in CLIENTS.iter().enumerate() {
            let s = &samples[c];
            let wall = median(&s.wall);
            println!(
                "| {label} | {name} | {} | {:.0} | {} | {} | {:.0} | {} |",
                fmt_stat(&s.wall, 3),
                *wire as f64 / wall / 1e6,
                if c == 3 {
                    "–".to_string()
                } else {
                    format!("{:.2}", *records as f64 / wall / 1e6)
                },
                fmt_stat(&s.cpu, 3),
                *wire as f64 / median(&s.cpu) / 1e6,
                if c == 3 {
                    "–".to_string()
                } else {
                    format!("{:.3}", median(&s.server_cpu))
                },
            );
        }
    }
    println!("\nratios of medians (bytes/s: > 1 weir faster; CPU: < 1 weir cheaper)");
    println!(
        "| log | client | bytes/s vs kcat | bytes/s vs memcpy | CPU vs kcat | CPU vs memcpy |\n|---|---|---:|---:|---:|---:|"
    );
    for (label, _, _, samples) in &rows {
        let kcat_wall = median(&samples[2].wall);
        let memcpy_wall = median(&samples[3].wall);
        for c in [0, 1] {
            let wall = median(&samples[c].wall);
            let cpu = median(&samples[c].cpu);
            println!(
                "| {label} | {} | {:.2}x | {:.3}x | {:.2}x | {:.1}x |",
                CLIENTS[c],
                kcat_wall / wall,
                memcpy_wall / wall,
                cpu / median(&samples[2].cpu),
                cpu / median(&samples[3].cpu)
            );
        }
    }
}

/// The weir Consumer in this process, from creation to the last record; with `touch`, every value byte is read.
fn weir_run(rt: &tokio::runtime::Runtime, server: &ReplayServer, touch: bool) -> Sample {
    let total = server.record_count();
    let cpu0 = process_cpu();
    let server0 = server.server_cpu();
    let started = Instant::now();
    let (consumer, value_bytes, sum) = rt.block_on(async {
        let mut cfg = ConsumerConfig::new(&server.bootstrap());
        cfg.set("fetch.max.wait.ms", "10").unwrap();
        let consumer = Consumer::new(cfg).expect("consumer");
        let tps: Vec<_> = (0..server.partitions())
            .map(|p| (TopicPartition::new(server.topic(), p), StartOffset::Earliest))
            .collect();
        consumer.assign(&tps).await.expect("assign");
        let deadline = Instant::now() + Duration::from_secs(300);
        let (mut got, mut bytes, mut sum) = (0u64, 0u64, 0u64);
        while got < total {
            assert!(
                Instant::now() < deadline,
                "weir: {got} of {total} records in 300 s"
            );
            let recs = consumer
                .poll(16 * 1024, Duration::from_secs(1))
                .await
                .expect("poll");
            for r in &recs {
                let v = r.value.as_deref().unwrap_or_default();
                bytes += v.len() as u64;
                if touch {
                    sum = sum.wrapping_add(word_sum(v));
                }
            }
            got += recs.len() as u64;
        }
        assert_eq!(got, total, "weir: records");
        (consumer, bytes, sum)
    });
    let wall = started.elapsed().as_secs_f64();
    let server_cpu = (server.server_cpu() - server0).as_secs_f64();
    let cpu = (process_cpu() - cpu0).as_secs_f64() - server_cpu;
    std::hint::black_box(sum);
    assert_eq!(
        value_bytes,
        total * server.record_size() as u64,
        "weir: value bytes"
    );
    rt.block_on(consumer.close()).expect("close");
    Sample {
        wall,
        cpu,
        server_cpu,
    }
}

/// Sum of the value's bytes as little-endian 8-byte words (and the tail's bytes): reads every byte.
fn word_sum(v: &[u8]) -> u64 {
    let mut chunks = v.chunks_exact(8);
    let mut s = chunks.by_ref().fold(0u64, |a, c| {
        a.wrapping_add(u64::from_le_bytes(c.try_into().unwrap()))
    });
    for &b in chunks.remainder() {
        s = s.wrapping_add(u64::from(b));
    }
    s
}

/// kcat as a child, stdout on /dev/null (the shell `exec`s kcat, so `wait4` measures kcat itself).
fn kcat_run(kcat: &Kcat, server: &ReplayServer) -> Sample {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec \"$0\" \"$@\" >/dev/null")
        .arg(kcat.path())
        .args(["-C", "-b", &server.bootstrap(), "-t", server.topic()])
        .args([
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\n",
            "-X",
            "fetch.wait.max.ms=10",
        ]);
    for (k, v) in kcat.command().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let server0 = server.server_cpu();
    let m = run_measured(cmd, Input::Null, false, Duration::from_secs(300));
    let server_cpu = (server.server_cpu() - server0).as_secs_f64();
    let stderr = String::from_utf8_lossy(&m.stderr);
    assert!(m.status.success(), "kcat failed ({}): {stderr}", m.status);
    // Without -q kcat reports each partition's end: every one must be at the log end.
    for p in 0..server.partitions() {
        let end = format!(
            "Reached end of topic {} [{p}] at offset {}",
            server.topic(),
            server.records_per_partition()
        );
        assert!(
            stderr.contains(&end),
            "kcat: no \"{end}\" in its stderr: {stderr}"
        );
    }
    Sample {
        wall: m.wall.as_secs_f64(),
        cpu: m.cpu(),
        server_cpu,
    }
}

/// Every batch copied into one reused buffer, on this thread.
fn memcpy_run(server: &ReplayServer) -> Sample {
    let largest = (0..server.partitions())
        .flat_map(|p| server.batches(p))
        .map(|b| b.len())
        .max()
        .unwrap_or(0);
    let mut buf = vec![0u8; largest];
    let cpu0 = thread_cpu();
    let started = Instant::now();
    for p in 0..server.partitions() {
        for b in server.batches(p) {
            buf[..b.len()].copy_from_slice(b);
            std::hint::black_box(&mut buf);
        }
    }
    Sample {
        wall: started.elapsed().as_secs_f64(),
        cpu: (thread_cpu() - cpu0).as_secs_f64(),
        server_cpu: 0.0,
    }
}
