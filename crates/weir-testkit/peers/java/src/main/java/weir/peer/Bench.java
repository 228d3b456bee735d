/*
 * The Java client peer's throughput modes, for the side-by-side benches (crates/weir/benches/vs_peers.rs and
 * matrix_vs_peers.rs): raw values on stdin and stdout, no JSON, no base64, so that the client's own work is what
 * the bench measures (as for kcat -P / -C and the franz-go peer's produce --input - and consume --out values).
 *
 *   bench-produce --bootstrap B --topic T [--compression none|gzip|snappy|lz4|zstd] [--config KEY=VALUE]...
 *       stdin: one record value per line (the newline removed; an empty line is skipped, as kcat -P does). Sends
 *       them all with an idempotent producer, acks=all, linger.ms=5 (the Java defaults otherwise: 16 KiB batches,
 *       32 MiB buffer memory, send() blocking while it is full), then flushes and closes. Any failed send exits
 *       with status 1 and the first error on stderr.
 *   bench-consume --bootstrap B --topic T --count N [--timeout-ms M] [--config KEY=VALUE]...
 *       Assigns every partition of T, seeks to the beginning and polls (max.poll.records 10000, the Java defaults
 *       otherwise) until N records arrived; writes each value and a newline to stdout. Exits with 2 if fewer than
 *       N arrived within M ms (default 300000).
 *
 * Both print one line on stderr at the end: {"records": N, "seconds": S, "jvm_uptime_s": U}, where S is the time
 * from the subcommand's start (the JVM started and Main loaded) to its end, measured inside the JVM, and U the
 * JVM's uptime at that end: U - S is what the JVM's start-up cost before the subcommand ran.
 */
package weir.peer;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** {@code bench-produce} and {@code bench-consume} (see the file's header). */
final class Bench {
    private Bench() {}

    /** Bytes read from stdin at a time. */
    private static final int READ_CHUNK = 1 << 20;

    static void produce(Main.Args args) throws Exception {
        long started = System.nanoTime();
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args.optional("compression", "none"));
        args.applyConfig(p);
        String topic = args.required("topic");

        AtomicReference<Exception> failed = new AtomicReference<>();
        long n = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            InputStream in = System.in;
            byte[] buf = new byte[READ_CHUNK];
            // buf[0..filled) holds unread input; a line's start is `start`.
            int filled = 0;
            while (true) {
                int got = in.read(buf, filled, buf.length - filled);
                if (got < 0) {
                    break;
                }
                filled += got;
                int start = 0;
                for (int i = 0; i < filled; i++) {
                    if (buf[i] == '\n') {
                        if (i > start) {
                            byte[] value = Arrays.copyOfRange(buf, start, i);
                            producer.send(new ProducerRecord<>(topic, value), (m, e) -> {
                                if (e != null) {
                                    failed.compareAndSet(null, e);
                                }
                            });
                            n++;
                        }
                        start = i + 1;
                    }
                }
                // Keep the unfinished line; grow the buffer if one line fills it.
                System.arraycopy(buf, start, buf, 0, filled - start);
                filled -= start;
                if (filled == buf.length) {
                    buf = Arrays.copyOf(buf, buf.length * 2);
                }
                if (failed.get() != null) {
                    break;
                }
            }
            if (filled > 0 && failed.get() == null) {
                producer.send(new ProducerRecord<>(topic, Arrays.copyOf(buf, filled)), (m, e) -> {
                    if (e != null) {
                        failed.compareAndSet(null, e);
                    }
                });
                n++;
            }
            producer.flush();
        }
        if (failed.get() != null) {
            throw new Main.Fail(1, "bench-produce: " + Main.describe(failed.get()));
        }
        summary(n, started);
    }

    static void consume(Main.Args args) throws IOException {
        long started = System.nanoTime();
        String topic = args.required("topic");
        long count = Long.parseLong(args.required("count"));
        long timeoutMs = Long.parseLong(args.optional("timeout-ms", "300000"));
        Properties p = Main.consumerProps(args);
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        args.applyConfig(p);
        long deadline = started + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long seen = 0;
        OutputStream out = new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 20);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
            if (infos == null || infos.isEmpty()) {
                throw new Main.Fail(1, "bench-consume: no partitions for topic " + topic);
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : infos) {
                tps.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            while (seen < count) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    out.flush();
                    throw new Main.Fail(2, "bench-consume: timed out after " + timeoutMs + " ms with " + seen + " of "
                            + count + " records");
                }
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofNanos(Math.min(left, 1_000_000_000L)));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (seen == count) {
                        break;
                    }
                    seen++;
                    byte[] v = r.value();
                    if (v != null) {
                        out.write(v);
                    }
                    out.write('\n');
                }
            }
            out.flush();
        }
        summary(seen, started);
    }

    /** The closing line on stderr (see the file's header). */
    private static void summary(long records, long started) {
        double seconds = (System.nanoTime() - started) / 1e9;
        double uptime = ManagementFactory.getRuntimeMXBean().getUptime() / 1e3;
        System.err.printf("{\"records\": %d, \"seconds\": %.6f, \"jvm_uptime_s\": %.3f}%n", records, seconds, uptime);
    }
}
