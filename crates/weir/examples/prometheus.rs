//! weir's metrics served to Prometheus: installs `metrics-exporter-prometheus` as the `metrics` recorder, with
//! its HTTP listener, then runs a small producer and consumer so that there is something to see.
//!
//! ```text
//! cargo run -p weir --example prometheus -- [--brokers B] [--listen 127.0.0.1:9464] [--topic T] \
//!     [--partitions 3] [--records 3000] [--record-size 100] [--pause-secs 10] [--exit-after SECS] \
//!     [--client-id weir-prometheus]
//! curl -s http://127.0.0.1:9464/metrics | grep '^kafka_'
//! ```
//!
//! The brokers are `--brokers`, else `$WEIR_BROKERS`, else 127.0.0.1:9092. `--listen` with port 0 picks a free
//! port. The topic is created (with `--partitions`) if missing. What happens, each step a line on stdout:
//!
//! 1. `scrape http://ADDR/metrics`: the exporter listens; point Prometheus (or curl) there.
//! 2. `produced N records (B bytes of keys and values) to T`: a producer (client id `ID-producer`) wrote `N`
//!    records of `--record-size` bytes, spread evenly over the partitions, and every one was acknowledged.
//! 3. `paused T-0: L records behind for S s`: a consumer (`ID-consumer`) read them from where the topic ended
//!    before, and paused partition 0 after its first records; every other partition is consumed. For `S`
//!    seconds, `kafka_consumer_partition_paused{partition="0",reason="application"}` is 1 and
//!    `kafka_consumer_partition_records_lag{partition="0"}` is `L`.
//! 4. `resumed T-0`, then `done: consumed N records (B bytes)`: every lag is back to 0.
//! 5. The clients stay open and the metrics served until the process is killed, or for `--exit-after` seconds.
//!
//! What to look at: `kafka_client_*` (requests, errors, latency and connections per `client_id`, `broker` and
//! `api`), `kafka_producer_*` (records and bytes sent, batch sizes, produce latency) and `kafka_consumer_*`
//! (records and bytes consumed, fetches, and per `topic` and `partition`: buffered bytes, buffer limit, paused,
//! lag). Prometheus names have no dots: the exporter turns `kafka.consumer.partition.records_lag` into
//! `kafka_consumer_partition_records_lag`. Histograms come out as summaries (`quantile` labels, `_sum`,
//! `_count`). The per-partition gauges are copied from the consumer every `weir.metrics.interval.ms` (1 s
//! here); everything else is updated as it happens.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use weir::admin::OffsetSpec;
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::{Admin, Producer, ProducerRecord};

const USAGE: &str = "usage: prometheus [--brokers B] [--listen ADDR] [--topic T] [--partitions P] \
[--records N] [--record-size BYTES] [--pause-secs S] [--exit-after S] [--client-id ID]";

/// Command-line options.
struct Options {
    brokers: String,
    listen: SocketAddr,
    topic: String,
    partitions: i32,
    records: usize,
    record_size: usize,
    pause: Duration,
    exit_after: Option<Duration>,
    client_id: String,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        brokers: std::env::var("WEIR_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        topic: "weir-prometheus".into(),
        partitions: 3,
        records: 3000,
        record_size: 100,
        pause: Duration::from_secs(10),
        exit_after: None,
        client_id: "weir-prometheus".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}\n{USAGE}");
        let number = || value.parse::<u64>().map_err(|e| bad(&e));
        match flag.as_str() {
            "--brokers" => o.brokers = value.clone(),
            "--listen" => o.listen = value.parse().map_err(|e| bad(&e))?,
            "--topic" => o.topic = value.clone(),
            "--partitions" => o.partitions = number()?.clamp(1, 1000) as i32,
            "--records" => o.records = number()?.max(1) as usize,
            "--record-size" => o.record_size = number()? as usize,
            "--pause-secs" => o.pause = Duration::from_secs(number()?),
            "--exit-after" => o.exit_after = Some(Duration::from_secs(number()?)),
            "--client-id" => o.client_id = value.clone(),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Client settings for `brokers` with `client.id` `id`.
fn client(brokers: &str, id: String) -> ClientConfig {
    let mut cfg = ClientConfig::new(brokers);
    cfg.client_id = id;
    cfg
}

/// Creates `topic` unless it exists; returns where each of its partitions ends now.
async fn prepare_topic(o: &Options) -> weir::Result<BTreeMap<i32, i64>> {
    // A client of its own: its connections show under `client_id="ID-admin"`, and close when it is dropped.
    let admin = Admin::new(client(&o.brokers, format!("{}-admin", o.client_id)))?;
    match admin.create_topic(&o.topic, o.partitions, 1).await {
        Err(e) if e.kafka_code() != Some(KafkaCode::TopicAlreadyExists) => return Err(e),
        _ => {}
    }
    admin.list_offsets(&o.topic, OffsetSpec::Latest).await
}

/// Writes `o.records` records, round robin over the partitions, and waits for every acknowledgement; returns
/// the bytes of their keys and values.
async fn produce(o: &Options, producer: &Producer, partitions: i32) -> weir::Result<u64> {
    let value = bytes::Bytes::from(vec![b'x'; o.record_size]);
    let (mut acks, mut payload) = (Vec::with_capacity(o.records), 0);
    for i in 0..o.records {
        let key = format!("{i:010}");
        payload += (key.len() + value.len()) as u64;
        let record = ProducerRecord::new(o.topic.as_str(), value.clone())
            .key(key)
            .partition(i as i32 % partitions);
        acks.push(producer.send(record).await?);
    }
    for ack in acks {
        ack.await?;
    }
    Ok(payload)
}

/// What the consumer delivered so far.
#[derive(Default)]
struct Consumed {
    records: usize,
    bytes: u64,
    /// Records of partition 0.
    of_first: usize,
}

/// Polls until `done` says so; an error after 30 s without a record.
async fn consume(
    consumer: &Consumer,
    c: &mut Consumed,
    done: impl Fn(&Consumed) -> bool,
) -> Result<(), String> {
    let mut idle = 0;
    while !done(c) {
        let records = consumer
            .poll(500, Duration::from_secs(1))
            .await
            .map_err(|e| e.to_string())?;
        idle = if records.is_empty() { idle + 1 } else { 0 };
        if idle == 30 {
            return Err(format!("no record for 30 s after {} records", c.records));
        }
        for r in records {
            c.records += 1;
            c.bytes += (r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len())) as u64;
            c.of_first += usize::from(r.partition == 0);
        }
    }
    Ok(())
}

async fn run(o: Options) -> Result<(), String> {
    let ends = prepare_topic(&o)
        .await
        .map_err(|e| format!("topic {}: {e}", o.topic))?;
    let partitions = ends.len() as i32;
    let mut pcfg = ProducerConfig::new(&o.brokers);
    pcfg.client = client(&o.brokers, format!("{}-producer", o.client_id));
    let producer = Producer::new(pcfg).map_err(|e| e.to_string())?;
    let payload = produce(&o, &producer, partitions)
        .await
        .map_err(|e| format!("producing: {e}"))?;
    println!(
        "produced {} records ({payload} bytes of keys and values) to {}",
        o.records, o.topic
    );

    let mut ccfg = ConsumerConfig::new(&o.brokers);
    ccfg.client = client(&o.brokers, format!("{}-consumer", o.client_id));
    ccfg.metrics_interval = Duration::from_secs(1); // `weir.metrics.interval.ms`, the default
    let consumer = Consumer::new(ccfg).map_err(|e| e.to_string())?;
    let start: Vec<_> = ends
        .iter()
        .map(|(&p, &end)| (TopicPartition::new(o.topic.as_str(), p), StartOffset::Offset(end)))
        .collect();
    consumer.assign(&start).await.map_err(|e| e.to_string())?;

    // Partition 0 is paused once it delivered its first records (so its end, hence its lag, is known)...
    let first = [TopicPartition::new(o.topic.as_str(), 0)];
    let in_first = o.records.div_ceil(partitions as usize);
    let mut c = Consumed::default();
    consume(&consumer, &mut c, |c| c.of_first > 0).await?;
    consumer.pause(&first).map_err(|e| e.to_string())?;
    // ...while every other partition is consumed to its end.
    consume(&consumer, &mut c, |c| {
        c.records + in_first - c.of_first >= o.records
    })
    .await?;
    println!(
        "paused {}: {} records behind for {} s",
        first[0],
        in_first - c.of_first,
        o.pause.as_secs()
    );
    tokio::time::sleep(o.pause).await;
    consumer.resume(&first).map_err(|e| e.to_string())?;
    println!("resumed {}", first[0]);
    consume(&consumer, &mut c, |c| c.records >= o.records).await?;
    println!("done: consumed {} records ({} bytes)", c.records, c.bytes);

    match o.exit_after {
        Some(after) => tokio::time::sleep(after).await,
        None => std::future::pending().await,
    }
    consumer.close().await.map_err(|e| e.to_string())?;
    producer.close().await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // With port 0, a free port is picked here: the exporter binds the address itself and does not say which
    // port it got.
    let listen = match opts.listen.port() {
        0 => std::net::TcpListener::bind(opts.listen).and_then(|l| l.local_addr()),
        _ => Ok(opts.listen),
    };
    // Installed before any client exists: the recorder sees every metric from the start.
    let installed = listen.map_err(|e| e.to_string()).and_then(|addr| {
        PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map(|()| addr)
            .map_err(|e| e.to_string())
    });
    match installed {
        Ok(addr) => println!("scrape http://{addr}/metrics"),
        Err(e) => {
            eprintln!("cannot serve metrics on {}: {e}", opts.listen);
            return ExitCode::FAILURE;
        }
    }
    match run(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
