/*
 * weir's Java client peer: Apache Kafka's own Java client (kafka-clients at the broker's version), the reference
 * for client semantics in weir's interop tests. Driven from Rust by weir_testkit::peers::java; built by ../build
 * into $REPO/.peers/java/ (run it as: java -cp '$REPO/.peers/java/*' weir.peer.Main SUBCOMMAND OPTIONS...).
 *
 * Conventions
 *   - Data is JSON, one object per line, on stdin and stdout. stdout carries nothing but data; logging goes to
 *     stderr (log4j2 at WARN; WEIR_JAVA_PEER_LOG=info or debug for more).
 *   - Bytes (keys, values, header values) are standard padded base64 strings, or null for a null; "" is empty.
 *     Header keys are plain JSON strings.
 *   - Failure: a message on stderr and exit status 1; a consume that times out exits with 2.
 *   - Every subcommand takes --config KEY=VALUE (repeatable): client properties applied after the peer's own.
 *
 * Subcommands
 *   produce --bootstrap B --topic T [--compression none|gzip|snappy|lz4|zstd] [--acks all|1|0] [--linger-ms N]
 *       stdin:  {"partition": P|null, "key": B64|null, "value": B64|null, "headers": [["k", B64|null], ...],
 *                "timestamp": MS|null} per record (every field optional: absent means null / no headers).
 *       Sends them all with an idempotent producer (the Java defaults otherwise; acks other than all turn
 *       idempotence off); a record without a partition goes where the default partitioner puts it (murmur2 of the
 *       key for keyed records). After flush, prints {"partition": P, "offset": O, "timestamp": MS} per input
 *       record, in input order.
 *   produce-txn --bootstrap B --topic T --transactional-id ID [--compression C]
 *       stdin:  per line either a record (as for produce) or a control line {"txn": "begin"|"commit"|"abort"}.
 *       A transactional producer (transactional.id ID; idempotent, acks all): initTransactions() once, then per
 *       line beginTransaction(), send(), commitTransaction() (which flushes) or flush() and abortTransaction(), so
 *       that an aborted transaction's records are in the log too. At each commit or abort it prints the
 *       acknowledgements of that transaction's records in input order ({"partition", "offset", "timestamp"} as
 *       produce does), then {"txn": "committed"} or {"txn": "aborted"}. A transaction still open at EOF is
 *       flushed, its acknowledgements printed, and left open (the producer is not closed, which would abort it):
 *       the coordinator aborts it after transaction.timeout.ms (60 s unless --config sets it), or a later
 *       initTransactions with the same ID does. Any client error (a record outside a transaction, a fenced
 *       producer: ProducerFencedException...) exits with 1 and "line N (step) failed: EXCEPTION" on stderr; what
 *       was acknowledged before stays printed.
 *   consume --bootstrap B --topic T --count N [--group G] [--timeout-ms M]
 *       Reads N records from the beginning: without a group by assigning every partition and seeking to the
 *       beginning; with one by subscribing (auto.offset.reset=earliest, classic protocol), then committing what it
 *       read. Prints {"partition", "offset", "key", "value", "headers", "timestamp", "timestamp_type"} per record
 *       as read (timestamp_type: "CreateTime", "LogAppendTime" or "NoTimestampType"). Exits with 2 if fewer than
 *       N records arrived within M ms (default 30000). Reads read_uncommitted (the Java default);
 *       --config isolation.level=read_committed returns committed records only, up to the last stable offset
 *       (offsets then skip aborted records and transaction markers; an open transaction stops it there).
 *   partition --partitions N
 *       stdin: one base64 key per line. Prints the partition the default partitioner gives each key
 *       (BuiltInPartitioner.partitionForKey), one number per line.
 *   member --bootstrap B --group G --topic T --assignor range|cooperative-sticky|roundrobin|sticky [--commit]
 *       A classic-protocol group member (session.timeout.ms 10000, heartbeat 500 ms, earliest), polling every
 *       20 ms until stdin reaches EOF; then it commits (with --commit) and closes, which leaves the group. Events:
 *         {"event": "assigned", "partitions": [..]}   onPartitionsAssigned (cooperative: the added ones only)
 *         {"event": "revoked", "partitions": [..]}    onPartitionsRevoked
 *         {"event": "lost", "partitions": [..]}       onPartitionsLost
 *         {"event": "record", "partition": P, "offset": O, "value": B64|null}
 *         {"event": "committed", "offsets": [[P, O], ..]}  a commitSync that succeeded (--commit)
 *         {"event": "commit_failed", "error": "..."}        one that failed (retried after the next poll for the
 *                                                          partitions still owned)
 *         {"event": "closed"}                              close() returned
 *       --commit: auto-commit off; after every poll that returned records a commitSync of the next offsets of
 *       what was read, also in onPartitionsRevoked (for the revoked partitions) and before close. Without
 *       --commit nothing is committed.
 *   committed --bootstrap B --group G --topic T --partitions N
 *       Prints {"partition": P, "offset": O|null} for P in 0..N: the group's committed offsets
 *       (Admin.listConsumerGroupOffsets), null where none.
 *   commit --bootstrap B --group G --topic T --offsets P=O,P=O...
 *       Commits those offsets for the group with a consumer that does not subscribe (the group must have no
 *       members), and prints {"partition": P, "offset": O} per committed offset.
 */
package weir.peer;

import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** The peer's entry point: one subcommand per run (see the file's header). */
public final class Main {
    private Main() {}

    /** Data goes here, flushed explicitly. */
    private static final PrintStream OUT =
            new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);

    /** A failure to report on stderr with exit status {@code status}. */
    static final class Fail extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final int status;

        Fail(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    public static void main(String[] argv) {
        // Logging must never reach stdout.
        System.setOut(System.err);
        int status = 0;
        try {
            if (argv.length == 0) {
                throw new Fail(1, "usage: SUBCOMMAND [--option value]... (produce, produce-txn, consume, partition, member, committed, commit)");
            }
            Args args = new Args(argv);
            switch (argv[0]) {
                case "produce" -> produce(args);
                case "produce-txn" -> produceTxn(args);
                case "consume" -> consume(args);
                case "partition" -> partition(args);
                case "member" -> member(args);
                case "committed" -> committed(args);
                case "commit" -> commit(args);
                case "latency" -> Latency.latency(args);
                case "bench-produce" -> Bench.produce(args);
                case "bench-consume" -> Bench.consume(args);
                default -> throw new Fail(1, "unknown subcommand " + argv[0]);
            }
        } catch (Fail f) {
            System.err.println("java-peer: " + f.getMessage());
            status = f.status;
        } catch (Throwable t) {
            System.err.print("java-peer: ");
            t.printStackTrace(System.err);
            status = 1;
        }
        OUT.flush();
        System.err.flush();
        // Exit at once: no client thread may keep the JVM alive.
        Runtime.getRuntime().halt(status);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Subcommands

    static void produce(Args args) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        String acks = args.optional("acks", "all");
        p.put(ProducerConfig.ACKS_CONFIG, acks);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(acks.equals("all") || acks.equals("-1")));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args.optional("compression", "none"));
        String linger = args.optional("linger-ms", null);
        if (linger != null) {
            p.put(ProducerConfig.LINGER_MS_CONFIG, linger);
        }
        args.applyConfig(p);
        String topic = args.required("topic");

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        BufferedReader in = stdin();
        String line;
        int n = 0;
        while ((line = in.readLine()) != null) {
            n++;
            if (line.isBlank()) {
                continue;
            }
            records.add(record(topic, Json.object(Json.parse(line), "record on line " + n), n));
        }

        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (ProducerRecord<byte[], byte[]> r : records) {
                sent.add(producer.send(r));
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata m;
                try {
                    m = sent.get(i).get(60, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    throw new Fail(1, "record " + i + " was not delivered: " + e.getCause());
                }
                OUT.println(ack(m));
            }
        }
        OUT.flush();
    }

    /** One line of produce-txn's input: a control ({@code txn} set) or a record. */
    record TxnStep(int line, String txn, ProducerRecord<byte[], byte[]> record) {}

    static void produceTxn(Args args) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args.required("transactional-id"));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args.optional("compression", "none"));
        args.applyConfig(p);
        String topic = args.required("topic");

        // All of stdin first: a bad line fails before anything is sent.
        List<TxnStep> steps = new ArrayList<>();
        BufferedReader in = stdin();
        String line;
        int n = 0;
        while ((line = in.readLine()) != null) {
            n++;
            if (line.isBlank()) {
                continue;
            }
            Map<String, Object> m = Json.object(Json.parse(line), "line " + n);
            if (m.containsKey("txn")) {
                Object t = m.get("txn");
                if (m.size() != 1 || !(t instanceof String ts) || !List.of("begin", "commit", "abort").contains(ts)) {
                    throw new Fail(1, "line " + n + ": a control line is {\"txn\": \"begin\"|\"commit\"|\"abort\"}, got " + line);
                }
                steps.add(new TxnStep(n, ts, null));
            } else {
                steps.add(new TxnStep(n, null, record(topic, m, n)));
            }
        }

        // Not try-with-resources: a transaction still open at EOF must stay open, and close() would abort it.
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
        try {
            producer.initTransactions();
        } catch (RuntimeException e) {
            throw new Fail(1, "initTransactions failed: " + describe(e));
        }
        // The records sent in the open transaction (and the lines they came from), not yet acknowledged.
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        List<Integer> sentLines = new ArrayList<>();
        boolean open = false;
        for (TxnStep step : steps) {
            String what = "line " + step.line() + " (" + (step.txn() == null ? "a record" : step.txn()) + ")";
            try {
                if (step.txn() == null) {
                    sent.add(producer.send(step.record()));
                    sentLines.add(step.line());
                    continue;
                }
                switch (step.txn()) {
                    case "begin" -> {
                        producer.beginTransaction();
                        open = true;
                    }
                    case "commit" -> {
                        producer.commitTransaction(); // flushes first
                        open = false;
                        printAcks(sent, sentLines);
                        OUT.println("{\"txn\": \"committed\"}");
                    }
                    default -> {
                        // Flushed first, so the aborted records are in the log (and acknowledged) like committed ones.
                        producer.flush();
                        printAcks(sent, sentLines);
                        producer.abortTransaction();
                        open = false;
                        OUT.println("{\"txn\": \"aborted\"}");
                    }
                }
                OUT.flush();
            } catch (Fail f) {
                throw f;
            } catch (RuntimeException e) {
                throw new Fail(1, what + " failed: " + describe(e));
            }
        }
        if (open) {
            // EOF inside a transaction: its records go to the log, the transaction stays open (no close(), which
            // would abort it) until the coordinator times it out or another producer with this id fences it.
            producer.flush();
            printAcks(sent, sentLines);
            OUT.flush();
            return;
        }
        // (Nothing is left in sent: send() outside a transaction throws.)
        producer.close(Duration.ofSeconds(30));
    }

    /** Prints the acknowledgement of each of {@code sent} in order, then clears both lists. */
    static void printAcks(List<Future<RecordMetadata>> sent, List<Integer> lines) throws Exception {
        for (int i = 0; i < sent.size(); i++) {
            RecordMetadata m;
            try {
                m = sent.get(i).get(60, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                throw new Fail(1, "the record on line " + lines.get(i) + " was not delivered: " + describe(e.getCause()));
            }
            OUT.println(ack(m));
        }
        sent.clear();
        lines.clear();
    }

    /** {"partition": P, "offset": O, "timestamp": MS}. */
    static String ack(RecordMetadata m) {
        return "{\"partition\": " + m.partition() + ", \"offset\": " + m.offset() + ", \"timestamp\": " + m.timestamp() + "}";
    }

    /** An exception and its causes, on one line. */
    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder(String.valueOf(t));
        Throwable c = t.getCause();
        for (int depth = 0; c != null && depth < 8; depth++, c = c.getCause()) {
            sb.append(" (caused by ").append(c).append(')');
        }
        return sb.toString();
    }

    static void consume(Args args) {
        String topic = args.required("topic");
        long count = Long.parseLong(args.required("count"));
        long timeoutMs = Long.parseLong(args.optional("timeout-ms", "30000"));
        String group = args.optional("group", null);
        Properties p = consumerProps(args);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        }
        args.applyConfig(p);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long seen = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            if (group == null) {
                List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
                if (infos == null || infos.isEmpty()) {
                    throw new Fail(1, "no partitions for topic " + topic);
                }
                List<TopicPartition> tps = new ArrayList<>();
                for (PartitionInfo info : infos) {
                    tps.add(new TopicPartition(topic, info.partition()));
                }
                consumer.assign(tps);
                consumer.seekToBeginning(tps);
            } else {
                consumer.subscribe(List.of(topic));
            }
            StringBuilder sb = new StringBuilder();
            while (seen < count) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    OUT.flush();
                    throw new Fail(2, "timed out after " + timeoutMs + " ms with " + seen + " of " + count + " records");
                }
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofNanos(Math.min(left, 100_000_000L)));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (seen == count) {
                        break;
                    }
                    seen++;
                    sb.setLength(0);
                    sb.append("{\"partition\": ").append(r.partition())
                            .append(", \"offset\": ").append(r.offset())
                            .append(", \"key\": ").append(Json.b64(r.key()))
                            .append(", \"value\": ").append(Json.b64(r.value()))
                            .append(", \"headers\": [");
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) {
                            sb.append(", ");
                        }
                        first = false;
                        sb.append('[').append(Json.str(h.key())).append(", ").append(Json.b64(h.value())).append(']');
                    }
                    sb.append("], \"timestamp\": ").append(r.timestamp())
                            .append(", \"timestamp_type\": ").append(Json.str(r.timestampType().name))
                            .append('}');
                    OUT.println(sb);
                }
            }
            OUT.flush();
            if (group != null) {
                consumer.commitSync();
            }
        }
    }

    static void partition(Args args) throws Exception {
        int n = Integer.parseInt(args.required("partitions"));
        BufferedReader in = stdin();
        String line;
        while ((line = in.readLine()) != null) {
            byte[] key = Base64.getDecoder().decode(line.strip());
            OUT.println(BuiltInPartitioner.partitionForKey(key, n));
        }
        OUT.flush();
    }

    static void member(Args args) throws Exception {
        String topic = args.required("topic");
        boolean commit = args.flag("commit");
        String assignor = switch (args.required("assignor")) {
            case "range" -> RangeAssignor.class.getName();
            case "roundrobin" -> RoundRobinAssignor.class.getName();
            case "sticky" -> StickyAssignor.class.getName();
            case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
            default -> throw new Fail(1, "unknown assignor " + args.required("assignor"));
        };
        Properties p = consumerProps(args);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args.required("group"));
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        args.applyConfig(p);

        AtomicBoolean eof = new AtomicBoolean(false);
        Thread stdinWatch = new Thread(() -> {
            try {
                byte[] buf = new byte[256];
                while (System.in.read(buf) >= 0) {
                    // Lines are ignored; only EOF matters.
                }
            } catch (Exception e) {
                // Treat a broken stdin as EOF.
            }
            eof.set(true);
        }, "stdin-watch");
        stdinWatch.setDaemon(true);
        stdinWatch.start();

        // Next offsets of what was read and not yet committed.
        Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    if (commit) {
                        Map<TopicPartition, OffsetAndMetadata> mine = new HashMap<>();
                        for (TopicPartition tp : partitions) {
                            OffsetAndMetadata o = pending.get(tp);
                            if (o != null) {
                                mine.put(tp, o);
                            }
                        }
                        commitPending(consumer, mine);
                        pending.keySet().removeAll(partitions);
                    }
                    event("revoked", partitions);
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    event("assigned", partitions);
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    pending.keySet().removeAll(partitions);
                    event("lost", partitions);
                }
            });
            StringBuilder sb = new StringBuilder();
            while (!eof.get()) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(20));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    sb.setLength(0);
                    sb.append("{\"event\": \"record\", \"partition\": ").append(r.partition())
                            .append(", \"offset\": ").append(r.offset())
                            .append(", \"value\": ").append(Json.b64(r.value())).append('}');
                    OUT.println(sb);
                    pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                OUT.flush();
                if (commit && !pending.isEmpty()) {
                    pending.keySet().retainAll(consumer.assignment());
                    if (commitPending(consumer, new HashMap<>(pending))) {
                        pending.clear();
                    }
                }
            }
            if (commit && !pending.isEmpty()) {
                pending.keySet().retainAll(consumer.assignment());
                commitPending(consumer, new HashMap<>(pending));
            }
        }
        OUT.println("{\"event\": \"closed\"}");
        OUT.flush();
    }

    /** commitSync of {@code offsets}, reported as an event; whether it succeeded. */
    static boolean commitPending(KafkaConsumer<byte[], byte[]> consumer, Map<TopicPartition, OffsetAndMetadata> offsets) {
        if (offsets.isEmpty()) {
            return true;
        }
        try {
            consumer.commitSync(offsets);
        } catch (RuntimeException e) {
            OUT.println("{\"event\": \"commit_failed\", \"error\": " + Json.str(e.toString()) + "}");
            OUT.flush();
            return false;
        }
        StringBuilder sb = new StringBuilder("{\"event\": \"committed\", \"offsets\": [");
        boolean first = true;
        for (Map.Entry<Integer, Long> e : byPartition(offsets).entrySet()) {
            if (!first) {
                sb.append(", ");
            }
            first = false;
            sb.append('[').append(e.getKey()).append(", ").append(e.getValue()).append(']');
        }
        OUT.println(sb.append("]}"));
        OUT.flush();
        return true;
    }

    static Map<Integer, Long> byPartition(Map<TopicPartition, OffsetAndMetadata> offsets) {
        Map<Integer, Long> m = new TreeMap<>();
        offsets.forEach((tp, o) -> m.put(tp.partition(), o.offset()));
        return m;
    }

    static void event(String name, Collection<TopicPartition> partitions) {
        List<Integer> ps = new ArrayList<>();
        for (TopicPartition tp : partitions) {
            ps.add(tp.partition());
        }
        ps.sort(null);
        StringBuilder sb = new StringBuilder("{\"event\": ").append(Json.str(name)).append(", \"partitions\": [");
        for (int i = 0; i < ps.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(ps.get(i));
        }
        OUT.println(sb.append("]}"));
        OUT.flush();
    }

    static void committed(Args args) throws Exception {
        String group = args.required("group");
        String topic = args.required("topic");
        int n = Integer.parseInt(args.required("partitions"));
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        args.applyConfig(p);
        try (Admin admin = Admin.create(p)) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            for (int i = 0; i < n; i++) {
                OffsetAndMetadata o = offsets.get(new TopicPartition(topic, i));
                OUT.println("{\"partition\": " + i + ", \"offset\": " + (o == null ? "null" : Long.toString(o.offset())) + "}");
            }
        }
        OUT.flush();
    }

    static void commit(Args args) {
        String topic = args.required("topic");
        Map<TopicPartition, OffsetAndMetadata> offsets = new LinkedHashMap<>();
        for (String item : args.required("offsets").split(",")) {
            if (item.isBlank()) {
                continue;
            }
            String[] po = item.split("=", 2);
            if (po.length != 2) {
                throw new Fail(1, "--offsets wants P=O,P=O..., got " + item);
            }
            offsets.put(new TopicPartition(topic, Integer.parseInt(po[0].strip())),
                    new OffsetAndMetadata(Long.parseLong(po[1].strip())));
        }
        Properties p = consumerProps(args);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args.required("group"));
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        args.applyConfig(p);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.commitSync(offsets, Duration.ofSeconds(30));
        }
        offsets.forEach((tp, o) -> OUT.println("{\"partition\": " + tp.partition() + ", \"offset\": " + o.offset() + "}"));
        OUT.flush();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Helpers

    static Properties consumerProps(Args args) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.required("bootstrap"));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return p;
    }

    /** A record from produce's input object {@code r} (line {@code n}) for {@code topic}. */
    static ProducerRecord<byte[], byte[]> record(String topic, Map<String, Object> r, int n) {
        Long partition = Json.optLong(r, "partition");
        Long ts = Json.optLong(r, "timestamp");
        List<Header> headers = new ArrayList<>();
        Object hs = r.get("headers");
        if (hs != null) {
            for (Object h : Json.array(hs, "headers on line " + n)) {
                List<Object> kv = Json.array(h, "a header on line " + n);
                if (kv.size() != 2 || !(kv.get(0) instanceof String)) {
                    throw new Fail(1, "a header must be [\"key\", base64|null], line " + n);
                }
                headers.add(new RecordHeader((String) kv.get(0), b64(kv.get(1))));
            }
        }
        return new ProducerRecord<>(topic, partition == null ? null : partition.intValue(), ts,
                b64(r.get("key")), b64(r.get("value")), headers);
    }

    static BufferedReader stdin() {
        return new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    }

    static byte[] b64(Object v) {
        if (v == null) {
            return null;
        }
        if (!(v instanceof String s)) {
            throw new Fail(1, "expected a base64 string or null, got " + v);
        }
        return Base64.getDecoder().decode(s);
    }

    /** {@code --name value} options (repeatable), {@code --flag}s, after the subcommand. */
    static final class Args {
        private final Map<String, List<String>> values = new HashMap<>();
        private static final List<String> FLAGS = List.of("commit");

        Args(String[] argv) {
            for (int i = 1; i < argv.length; i++) {
                String a = argv[i];
                if (!a.startsWith("--")) {
                    throw new Fail(1, "unexpected argument " + a);
                }
                String name = a.substring(2);
                if (FLAGS.contains(name)) {
                    values.computeIfAbsent(name, k -> new ArrayList<>()).add("true");
                    continue;
                }
                if (i + 1 >= argv.length) {
                    throw new Fail(1, a + " needs a value");
                }
                values.computeIfAbsent(name, k -> new ArrayList<>()).add(argv[++i]);
            }
        }

        String required(String name) {
            List<String> v = values.get(name);
            if (v == null) {
                throw new Fail(1, "--" + name + " is required");
            }
            return v.get(v.size() - 1);
        }

        String optional(String name, String dflt) {
            List<String> v = values.get(name);
            return v == null ? dflt : v.get(v.size() - 1);
        }

        boolean flag(String name) {
            return values.containsKey(name);
        }

        void applyConfig(Properties p) {
            for (String kv : values.getOrDefault("config", List.of())) {
                String[] parts = kv.split("=", 2);
                if (parts.length != 2) {
                    throw new Fail(1, "--config wants KEY=VALUE, got " + kv);
                }
                p.put(parts[0], parts[1]);
            }
        }
    }

    /** Just enough JSON: parsing a line into maps, lists, strings, longs, doubles, booleans and null; quoting. */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json j = new Json(text);
            j.ws();
            Object v = j.value();
            j.ws();
            if (j.i != text.length()) {
                throw j.error("trailing characters");
            }
            return v;
        }

        @SuppressWarnings("unchecked")
        static Map<String, Object> object(Object v, String what) {
            if (!(v instanceof Map)) {
                throw new Fail(1, what + ": expected a JSON object");
            }
            return (Map<String, Object>) v;
        }

        @SuppressWarnings("unchecked")
        static List<Object> array(Object v, String what) {
            if (!(v instanceof List)) {
                throw new Fail(1, what + ": expected a JSON array");
            }
            return (List<Object>) v;
        }

        static Long optLong(Map<String, Object> m, String key) {
            Object v = m.get(key);
            if (v == null) {
                return null;
            }
            if (!(v instanceof Long l)) {
                throw new Fail(1, key + ": expected an integer, got " + v);
            }
            return l;
        }

        static String b64(byte[] b) {
            return b == null ? "null" : "\"" + Base64.getEncoder().encodeToString(b) + "\"";
        }

        static String str(String v) {
            StringBuilder sb = new StringBuilder("\"");
            for (int k = 0; k < v.length(); k++) {
                char c = v.charAt(k);
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            sb.append(String.format("\\u%04x", (int) c));
                        } else {
                            sb.append(c);
                        }
                    }
                }
            }
            return sb.append('"').toString();
        }

        private Fail error(String what) {
            return new Fail(1, "bad JSON at character " + i + ": " + what + ": " + s);
        }

        private void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private Object value() {
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{': {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    ws();
                    if (peek('}')) {
                        return m;
                    }
                    while (true) {
                        ws();
                        if (i >= s.length() || s.charAt(i) != '"') {
                            throw error("expected a key");
                        }
                        String k = string();
                        ws();
                        expect(':');
                        ws();
                        m.put(k, value());
                        ws();
                        if (peek('}')) {
                            return m;
                        }
                        expect(',');
                    }
                }
                case '[': {
                    i++;
                    List<Object> l = new ArrayList<>();
                    ws();
                    if (peek(']')) {
                        return l;
                    }
                    while (true) {
                        ws();
                        l.add(value());
                        ws();
                        if (peek(']')) {
                            return l;
                        }
                        expect(',');
                    }
                }
                case '"':
                    return string();
                default:
                    if (s.startsWith("null", i)) {
                        i += 4;
                        return null;
                    }
                    if (s.startsWith("true", i)) {
                        i += 4;
                        return Boolean.TRUE;
                    }
                    if (s.startsWith("false", i)) {
                        i += 5;
                        return Boolean.FALSE;
                    }
                    int start = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                        i++;
                    }
                    String num = s.substring(start, i);
                    if (num.isEmpty()) {
                        throw error("unexpected character");
                    }
                    try {
                        return num.contains(".") || num.contains("e") || num.contains("E")
                                ? (Object) Double.parseDouble(num) : (Object) Long.parseLong(num);
                    } catch (NumberFormatException e) {
                        throw error("bad number " + num);
                    }
            }
        }

        private boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) {
                i++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            if (!peek(c)) {
                throw error("expected '" + c + "'");
            }
        }

        private String string() {
            i++; // the opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'u' -> {
                        if (i + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> throw error("bad escape \\" + e);
                }
            }
        }
    }
}
