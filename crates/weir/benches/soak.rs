//! Soak: moderate load for a long time on a three-node Apache Kafka cluster, with pauses, resumes, seeks,
//! rebalances and broker restarts, watching this process's RSS and open file descriptors for a leak.
//!
//! `SOAK_SECS=1800 cargo bench -p weir --bench soak` (30 minutes; the default is 300 s). Starts its own cluster
//! (`Kafka::start(Shape::Three)`: replication factor 3, `min.insync.replicas=2`) and a 12-partition topic, then,
//! in this process:
//! - an idempotent `acks=all` producer sends keyed records at `RATE` records/s (2,000), at most 1,000
//!   unacknowledged;
//! - a group of two members (cooperative-sticky, auto-commit) polls all the time; each pauses a partition it owns
//!   for 0.5 s about every 2 s, and seeks one 100 records back about every 30 s;
//! - a third member joins for 30 s every `REBALANCE_SECS` (120): two rebalances each time;
//! - a broker is killed (SIGKILL) and restarted 10 s later every `RESTART_SECS` (300), in turn.
//!
//! Every `SAMPLE_SECS` (10) it samples VmRSS and the open file descriptors (`/proc/self/fd`: all, and sockets, the
//! client's own; the harness keeps a pipe to each killed node's watchdog until the end). At the end
//! the producer stops, the group reads to the end, and the bench checks that every acknowledged record was
//! delivered at least once (seeks back and rebalances deliver some twice; nothing may be missing) and that the
//! application saw no error. It prints both slopes (least squares over the samples after the first fifth, the
//! warm-up), per hour, and with `WEIR_BENCH_OUT` writes the series and the figures as results lines.
//!
//! The delivered-offset bitmaps (one bit per record) take 2,000 records/s for 30 minutes: 450 KB, reserved at
//! the start (twice that, for uneven partitions) so they do not grow during the run; everything else the bench
//! keeps is bounded.
//!
//! RSS alone cannot tell a leak from the allocator keeping freed pages (glibc's arenas, one per thread that
//! allocated, up to 8 per core, each holding on to its high-water mark): the bench's global allocator also counts
//! the bytes live on the heap, sampled with RSS, and the slope of that count is the leak test. Each sample also
//! prints the sockets by the port they are connected to. Once every client is closed, their sockets must be gone
//! (the bench fails otherwise) and the live heap back near where it started.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use weir::config::ProducerConfig;
use weir::consumer::{StartOffset, TopicPartition};
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Producer, ProducerRecord};
use weir_testkit::bench_env::num as env_secs;
use weir_testkit::bench_out::{self, Param};
use weir_testkit::counting_alloc::{self, CountingAllocator};
use weir_testkit::{unique_name, Kafka, Shape};

const BENCH: &str = "soak";
const PARTITIONS: i32 = 12;
const WINDOW: usize = 1000;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Offsets delivered, per partition: one bit each.
#[derive(Default)]
struct Delivered(Mutex<BTreeMap<i32, Vec<u64>>>);

impl Delivered {
    /// Room for `bits` offsets in each partition, reserved now, so that the bitmaps' growth does not show in the
    /// heap's slope.
    fn with_room(bits: u64) -> Delivered {
        let words = (bits / 64 + 1) as usize;
        let m = (0..PARTITIONS).map(|p| (p, Vec::with_capacity(words))).collect();
        Delivered(Mutex::new(m))
    }

    fn mark(&self, partition: i32, offset: i64) {
        let mut m = self.0.lock().unwrap();
        let bits = m.entry(partition).or_default();
        let (word, bit) = (offset as usize / 64, offset as usize % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        bits[word] |= 1 << bit;
    }

    /// Offsets below `end` of `partition` never delivered.
    fn missing(&self, partition: i32, end: i64) -> u64 {
        let m = self.0.lock().unwrap();
        let bits = m.get(&partition).map_or(&[][..], Vec::as_slice);
        (0..end)
            .filter(|&o| bits.get(o as usize / 64).is_none_or(|w| w & (1 << (o % 64)) == 0))
            .count() as u64
    }
}

/// What the application saw: records and errors.
#[derive(Default)]
struct Seen {
    delivered: Delivered,
    records: AtomicU64,
    errors: AtomicU64,
}

/// Open file descriptors, and of them sockets (the client's connections: the harness's own descriptors, such as
/// the pipe it keeps to each killed node's watchdog until the cluster drops, are not sockets).
fn open_fds() -> (f64, f64) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return (0.0, 0.0);
    };
    let (mut all, mut sockets) = (0, 0);
    for e in dir.flatten() {
        all += 1;
        if std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    (all as f64, sockets as f64)
}

/// This process's TCP sockets by the remote port they are connected to (listening and closed ones under 0).
fn sockets_by_port() -> BTreeMap<u16, u32> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut by_port = BTreeMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && inodes.contains(cols[9]) {
                let port = cols[2]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    .unwrap_or(0);
                *by_port.entry(port).or_insert(0) += 1;
            }
        }
    }
    by_port
}

/// Least-squares slope of `y` against `x`.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let var: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    if var == 0.0 {
        0.0
    } else {
        cov / var
    }
}

/// A group member polling until `stop`, pausing a partition now and then and seeking one back.
fn member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let mut cfg = GroupConfig::new(bootstrap, group);
    cfg.set("partition.assignment.strategy", "cooperative-sticky")
        .unwrap();
    cfg.set("auto.offset.reset", "earliest").unwrap();
    let m = GroupConsumer::new(cfg).unwrap();
    m.subscribe(&[topic]);
    tokio::spawn(async move {
        let mut paused: Option<(TopicPartition, Instant)> = None;
        let mut next_pause = Instant::now() + Duration::from_secs(2);
        let mut next_seek = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) {
            match m.poll(500, Duration::from_millis(200)).await {
                Ok(records) => {
                    seen.records.fetch_add(records.len() as u64, Ordering::Relaxed);
                    for r in &records {
                        seen.delivered.mark(r.partition, r.offset);
                    }
                }
                Err(e) => {
                    eprintln!("soak: poll error: {e}");
                    seen.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let now = Instant::now();
            if let Some((tp, until)) = &paused {
                if now >= *until {
                    let _ = m.resume(std::slice::from_ref(tp)); // It may have been revoked meanwhile.
                    paused = None;
                }
            }
            let owned = m.assignment();
            if owned.is_empty() {
                continue;
            }
            if paused.is_none() && now >= next_pause {
                let tp = owned[rand::thread_rng().gen_range(0..owned.len())].clone();
                if m.pause(std::slice::from_ref(&tp)).is_ok() {
                    paused = Some((tp, now + Duration::from_millis(500)));
                }
                next_pause = now + Duration::from_secs(2);
            }
            if now >= next_seek {
                let tp = &owned[rand::thread_rng().gen_range(0..owned.len())];
                if let Some(pos) = m.position(tp) {
                    if let Err(e) = m.seek(tp, StartOffset::Offset((pos - 100).max(0))).await {
                        eprintln!("soak: seek error: {e}");
                        seen.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next_seek = now + Duration::from_secs(30);
            }
        }
        if let Err(e) = m.close().await {
            eprintln!("soak: close error: {e}");
            seen.errors.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn main() {
    let secs = env_secs("SOAK_SECS", 300);
    let rate = env_secs("RATE", 2000);
    let sample = Duration::from_secs(env_secs("SAMPLE_SECS", 10));
    let rebalance_every = Duration::from_secs(env_secs("REBALANCE_SECS", 120));
    let restart_every = Duration::from_secs(env_secs("RESTART_SECS", 300));
    let mut kafka = Kafka::start(Shape::Three);
    let topic = unique_name("soak");
    kafka.create_topic(&topic, PARTITIONS);
    let bootstrap = kafka.bootstrap();
    let group = unique_name("soak-group");
    println!(
        "soak: {secs} s at {rate} records/s on {PARTITIONS} partitions, 3 nodes; a rebalance every {rebalance_every:?}, \
         a broker restart every {restart_every:?}"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Before any client exists: what the harness itself holds.
    let (sockets_before, heap_before) = (open_fds().1, counting_alloc::live_bytes());
    // Keys spread records unevenly: room for twice a partition's even share.
    let seen = Arc::new(Seen {
        delivered: Delivered::with_room(2 * rate * secs / PARTITIONS as u64),
        ..Seen::default()
    });
    let stop_consumers = Arc::new(AtomicBool::new(false));
    let stop_producer = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<i32, i64>>> = Arc::default();
    let send_errors = Arc::new(AtomicU64::new(0));

    let _guard = rt.enter();
    let producing = rt.spawn({
        let (bootstrap, topic, stop, acked, send_errors) = (
            bootstrap.clone(),
            topic.clone(),
            stop_producer.clone(),
            acked.clone(),
            send_errors.clone(),
        );
        async move {
            let mut cfg = ProducerConfig::new(&bootstrap);
            cfg.set("acks", "all").unwrap();
            cfg.set("enable.idempotence", "true").unwrap();
            let producer = Producer::new(cfg).unwrap();
            let mut window = std::collections::VecDeque::new();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let per_tick = (rate / 100).max(1);
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for _ in 0..per_tick {
                    let r = ProducerRecord::new(&topic, format!("{i:012}-{}", "v".repeat(200)))
                        .key(format!("k{}", i % 256));
                    match producer.send(r).await {
                        Ok(d) => window.push_back(d),
                        Err(e) => {
                            eprintln!("soak: send error: {e}");
                            send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                    while window.len() > WINDOW {
                        settle(window.pop_front().unwrap().await, &acked, &send_errors);
                    }
                }
            }
            for d in window {
                settle(d.await, &acked, &send_errors);
            }
            producer.close().await.unwrap();
        }
    });
    let mut members = vec![
        member(&bootstrap, &group, &topic, seen.clone(), stop_consumers.clone()),
        member(&bootstrap, &group, &topic, seen.clone(), stop_consumers.clone()),
    ];

    let start = Instant::now();
    let (mut t, mut rss, mut heap, mut fds, mut sockets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut next_sample = start;
    let mut next_rebalance = start + rebalance_every;
    let mut next_restart = start + restart_every;
    let mut third: Option<(Arc<AtomicBool>, tokio::task::JoinHandle<()>, Instant)> = None;
    let (mut rebalances, mut restarts) = (0, 0);
    // A node killed, and when to start it again.
    let mut down: Option<(i32, Instant)> = None;
    let ids = kafka.node_ids();
    while start.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        if now >= next_sample {
            t.push(start.elapsed().as_secs_f64());
            rss.push(counting_alloc::status_bytes("VmRSS:") as f64 / (1024.0 * 1024.0));
            heap.push(counting_alloc::live_bytes() as f64 / (1024.0 * 1024.0));
            let (all, socks) = open_fds();
            fds.push(all);
            sockets.push(socks);
            let by_port: Vec<String> = sockets_by_port()
                .into_iter()
                .map(|(port, n)| format!("{port}:{n}"))
                .collect();
            println!(
                "  t={:>5.0} s  rss {:>6.1} MiB  heap {:>6.2} MiB  fds {:>3} (sockets {:>3}: {})  delivered {:>9}  \
                 errors {}",
                t.last().unwrap(),
                rss.last().unwrap(),
                heap.last().unwrap(),
                all,
                socks,
                by_port.join(" "),
                seen.records.load(Ordering::Relaxed),
                seen.errors.load(Ordering::Relaxed) + send_errors.load(Ordering::Relaxed)
            );
            next_sample = now + sample;
        }
        if let Some((stop, handle, until)) = third.take() {
            if now >= until {
                stop.store(true, Ordering::Relaxed);
                rt.block_on(handle).unwrap();
            } else {
                third = Some((stop, handle, until));
            }
        } else if now >= next_rebalance {
            let stop = Arc::new(AtomicBool::new(false));
            let handle = member(&bootstrap, &group, &topic, seen.clone(), stop.clone());
            third = Some((stop, handle, now + Duration::from_secs(30)));
            rebalances += 2;
            next_rebalance = now + rebalance_every;
        }
        match down {
            Some((id, back_at)) if now >= back_at => {
                kafka.restart(id);
                println!("  node {id} back");
                down = None;
                next_restart = Instant::now() + restart_every;
            }
            None if now >= next_restart => {
                let id = ids[restarts % ids.len()];
                println!("  killing node {id}");
                kafka.kill(id);
                down = Some((id, now + Duration::from_secs(10)));
                restarts += 1;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some((stop, handle, _)) = third.take() {
        stop.store(true, Ordering::Relaxed);
        rt.block_on(handle).unwrap();
    }
    if let Some((id, _)) = down.take() {
        kafka.restart(id);
    }
    stop_producer.store(true, Ordering::Relaxed);
    rt.block_on(producing).unwrap();
    // Read to the end: every acknowledged offset delivered.
    let ends = acked.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    let missing = |seen: &Seen| -> u64 { ends.iter().map(|(&p, &end)| seen.delivered.missing(p, end)).sum() };
    while missing(&seen) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop_consumers.store(true, Ordering::Relaxed);
    for m in members.drain(..) {
        rt.block_on(m).unwrap();
    }
    let missing = missing(&seen);
    // Every client is closed: their connections and tasks must be gone. Sockets close as the clients' tasks
    // end, just after `close` returns, so this waits (up to 10 s) for the count to come back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds().1 > sockets_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sockets_after, heap_after) = (open_fds().1, counting_alloc::live_bytes());
    println!(
        "soak: every client closed: sockets {sockets_before} before the clients, {sockets_after} after; live heap \
         {:.2} MiB before, {:.2} MiB after (the delivered-offset bitmaps included)",
        heap_before as f64 / (1024.0 * 1024.0),
        heap_after as f64 / (1024.0 * 1024.0)
    );
    let acked_total: i64 = ends.values().sum();
    let errors = seen.errors.load(Ordering::Relaxed) + send_errors.load(Ordering::Relaxed);

    // Slopes after the warm-up (the first fifth of the samples).
    let skip = t.len() / 5;
    let per_hour = |y: &[f64]| slope(&t[skip..], &y[skip..]) * 3600.0;
    let (rss_slope, heap_slope, fd_slope, socket_slope) = (
        per_hour(&rss),
        per_hour(&heap),
        per_hour(&fds),
        per_hour(&sockets),
    );
    println!(
        "soak: {:.0} s; {acked_total} records acknowledged, {} delivered (with repeats), {missing} missing; \
         {errors} errors seen by the application; {rebalances} rebalances, {restarts} broker restarts",
        start.elapsed().as_secs_f64(),
        seen.records.load(Ordering::Relaxed)
    );
    println!(
        "soak: after the warm-up, RSS {:.1} → {:.1} MiB, slope {rss_slope:+.2} MiB/hour; live heap {:.2} → {:.2} MiB, \
         slope {heap_slope:+.2} MiB/hour; open fds {} → {}, slope {fd_slope:+.2}/hour; sockets {} → {}, slope \
         {socket_slope:+.2}/hour",
        rss[skip],
        rss.last().unwrap(),
        heap[skip],
        heap.last().unwrap(),
        fds[skip],
        fds.last().unwrap(),
        sockets[skip],
        sockets.last().unwrap()
    );
    let case = format!("{secs} s, {rate} records/s, 3 nodes");
    let params = [("seconds", Param::from(secs as f64))];
    bench_out::series(
        BENCH,
        &case,
        "weir",
        1,
        &params,
        &[
            ("t_s", &t),
            ("rss_mib", &rss),
            ("heap_mib", &heap),
            ("open_fds", &fds),
            ("sockets", &sockets),
        ],
    );
    bench_out::record(
        BENCH,
        &case,
        "weir",
        1,
        &params,
        &[
            ("rss_slope_mib_per_hour", rss_slope),
            ("heap_slope_mib_per_hour", heap_slope),
            ("fd_slope_per_hour", fd_slope),
            ("socket_slope_per_hour", socket_slope),
            ("sockets_left_after_close", sockets_after - sockets_before),
            ("heap_after_close_mib", heap_after as f64 / (1024.0 * 1024.0)),
            ("missing_records", missing as f64),
            ("errors", errors as f64),
            ("rebalances", rebalances as f64),
            ("broker_restarts", restarts as f64),
        ],
    );
    assert_eq!(missing, 0, "acknowledged records never delivered");
    assert!(
        sockets_after <= sockets_before,
        "closed clients left {} sockets open",
        sockets_after - sockets_before
    );
    assert_eq!(errors, 0, "errors surfaced to the application");
}

fn settle(
    outcome: weir::Result<weir::producer::RecordMetadata>,
    acked: &Mutex<BTreeMap<i32, i64>>,
    errors: &AtomicU64,
) {
    match outcome {
        Ok(m) => {
            let mut a = acked.lock().unwrap();
            let end = a.entry(m.partition).or_insert(0);
            *end = (*end).max(m.offset + 1);
        }
        Err(e) => {
            eprintln!("soak: delivery error: {e}");
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
