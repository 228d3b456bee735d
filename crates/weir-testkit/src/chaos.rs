//! A chaos proxy: one TCP listener on loopback per broker, forwarding every connection to its broker, with a
//! [`Behaviour`] that can be switched at runtime, so that one cluster serves every behaviour in turn and a test
//! can turn chaos off ([`Behaviour::Calm`]) to drain and verify.
//!
//! [`Kafka::start_proxied`](crate::Kafka::start_proxied) puts one in front of every broker's client listener
//! and has the brokers advertise the proxies, while replication and the controller go direct: chaos hits the
//! clients only.
//!
//! Randomness comes from one seed ([`Chaos::seed`], printed when the proxy starts; `WEIR_CHAOS_SEED` replays
//! one). Each connection draws from its own generator, derived from the seed, the listener and the
//! connection's number on it, so a replay makes the same draws for the same connections; which bytes are in
//! flight when a draw takes effect still depends on timing.
//!
//! The proxy counts what it did ([`ChaosCounts`]): a test reports the counts and asserts that the chaos it
//! asked for happened (a test where the proxy did nothing must fail).
//!
//! The proxy runs on a thread of its own (a single-threaded tokio runtime), so it serves synchronous and
//! asynchronous tests alike; dropping the [`Chaos`] stops it and closes every connection.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::{sleep, sleep_until, Instant};

/// Environment variable replaying a seed: `WEIR_CHAOS_SEED=N`.
pub const SEED_ENV: &str = "WEIR_CHAOS_SEED";

/// What the proxy does to the connections it forwards. A switch applies to the connections already open as
/// well as to new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Forwards faithfully.
    Calm,
    /// Closes each connection after an exponentially distributed life of mean `mean_life` (the life is drawn
    /// again when the behaviour is switched). Both directions are closed at once, each cut at random either
    /// with a reset (RST: `SO_LINGER` 0, then close) or with an orderly close (FIN to both ends), counted apart.
    Cut {
        /// Mean life of a connection.
        mean_life: Duration,
    },
    /// Holds every chunk of the broker's replies for a time drawn uniformly in `[0, max]` before passing it on
    /// (the replies of one connection stay in order; the next chunk is read once the previous one is passed).
    Delay {
        /// Longest hold of one chunk.
        max: Duration,
    },
    /// Stalls a connection's replies from time to time: once an exponentially distributed time of mean
    /// `mean_gap` has passed, the next reply chunk is held for a time drawn uniformly in `[min, max]`. A `max`
    /// above the client's request timeout exercises it: the client gives the connection up during the stall
    /// (counted in [`ChaosCounts::stalls_given_up`]).
    Stall {
        /// Mean time between stalls of one connection.
        mean_gap: Duration,
        /// Shortest stall.
        min: Duration,
        /// Longest stall.
        max: Duration,
    },
    /// After an exponentially distributed life of mean `mean_life`, the proxy stops forwarding on the
    /// connection in both directions (what it reads from either end is dropped) and never closes it: the
    /// client can only notice by its request timeout. The proxy lets the broker side go once the client has
    /// closed its end (counted in [`ChaosCounts::half_open_noticed`]). A frozen connection stays frozen when the
    /// behaviour is switched.
    HalfOpen {
        /// Mean life of a connection before it freezes.
        mean_life: Duration,
    },
    /// Reads from both ends in small chunks, with pauses: a chunk's size is drawn uniformly in `[1, 16]` one
    /// time in four and in `[1, max_chunk]` otherwise, and after each chunk the proxy sleeps for a time drawn
    /// uniformly in `[0, max_pause]` (under a millisecond: no pause). Frames arrive split at every possible
    /// place, and slowly.
    SlowRead {
        /// Largest chunk read at once.
        max_chunk: usize,
        /// Longest pause after a chunk.
        max_pause: Duration,
    },
    /// Delays every chunk, both ways, by `one_way` from when the proxy read it, without holding up what follows:
    /// chunks read meanwhile are in flight together, as on a link with that latency and no bandwidth limit. A
    /// round trip takes `2 × one_way` longer than direct. For benchmarks that need a network's round trip on
    /// loopback (where `tc netem` is not available).
    Latency {
        /// The delay of each chunk in each direction.
        one_way: Duration,
    },
}

/// Declares the counters once: the atomics the proxy updates and the snapshot a test reads.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// What the proxy did, as counted since it started ([`Chaos::counts`]); [`ChaosCounts::since`] gives
        /// the counts of one phase of a test.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct ChaosCounts {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl ChaosCounts {
            /// The counts since `earlier` (a snapshot taken before).
            pub fn since(&self, earlier: &ChaosCounts) -> ChaosCounts {
                ChaosCounts { $($name: self.$name.saturating_sub(earlier.$name),)* }
            }
        }

        #[derive(Default)]
        struct Counters {
            $($name: AtomicU64,)*
        }

        impl Counters {
            fn snapshot(&self) -> ChaosCounts {
                ChaosCounts { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Client connections accepted.
    connections,
    /// Client connections closed at once because the broker could not be reached.
    refused,
    /// Bytes forwarded from clients to brokers.
    bytes_to_broker,
    /// Bytes forwarded from brokers to clients.
    bytes_to_client,
    /// Connections cut with a reset ([`Behaviour::Cut`]).
    cuts_rst,
    /// Connections cut with an orderly close ([`Behaviour::Cut`]).
    cuts_fin,
    /// Reply chunks held ([`Behaviour::Delay`]).
    delays,
    /// Milliseconds reply chunks were held in all ([`Behaviour::Delay`]).
    delay_ms,
    /// Stalls ([`Behaviour::Stall`]).
    stalls,
    /// Milliseconds of stalls in all ([`Behaviour::Stall`]).
    stall_ms,
    /// Connections the client closed during a stall: its request timed out ([`Behaviour::Stall`]).
    stalls_given_up,
    /// Connections frozen ([`Behaviour::HalfOpen`]).
    half_open,
    /// Frozen connections the client closed: it noticed, by its request timeout ([`Behaviour::HalfOpen`]).
    half_open_noticed,
    /// Chunks read in small pieces ([`Behaviour::SlowRead`]).
    slow_reads,
    /// Pauses after those chunks ([`Behaviour::SlowRead`]).
    pauses,
    /// Chunks delayed in flight ([`Behaviour::Latency`]).
    latency_chunks,
}

/// The proxies in front of a cluster's brokers, one listener per broker. Dropping it stops every listener and
/// closes every connection.
pub struct Chaos {
    seed: u64,
    ports: Vec<u16>,
    behaviour: watch::Sender<Behaviour>,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("seed", &self.seed)
            .field("ports", &self.ports)
            .field("behaviour", &*self.behaviour.borrow())
            .finish()
    }
}

impl Chaos {
    /// The seed of a new proxy: `$WEIR_CHAOS_SEED` if set (a replay), else a random one.
    pub fn seed_from_env() -> u64 {
        match std::env::var(SEED_ENV) {
            Ok(s) if !s.trim().is_empty() => s
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("weir-testkit: {SEED_ENV}={s:?} is not a number")),
            _ => rand::random(),
        }
    }

    /// Starts one proxy on a free loopback port for each of `targets` (loopback ports), forwarding to it,
    /// [`Behaviour::Calm`] to begin with. Prints the seed (to stderr, which the test harness shows for a failed
    /// test).
    pub fn start(targets: &[u16], seed: u64) -> io::Result<Chaos> {
        let mut listeners = Vec::with_capacity(targets.len());
        let mut ports = Vec::with_capacity(targets.len());
        for _ in targets {
            let l = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            l.set_nonblocking(true)?;
            ports.push(l.local_addr()?.port());
            listeners.push(l);
        }
        let (behaviour, rx) = watch::channel(Behaviour::Calm);
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let targets: Vec<SocketAddr> = targets
            .iter()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, *p)))
            .collect();
        let shared = counters.clone();
        let thread = std::thread::Builder::new()
            .name("weir-chaos".into())
            .spawn(move || {
                runtime.block_on(async move {
                    for (index, (l, target)) in listeners.into_iter().zip(targets).enumerate() {
                        match TcpListener::from_std(l) {
                            Ok(l) => {
                                let ctx = Ctx {
                                    target,
                                    behaviour: rx.clone(),
                                    counters: shared.clone(),
                                };
                                tokio::spawn(listen(l, ctx, seed, index as u64));
                            }
                            Err(e) => eprintln!("weir-testkit: chaos proxy for {target} did not start: {e}"),
                        }
                    }
                    let _ = stopped.await;
                });
                // Dropping the runtime cancels every connection's task, which closes its sockets.
            })?;
        eprintln!(
            "weir-testkit: chaos proxies on ports {ports:?}, seed {seed} (replay with {SEED_ENV}={seed})"
        );
        Ok(Chaos {
            seed,
            ports,
            behaviour,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The seed every draw derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The proxies' ports, in the order of the targets given to [`Chaos::start`].
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Switches the behaviour, for open connections as for new ones.
    pub fn set(&self, behaviour: Behaviour) {
        self.behaviour.send_replace(behaviour);
    }

    /// The current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        *self.behaviour.borrow()
    }

    /// What the proxy did since it started.
    pub fn counts(&self) -> ChaosCounts {
        self.counters.snapshot()
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What every connection of one listener shares.
#[derive(Clone)]
struct Ctx {
    target: SocketAddr,
    behaviour: watch::Receiver<Behaviour>,
    counters: Arc<Counters>,
}

impl Ctx {
    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        counter(&self.counters).fetch_add(n, Ordering::Relaxed);
    }
}

/// Accepts connections and serves each on a task of its own.
async fn listen(listener: TcpListener, ctx: Ctx, seed: u64, index: u64) {
    let mut number = 0u64;
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                number += 1;
                ctx.count(|c| &c.connections, 1);
                let rng = StdRng::seed_from_u64(mix(seed, index, number));
                tokio::spawn(serve(client, ctx.clone(), rng));
            }
            // Out of descriptors, say: try again shortly rather than spin.
            Err(_) => sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A generator's seed for connection `number` of listener `index` (SplitMix64 of the three).
fn mix(seed: u64, index: u64, number: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ number.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An exponentially distributed duration of mean `mean`.
fn exponential(rng: &mut StdRng, mean: Duration) -> Duration {
    let u: f64 = rng.gen();
    mean.mul_f64(-(1.0 - u).ln())
}

/// A duration drawn uniformly in `[min, max]`.
fn uniform(rng: &mut StdRng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    rng.gen_range(min..=max)
}

/// How a connection's forwarding ended.
enum End {
    /// One end closed (or failed).
    Closed,
    /// Cut with a reset (`true`) or an orderly close.
    Cut { rst: bool },
    /// Frozen: half-open from now on.
    Freeze,
}

/// The direction a pump forwards.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToBroker,
    ToClient,
}

/// Forwards one connection until it closes, is cut or freezes.
async fn serve(mut client: TcpStream, ctx: Ctx, mut rng: StdRng) {
    let mut broker = match TcpStream::connect(ctx.target).await {
        Ok(b) => b,
        Err(_) => {
            ctx.count(|c| &c.refused, 1);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let in_stall = AtomicBool::new(false);
    let to_broker_rng = StdRng::seed_from_u64(rng.gen());
    let to_client_rng = StdRng::seed_from_u64(rng.gen());
    let end = {
        let (mut cr, mut cw) = client.split();
        let (mut br, mut bw) = broker.split();
        tokio::select! {
            _ = pump(&mut cr, &mut bw, Direction::ToBroker, &ctx, to_broker_rng, &in_stall) => End::Closed,
            _ = pump(&mut br, &mut cw, Direction::ToClient, &ctx, to_client_rng, &in_stall) => End::Closed,
            end = fate(ctx.behaviour.clone(), &mut rng) => end,
        }
    };
    match end {
        End::Closed => {
            if in_stall.load(Ordering::Relaxed) {
                ctx.count(|c| &c.stalls_given_up, 1);
            }
        }
        End::Cut { rst: true } => {
            ctx.count(|c| &c.cuts_rst, 1);
            // Closing a socket with SO_LINGER 0 sends a reset, and does not block.
            let _ = client.set_zero_linger();
            let _ = broker.set_zero_linger();
        }
        End::Cut { rst: false } => {
            ctx.count(|c| &c.cuts_fin, 1);
            let _ = client.shutdown().await;
            let _ = broker.shutdown().await;
        }
        End::Freeze => {
            ctx.count(|c| &c.half_open, 1);
            if blackhole(&mut client, &mut broker).await {
                ctx.count(|c| &c.half_open_noticed, 1);
            }
        }
    }
}

/// Waits for what the behaviour has in store for the connection: a cut or a freeze after a drawn life (drawn
/// again when the behaviour is switched), or nothing.
async fn fate(mut behaviour: watch::Receiver<Behaviour>, rng: &mut StdRng) -> End {
    loop {
        let now = *behaviour.borrow_and_update();
        let life = match now {
            Behaviour::Cut { mean_life } | Behaviour::HalfOpen { mean_life } => {
                Some(exponential(rng, mean_life))
            }
            _ => None,
        };
        let switched = async {
            if behaviour.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match life {
            None => switched.await,
            Some(life) => {
                tokio::select! {
                    _ = sleep(life) => {
                        return match now {
                            Behaviour::HalfOpen { .. } => End::Freeze,
                            _ => End::Cut { rst: rng.gen_bool(0.5) },
                        };
                    }
                    _ = switched => {}
                }
            }
        }
    }
}

/// Forwards `from` to `to` until either fails or `from` ends, applying the behaviour chunk by chunk.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    dir: Direction,
    ctx: &Ctx,
    mut rng: StdRng,
    in_stall: &AtomicBool,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut stall_due: Option<Instant> = None;
    // Chunks delayed by `Behaviour::Latency`, with when each is due, in order.
    let mut in_flight: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    loop {
        let limit = match *ctx.behaviour.borrow() {
            Behaviour::SlowRead { max_chunk, .. } => {
                let most = if rng.gen_ratio(1, 4) { 16 } else { max_chunk };
                rng.gen_range(1..=most.clamp(1, buf.len()))
            }
            _ => buf.len(),
        };
        let due = in_flight.front().map(|(at, _)| *at);
        let read = tokio::select! {
            biased;
            _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let (_, chunk) = in_flight.pop_front().expect("a chunk is due");
                if forward(to, &chunk, dir, ctx).await.is_err() {
                    return;
                }
                continue;
            }
            read = from.read(&mut buf[..limit]) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                // What is in flight still arrives, when due.
                let _ = land(to, &mut in_flight, dir, ctx).await;
                return;
            }
            Ok(n) => n,
        };
        // The behaviour may have been switched while the read waited: act on the current one.
        let now = *ctx.behaviour.borrow();
        if let Behaviour::Latency { one_way } = now {
            ctx.count(|c| &c.latency_chunks, 1);
            in_flight.push_back((Instant::now() + one_way, buf[..n].to_vec()));
            continue;
        }
        // Switched away from latency: what is in flight goes first, in order.
        if land(to, &mut in_flight, dir, ctx).await.is_err() {
            return;
        }
        if !matches!(now, Behaviour::Stall { .. }) {
            stall_due = None;
        }
        match now {
            Behaviour::SlowRead { max_pause, .. } => {
                ctx.count(|c| &c.slow_reads, 1);
                let pause = uniform(&mut rng, Duration::ZERO, max_pause);
                if pause >= Duration::from_millis(1) {
                    ctx.count(|c| &c.pauses, 1);
                    sleep(pause).await;
                }
            }
            Behaviour::Delay { max } if dir == Direction::ToClient => {
                let hold = uniform(&mut rng, Duration::ZERO, max);
                ctx.count(|c| &c.delays, 1);
                ctx.count(|c| &c.delay_ms, hold.as_millis() as u64);
                sleep(hold).await;
            }
            Behaviour::Stall { mean_gap, min, max } if dir == Direction::ToClient => {
                let t = Instant::now();
                let due = *stall_due.get_or_insert_with(|| t + exponential(&mut rng, mean_gap));
                if t >= due {
                    stall_due = None;
                    let hold = uniform(&mut rng, min, max);
                    ctx.count(|c| &c.stalls, 1);
                    ctx.count(|c| &c.stall_ms, hold.as_millis() as u64);
                    in_stall.store(true, Ordering::Relaxed);
                    sleep(hold).await;
                    in_stall.store(false, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        if forward(to, &buf[..n], dir, ctx).await.is_err() {
            return;
        }
    }
}

/// Writes one chunk on and counts it.
async fn forward<W: AsyncWrite + Unpin>(
    to: &mut W,
    chunk: &[u8],
    dir: Direction,
    ctx: &Ctx,
) -> io::Result<()> {
    to.write_all(chunk).await?;
    match dir {
        Direction::ToBroker => ctx.count(|c| &c.bytes_to_broker, chunk.len() as u64),
        Direction::ToClient => ctx.count(|c| &c.bytes_to_client, chunk.len() as u64),
    }
    Ok(())
}

/// Writes every chunk in flight on, each once it is due.
async fn land<W: AsyncWrite + Unpin>(
    to: &mut W,
    in_flight: &mut VecDeque<(Instant, Vec<u8>)>,
    dir: Direction,
    ctx: &Ctx,
) -> io::Result<()> {
    while let Some((at, chunk)) = in_flight.pop_front() {
        sleep_until(at).await;
        forward(to, &chunk, dir, ctx).await?;
    }
    Ok(())
}

/// A frozen connection: reads and drops whatever either end sends, forwards nothing, closes nothing. Returns
/// `true` once the client has closed its end (it noticed); the broker's end is let go with it.
async fn blackhole(client: &mut TcpStream, broker: &mut TcpStream) -> bool {
    let mut from_client = [0u8; 16 * 1024];
    let mut from_broker = [0u8; 16 * 1024];
    let mut broker_open = true;
    loop {
        tokio::select! {
            r = client.read(&mut from_client) => {
                if matches!(r, Ok(0) | Err(_)) {
                    return true;
                }
            }
            r = broker.read(&mut from_broker), if broker_open => {
                if matches!(r, Ok(0) | Err(_)) {
                    broker_open = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    /// An echo server on loopback (std threads), for the proxy to forward to.
    fn echo_server() -> u16 {
        let l = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn connect(chaos: &Chaos) -> StdStream {
        let s = StdStream::connect((Ipv4Addr::LOCALHOST, chaos.ports()[0])).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn echo(s: &mut StdStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got)?;
        Ok(got)
    }

    /// The counts once `done` holds (bounded wait).
    fn settled(chaos: &Chaos, done: impl Fn(&ChaosCounts) -> bool) -> ChaosCounts {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let c = chaos.counts();
            if done(&c) {
                return c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "counts never settled: {c:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn calm_forwards_and_slow_read_splits_but_keeps_every_byte() {
        let chaos = Chaos::start(&[echo_server()], 7).unwrap();
        let mut s = connect(&chaos);
        assert_eq!(echo(&mut s, b"hello").unwrap(), b"hello");
        chaos.set(Behaviour::SlowRead {
            max_chunk: 64,
            max_pause: Duration::from_millis(2),
        });
        // The reads waiting when the behaviour switched were asked for 64 KiB: one byte to complete them.
        assert_eq!(echo(&mut s, b"!").unwrap(), b"!");
        let msg: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(echo(&mut s, &msg).unwrap(), msg);
        // A chunk is counted once written, which the echo may see first.
        let c = settled(&chaos, |c| c.bytes_to_client == 6 + 20_000);
        assert_eq!(c.bytes_to_broker, 6 + 20_000);
        // 20,000 bytes in chunks of at most 64, both ways, with pauses.
        assert!(c.slow_reads >= 2 * 20_000 / 64 && c.pauses > 0, "{c:?}");
    }

    #[test]
    fn cut_closes_connections_and_new_ones_work() {
        let chaos = Chaos::start(&[echo_server()], 11).unwrap();
        chaos.set(Behaviour::Cut {
            mean_life: Duration::from_millis(20),
        });
        for _ in 0..10 {
            let mut s = connect(&chaos);
            // Echo until the cut: a read or write fails, or the read sees the end.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                assert!(std::time::Instant::now() < deadline, "never cut");
                match echo(&mut s, b"x") {
                    Ok(_) => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => break,
                }
            }
        }
        let c = settled(&chaos, |c| c.cuts_rst + c.cuts_fin == 10);
        assert!(c.cuts_rst > 0 && c.cuts_fin > 0, "{c:?}");
        chaos.set(Behaviour::Calm);
        assert_eq!(echo(&mut connect(&chaos), b"calm").unwrap(), b"calm");
    }

    #[test]
    fn half_open_forwards_nothing_and_closes_nothing() {
        let chaos = Chaos::start(&[echo_server()], 13).unwrap();
        let mut s = connect(&chaos);
        assert_eq!(echo(&mut s, b"a").unwrap(), b"a");
        chaos.set(Behaviour::HalfOpen {
            mean_life: Duration::from_millis(1),
        });
        settled(&chaos, |c| c.half_open == 1);
        // Neither an answer nor a close: the read times out.
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        s.write_all(b"b").unwrap();
        let mut buf = [0u8; 1];
        let e = s.read(&mut buf).unwrap_err();
        assert!(
            matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            "{e}"
        );
        drop(s);
        settled(&chaos, |c| c.half_open_noticed == 1);
    }

    #[test]
    fn latency_delays_both_ways_and_keeps_order_across_a_switch() {
        let chaos = Chaos::start(&[echo_server()], 19).unwrap();
        let one_way = Duration::from_millis(50);
        chaos.set(Behaviour::Latency { one_way });
        let mut s = connect(&chaos);
        let t = std::time::Instant::now();
        assert_eq!(echo(&mut s, b"ping").unwrap(), b"ping");
        assert!(t.elapsed() >= 2 * one_way, "{:?}", t.elapsed());
        // Chunks written back to back are all in flight, then arrive whole and in order, also when the
        // behaviour switches while they are in flight.
        let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for part in msg.chunks(10_000) {
            s.write_all(part).unwrap();
        }
        chaos.set(Behaviour::Calm);
        s.write_all(b"end").unwrap();
        let mut got = vec![0u8; msg.len() + 3];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got[..msg.len()], &msg[..]);
        assert_eq!(&got[msg.len()..], b"end");
        let c = settled(&chaos, |c| c.bytes_to_client == 4 + 200_003);
        assert!(c.latency_chunks >= 2, "{c:?}");
    }

    #[test]
    fn stall_holds_replies() {
        let chaos = Chaos::start(&[echo_server()], 17).unwrap();
        chaos.set(Behaviour::Stall {
            mean_gap: Duration::from_millis(1),
            min: Duration::from_millis(200),
            max: Duration::from_millis(200),
        });
        let mut s = connect(&chaos);
        // The first reply starts the connection's stall clock; the one after the gap is held.
        assert_eq!(echo(&mut s, b"first").unwrap(), b"first");
        std::thread::sleep(Duration::from_millis(20));
        let t = std::time::Instant::now();
        assert_eq!(echo(&mut s, b"late").unwrap(), b"late");
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(chaos.counts().stalls >= 1);
    }
}
