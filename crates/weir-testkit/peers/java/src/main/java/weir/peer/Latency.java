/*
 * The peer's `latency` subcommand: end-to-end latency at a fixed rate, produced and read back in one process, the
 * method of weir's `latency_vs_peers` bench for every client.
 *
 *   latency --bootstrap B --topic T --partitions P --rate R --duration-ms D --warmup-ms W [--record-size 100]
 *           [--linger-ms N] [--fetch-max-wait-ms N] [--drain-timeout-ms 10000] [--config KEY=VALUE]...
 *
 * Record i is due at origin + i/R. The producing thread parks until then (or not at all when behind schedule) and
 * calls send(); both latencies are measured from that intended time, so a stall delays the records behind it in
 * the figures too (no coordinated omission). Each value starts with a 24-byte big-endian header: the run's id, the
 * record's number and its intended send time (nanoseconds after the origin, System.nanoTime); 'x' fills the rest.
 * The first W*R/1000 records (the warm-up) are produced and read but not counted.
 *
 * The producer: idempotent, acks=all, no compression (Java's defaults but the compression, which is none too);
 * --linger-ms sets linger.ms when given (default 5 ms since Kafka 4.0). The consumer: a second client on its own
 * thread, every partition assigned and read from the beginning (the topic is expected to be fresh), poll(100 ms);
 * --fetch-max-wait-ms sets fetch.max.wait.ms when given (default 500). Latency = time after poll() returned -
 * intended send time. After the last record is acknowledged the consumer gets --drain-timeout-ms to read them all.
 *
 * Prints one JSON object on stdout: count (measured records read), p50_ms, p90_ms, p99_ms, p999_ms, max_ms
 * (end to end), ack_p50_ms, ack_p99_ms, ack_max_ms (intended send -> acknowledgement), scheduled, acked, failed,
 * missing (scheduled records never read), duplicates, foreign (records of another run). With LATENCY_DIAG=1, some
 * of the producer's metrics (record queue time, request latency, records per request) go to stderr.
 */
package weir.peer;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

import org.HdrHistogram.Histogram;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** The latency driver (see the file's header). */
final class Latency {
    private Latency() {}

    /** Bytes of the header at the start of every value. */
    static final int HEADER_LEN = 24;
    /** The highest latency a histogram keeps (ns); longer ones are recorded as this. */
    static final long MAX_TRACKED_NS = 3_600_000_000_000L;

    static Histogram histogram() {
        return new Histogram(1, MAX_TRACKED_NS, 3);
    }

    static void record(Histogram h, long ns) {
        h.recordValue(Math.max(1, Math.min(ns, MAX_TRACKED_NS)));
    }

    /** What the reading thread saw. */
    static final class Reader implements Runnable {
        final KafkaConsumer<byte[], byte[]> consumer;
        final long run;
        final long origin;
        final long warmup;
        final boolean[] seen;
        final Histogram latency = histogram();
        /** How many records to expect, once known (Long.MAX_VALUE before). */
        final AtomicLong expected = new AtomicLong(Long.MAX_VALUE);
        volatile boolean stop;
        long received;
        long count;
        long duplicates;
        long foreign;
        Throwable error;

        Reader(KafkaConsumer<byte[], byte[]> consumer, long run, long origin, long warmup, long total) {
            this.consumer = consumer;
            this.run = run;
            this.origin = origin;
            this.warmup = warmup;
            this.seen = new boolean[Math.toIntExact(total)];
        }

        @Override
        public void run() {
            try {
                while (!stop && received < expected.get()) {
                    ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(100));
                    long now = System.nanoTime() - origin;
                    for (ConsumerRecord<byte[], byte[]> r : recs) {
                        byte[] v = r.value();
                        if (v == null || v.length < HEADER_LEN) {
                            foreign++;
                            continue;
                        }
                        ByteBuffer b = ByteBuffer.wrap(v);
                        long seq = b.getLong(8);
                        if (b.getLong(0) != run || seq < 0 || seq >= seen.length) {
                            foreign++;
                            continue;
                        }
                        if (seen[(int) seq]) {
                            duplicates++;
                            continue;
                        }
                        seen[(int) seq] = true;
                        received++;
                        if (seq >= warmup) {
                            count++;
                            record(latency, now - b.getLong(16));
                        }
                    }
                }
            } catch (Throwable t) {
                error = t;
            }
        }
    }

    static void latency(Main.Args args) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        int partitions = Integer.parseInt(args.required("partitions"));
        long rate = Long.parseLong(args.required("rate"));
        long durationMs = Long.parseLong(args.required("duration-ms"));
        long warmupMs = Long.parseLong(args.required("warmup-ms"));
        int size = Integer.parseInt(args.optional("record-size", "100"));
        String linger = args.optional("linger-ms", null);
        String maxWait = args.optional("fetch-max-wait-ms", null);
        long drainMs = Long.parseLong(args.optional("drain-timeout-ms", "10000"));
        if (partitions <= 0 || rate <= 0 || durationMs <= 0 || warmupMs < 0 || size < HEADER_LEN) {
            throw new Main.Fail(1, "latency: positive --partitions, --rate, --duration-ms and a --record-size of at least "
                    + HEADER_LEN + " are required");
        }
        long warmup = warmupMs * rate / 1000;
        long total = warmup + durationMs * rate / 1000;

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        if (linger != null) {
            pp.put(ProducerConfig.LINGER_MS_CONFIG, linger);
        }
        args.applyConfig(pp);
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (maxWait != null) {
            cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, maxWait);
        }

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
                KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            // Both clients know the topic and the reader its positions before the schedule starts.
            producer.partitionsFor(topic);
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            for (TopicPartition tp : tps) {
                consumer.position(tp, Duration.ofSeconds(30));
            }
            long run = ThreadLocalRandom.current().nextLong();
            long origin = System.nanoTime();
            Reader reader = new Reader(consumer, run, origin, warmup, total);
            Thread readerThread = new Thread(reader, "latency-reader");
            readerThread.start();

            Histogram ackLatency = histogram();
            AtomicLong acked = new AtomicLong();
            AtomicLong failed = new AtomicLong();
            AtomicReference<Exception> firstError = new AtomicReference<>();
            byte[] filler = new byte[size - HEADER_LEN];
            Arrays.fill(filler, (byte) 'x');
            for (long i = 0; i < total; i++) {
                long due = i * 1_000_000_000L / rate;
                for (long wait = due - (System.nanoTime() - origin); wait > 0;
                        wait = due - (System.nanoTime() - origin)) {
                    LockSupport.parkNanos(wait);
                }
                ByteBuffer v = ByteBuffer.allocate(size);
                v.putLong(run).putLong(i).putLong(due).put(filler);
                boolean measured = i >= warmup;
                producer.send(new ProducerRecord<>(topic, v.array()), (m, e) -> {
                    if (e != null) {
                        failed.incrementAndGet();
                        firstError.compareAndSet(null, e);
                        return;
                    }
                    acked.incrementAndGet();
                    if (measured) {
                        long now = System.nanoTime() - origin;
                        synchronized (ackLatency) {
                            record(ackLatency, now - due);
                        }
                    }
                });
            }
            producer.flush();
            reader.expected.set(acked.get());
            if ("1".equals(System.getenv("LATENCY_DIAG"))) {
                // The producer's own view of where the time went (averages over the whole run, warm-up included).
                for (var e : producer.metrics().entrySet()) {
                    String n = e.getKey().name();
                    if (e.getKey().group().equals("producer-metrics") && List.of("record-queue-time-avg",
                            "record-queue-time-max", "request-latency-avg", "request-latency-max",
                            "records-per-request-avg", "batch-size-avg", "request-rate", "produce-throttle-time-avg")
                            .contains(n)) {
                        System.err.println("diag " + n + ": " + e.getValue().metricValue());
                    }
                }
            }
            readerThread.join(drainMs);
            reader.stop = true;
            readerThread.join();
            if (reader.error != null) {
                throw new Main.Fail(1, "latency: reading failed: " + reader.error);
            }
            if (firstError.get() != null) {
                throw new Main.Fail(1, "latency: " + failed.get() + " records failed: " + firstError.get());
            }
            Histogram e2e = reader.latency;
            String json;
            synchronized (ackLatency) {
                json = String.format(Locale.ROOT,
                        "{\"client\":\"java\",\"count\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
                                + "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,"
                                + "\"ack_max_ms\":%.3f,\"scheduled\":%d,\"acked\":%d,\"failed\":%d,\"missing\":%d,"
                                + "\"duplicates\":%d,\"foreign\":%d}",
                        reader.count, ms(e2e.getValueAtPercentile(50)), ms(e2e.getValueAtPercentile(90)),
                        ms(e2e.getValueAtPercentile(99)), ms(e2e.getValueAtPercentile(99.9)), ms(e2e.getMaxValue()),
                        ms(ackLatency.getValueAtPercentile(50)), ms(ackLatency.getValueAtPercentile(99)),
                        ms(ackLatency.getMaxValue()), total, acked.get(), failed.get(), total - reader.received,
                        reader.duplicates, reader.foreign);
            }
            // Main redirects System.out to stderr: write to the process's stdout itself.
            PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
            out.println(json);
            out.flush();
        }
    }

    static double ms(long ns) {
        return ns / 1e6;
    }
}
