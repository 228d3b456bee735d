/*
 * What Apache Kafka's own Java Admin client sees of consumer groups, for comparing weir's group admin with it
 * (crates/weir/tests/admin_groups.rs); and consumers of the KIP-848 consumer protocol to make such a group. Run
 * with the JDK's single-file launcher on the broker's jars:
 *
 *     java -cp '$REPO/.kafka/lib/*' crates/weir/tests/java/AdminGroups.java STEP [-- STEP]...
 *
 * Admin steps (each with its own Admin client; steps run in order in one JVM):
 *
 *   list      BOOTSTRAP                  Admin.listGroups(): every group
 *       AG group ID type=TYPE state=STATE protocol=PROTOCOL_TYPE
 *   describe  BOOTSTRAP GROUP...         Admin.describeConsumerGroups()
 *       AG group ID type=TYPE state=STATE assignor=ASSIGNOR coordinator=NODE members=N
 *                groupEpoch=E|- targetEpoch=E|-
 *       AG member ID MEMBER_ID client=CLIENT_ID host=HOST instance=ID|- epoch=E|- assignment=T-P,...
 *                target=T-P,...|-
 *       AG error ID EXCEPTION               (the group's own failure)
 *   offsets   BOOTSTRAP GROUP            Admin.listConsumerGroupOffsets()
 *       AG offset GROUP TOPIC-PARTITION OFFSET
 *   producers BOOTSTRAP TOPIC-PARTITION...  Admin.describeProducers()
 *       AG producer TOPIC-PARTITION id=ID epoch=E lastSequence=S lastTimestamp=T coordinatorEpoch=E|-
 *                txnStartOffset=O|-
 *
 * Lines are sorted within a step (members by member id, offsets and producers by partition); every step ends with
 * "AG done STEP". Values are never empty ("-" stands for none; the empty assignment is "-" too).
 *
 * Consumer step (the only step of its JVM):
 *
 *   consumers BOOTSTRAP GROUP TOPIC N    N KafkaConsumers with group.protocol=consumer, client ids
 *                                        GROUP-java-0.., subscribed to TOPIC, reading from the earliest offset and
 *                                        committing (commitSync) what each poll returned. Prints
 *       AG assigned CLIENT T-P,...|-      whenever a consumer's assignment changes
 *       AG committed CLIENT T-P=O,...     after each commit
 *                                        and, once stdin is closed, closes the consumers (leaving the group) and
 *                                        prints "AG closed".
 *
 * Client logging goes to stderr or is not prefixed with "AG"; the exit status is 0 unless a step fails (64:
 * malformed arguments; 1: an exception, printed on stderr).
 */

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.MemberAssignment;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class AdminGroups {
    public static void main(String[] args) throws Exception {
        List<List<String>> steps = new ArrayList<>();
        List<String> step = new ArrayList<>();
        for (String a : args) {
            if (a.equals("--")) {
                steps.add(step);
                step = new ArrayList<>();
            } else {
                step.add(a);
            }
        }
        steps.add(step);
        for (List<String> s : steps) {
            if (s.size() < 2) {
                System.err.println("AdminGroups: a step needs an action and a bootstrap address: " + s);
                System.exit(64);
            }
            String action = s.get(0);
            String bootstrap = s.get(1);
            List<String> rest = s.subList(2, s.size());
            switch (action) {
                case "list":
                    list(bootstrap);
                    break;
                case "describe":
                    describe(bootstrap, rest);
                    break;
                case "offsets":
                    offsets(bootstrap, one(rest));
                    break;
                case "producers":
                    producers(bootstrap, rest);
                    break;
                case "consumers":
                    if (rest.size() != 3 || steps.size() != 1) {
                        System.err.println("AdminGroups: consumers BOOTSTRAP GROUP TOPIC N, alone");
                        System.exit(64);
                    }
                    consumers(bootstrap, rest.get(0), rest.get(1), Integer.parseInt(rest.get(2)));
                    break;
                default:
                    System.err.println("AdminGroups: unknown action " + action);
                    System.exit(64);
            }
            fact("done " + action);
        }
    }

    static void fact(String line) {
        System.out.println("AG " + line);
        System.out.flush();
    }

    static String one(List<String> rest) {
        if (rest.size() != 1) {
            System.err.println("AdminGroups: expected one argument, got " + rest);
            System.exit(64);
        }
        return rest.get(0);
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("default.api.timeout.ms", "30000");
        p.put("request.timeout.ms", "10000");
        return Admin.create(p);
    }

    static <T> String orDash(Optional<T> v) {
        return v.map(String::valueOf).orElse("-");
    }

    static String partitions(Collection<TopicPartition> tps) {
        TreeSet<String> names = new TreeSet<>();
        for (TopicPartition tp : tps) {
            names.add(tp.topic() + "-" + tp.partition());
        }
        return names.isEmpty() ? "-" : String.join(",", names);
    }

    static void list(String bootstrap) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            TreeMap<String, String> lines = new TreeMap<>();
            for (GroupListing g : admin.listGroups().all().get(30, TimeUnit.SECONDS)) {
                lines.put(g.groupId(), "group " + g.groupId() + " type=" + orDash(g.type()) + " state="
                        + orDash(g.groupState()) + " protocol=" + (g.protocol().isEmpty() ? "-" : g.protocol()));
            }
            lines.values().forEach(AdminGroups::fact);
        }
    }

    static void describe(String bootstrap, List<String> groups) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            Map<String, KafkaFuture<ConsumerGroupDescription>> described =
                    admin.describeConsumerGroups(groups).describedGroups();
            for (String id : new TreeSet<>(groups)) {
                ConsumerGroupDescription d;
                try {
                    d = described.get(id).get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    fact("error " + id + " " + e.getCause().getClass().getSimpleName());
                    continue;
                }
                fact("group " + id + " type=" + d.type() + " state=" + d.groupState() + " assignor="
                        + (d.partitionAssignor().isEmpty() ? "-" : d.partitionAssignor()) + " coordinator="
                        + d.coordinator().id() + " members=" + d.members().size() + " groupEpoch="
                        + orDash(d.groupEpoch()) + " targetEpoch=" + orDash(d.targetAssignmentEpoch()));
                TreeMap<String, String> members = new TreeMap<>();
                for (MemberDescription m : d.members()) {
                    members.put(m.consumerId(), "member " + id + " " + m.consumerId() + " client=" + m.clientId()
                            + " host=" + m.host() + " instance=" + orDash(m.groupInstanceId()) + " epoch="
                            + orDash(m.memberEpoch()) + " assignment=" + partitions(m.assignment().topicPartitions())
                            + " target=" + m.targetAssignment().map(MemberAssignment::topicPartitions)
                                    .map(AdminGroups::partitions).orElse("-"));
                }
                members.values().forEach(AdminGroups::fact);
            }
        }
    }

    static void offsets(String bootstrap, String group) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            TreeMap<String, String> lines = new TreeMap<>();
            offsets.forEach((tp, o) -> {
                if (o != null) {
                    String name = tp.topic() + "-" + tp.partition();
                    lines.put(name, "offset " + group + " " + name + " " + o.offset());
                }
            });
            lines.values().forEach(AdminGroups::fact);
        }
    }

    static void producers(String bootstrap, List<String> partitions) throws Exception {
        List<TopicPartition> tps = new ArrayList<>();
        for (String p : partitions) {
            int dash = p.lastIndexOf('-');
            tps.add(new TopicPartition(p.substring(0, dash), Integer.parseInt(p.substring(dash + 1))));
        }
        try (Admin admin = admin(bootstrap)) {
            Map<TopicPartition, PartitionProducerState> states =
                    admin.describeProducers(tps).all().get(30, TimeUnit.SECONDS);
            TreeMap<String, String> lines = new TreeMap<>();
            states.forEach((tp, st) -> {
                for (ProducerState s : st.activeProducers()) {
                    String name = tp.topic() + "-" + tp.partition();
                    lines.put(name + "/" + s.producerId(), "producer " + name + " id=" + s.producerId() + " epoch="
                            + s.producerEpoch() + " lastSequence=" + s.lastSequence() + " lastTimestamp="
                            + s.lastTimestamp() + " coordinatorEpoch="
                            + (s.coordinatorEpoch().isPresent() ? s.coordinatorEpoch().getAsInt() : "-")
                            + " txnStartOffset="
                            + (s.currentTransactionStartOffset().isPresent()
                                    ? s.currentTransactionStartOffset().getAsLong() : "-"));
                }
            });
            lines.values().forEach(AdminGroups::fact);
        }
    }

    static void consumers(String bootstrap, String group, String topic, int n) throws Exception {
        List<KafkaConsumer<byte[], byte[]>> consumers = new ArrayList<>();
        List<String> clients = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("group.id", group);
            p.put("group.protocol", "consumer");
            p.put("client.id", group + "-java-" + i);
            p.put("auto.offset.reset", "earliest");
            p.put("enable.auto.commit", "false");
            p.put("key.deserializer", ByteArrayDeserializer.class.getName());
            p.put("value.deserializer", ByteArrayDeserializer.class.getName());
            KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p);
            c.subscribe(List.of(topic));
            consumers.add(c);
            clients.add(group + "-java-" + i);
        }
        // Stdin closing is the signal to leave.
        AtomicBoolean stop = new AtomicBoolean(false);
        Thread watcher = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // Discard input.
                }
            } catch (Exception e) {
                // Treated as closed.
            }
            stop.set(true);
        });
        watcher.setDaemon(true);
        watcher.start();
        List<String> assigned = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            assigned.add(null);
        }
        while (!stop.get()) {
            for (int i = 0; i < n; i++) {
                KafkaConsumer<byte[], byte[]> c = consumers.get(i);
                ConsumerRecords<byte[], byte[]> records = c.poll(java.time.Duration.ofMillis(100));
                String now = partitions(c.assignment());
                if (!now.equals(assigned.get(i))) {
                    assigned.set(i, now);
                    fact("assigned " + clients.get(i) + " " + now);
                }
                if (!records.isEmpty()) {
                    Map<TopicPartition, OffsetAndMetadata> next = new TreeMap<>(
                            (a, b) -> a.topic().equals(b.topic()) ? Integer.compare(a.partition(), b.partition())
                                    : a.topic().compareTo(b.topic()));
                    for (TopicPartition tp : records.partitions()) {
                        List<?> rs = records.records(tp);
                        next.put(tp, new OffsetAndMetadata(records.records(tp).get(rs.size() - 1).offset() + 1));
                    }
                    c.commitSync(next);
                    List<String> parts = new ArrayList<>();
                    next.forEach((tp, o) -> parts.add(tp.topic() + "-" + tp.partition() + "=" + o.offset()));
                    fact("committed " + clients.get(i) + " " + String.join(",", parts));
                }
            }
        }
        for (KafkaConsumer<byte[], byte[]> c : consumers) {
            c.close(CloseOptions.timeout(java.time.Duration.ofSeconds(20)));
        }
        fact("closed");
    }
}
