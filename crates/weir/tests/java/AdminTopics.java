/*
 * What Apache Kafka's own Java Admin client sees of the cluster, its topics and their configurations, one fact
 * per line, for weir's admin tests to compare with what weir sees (crates/weir/tests/admin_topics.rs). Run with
 * the JDK's single-file launcher, on the broker's jars:
 *
 *     java -cp '$REPO/.kafka/lib/*' crates/weir/tests/java/AdminTopics.java BOOTSTRAP STEP [-- STEP]...
 *
 * Steps (all run in one JVM, with one Admin client, in order):
 *
 *   cluster                        cluster id=ID controller=ID
 *                                  broker ID HOST:PORT rack=RACK|null               (one per broker)
 *   topics T...                    topic T id=ID internal=BOOL partitions=N       (or: topic T error=EXCEPTION)
 *                                  partition T P leader=ID|none replicas=1,2 isr=1,2
 *   configs topic|broker NAME      config NAME=VALUE|null source=S readOnly=B sensitive=B default=B type=T
 *                                          synonyms=S:NAME=VALUE|null,...       (one line per entry; or:
 *                                  configs error=EXCEPTION)
 *   alter topic|broker NAME OP...  altered                                         (or: alter error=EXCEPTION)
 *                                  OP: set:KEY=VALUE delete:KEY append:KEY=VALUE subtract:KEY=VALUE
 *   offsets T SPEC                 offset T P offset=O timestamp=TS                (SPEC: earliest, latest, a time)
 *   coordinator G                  coordinator found   (G's committed offsets read: finding its coordinator
 *                                                      creates the internal topic __consumer_offsets)
 *
 * Every fact is printed as "FACT <step index> <fact>"; the exit status is 0 unless the arguments are malformed.
 * Values are printed with "\n" for newlines, so that one fact is one line. Client logging (log4j2's default
 * configuration prints errors on stdout) is not prefixed with "FACT".
 */

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

public class AdminTopics {
    static int step = 0;

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: AdminTopics BOOTSTRAP STEP [-- STEP]...");
            System.exit(64);
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("default.api.timeout.ms", "30000");
        props.put("request.timeout.ms", "10000");
        List<List<String>> steps = new ArrayList<>();
        List<String> current = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--")) {
                steps.add(current);
                current = new ArrayList<>();
            } else {
                current.add(args[i]);
            }
        }
        steps.add(current);
        try (Admin admin = Admin.create(props)) {
            for (List<String> s : steps) {
                if (s.isEmpty()) {
                    System.err.println("AdminTopics: empty step");
                    System.exit(64);
                }
                run(admin, s.get(0), s.subList(1, s.size()));
                step++;
            }
        }
        System.out.flush();
    }

    static void fact(String f) {
        System.out.println("FACT " + step + " " + f);
    }

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    static String error(ExecutionException e) {
        return e.getCause().getClass().getSimpleName();
    }

    static String show(String value) {
        return value == null ? "null" : value.replace("\n", "\\n");
    }

    static String ids(List<Node> nodes) {
        return nodes.stream().map(n -> Integer.toString(n.id())).collect(Collectors.joining(","));
    }

    static ConfigResource resource(String type, String name) {
        switch (type) {
            case "topic":
                return new ConfigResource(ConfigResource.Type.TOPIC, name);
            case "broker":
                return new ConfigResource(ConfigResource.Type.BROKER, name);
            default:
                throw new IllegalArgumentException("resource type " + type);
        }
    }

    static void run(Admin admin, String action, List<String> a) throws Exception {
        switch (action) {
            case "cluster": {
                DescribeClusterResult c = admin.describeCluster();
                Node controller = get(c.controller());
                fact("cluster id=" + get(c.clusterId()) + " controller="
                        + (controller == null ? "none" : Integer.toString(controller.id())));
                Map<Integer, Node> nodes = new TreeMap<>();
                for (Node n : get(c.nodes())) {
                    nodes.put(n.id(), n);
                }
                for (Node n : nodes.values()) {
                    fact("broker " + n.id() + " " + n.host() + ":" + n.port() + " rack=" + show(n.rack()));
                }
                return;
            }
            case "topics": {
                Map<String, KafkaFuture<TopicDescription>> described =
                        admin.describeTopics(a).topicNameValues();
                for (String t : a) {
                    TopicDescription d;
                    try {
                        d = get(described.get(t));
                    } catch (ExecutionException e) {
                        fact("topic " + t + " error=" + error(e));
                        continue;
                    }
                    fact("topic " + t + " id=" + d.topicId() + " internal=" + d.isInternal() + " partitions="
                            + d.partitions().size());
                    for (TopicPartitionInfo p : d.partitions()) {
                        fact("partition " + t + " " + p.partition() + " leader="
                                + (p.leader() == null ? "none" : Integer.toString(p.leader().id()))
                                + " replicas=" + ids(p.replicas()) + " isr=" + ids(p.isr()));
                    }
                }
                return;
            }
            case "configs": {
                ConfigResource r = resource(a.get(0), a.get(1));
                Config config;
                try {
                    config = get(admin.describeConfigs(List.of(r), new DescribeConfigsOptions().includeSynonyms(true))
                            .values()
                            .get(r));
                } catch (ExecutionException e) {
                    fact("configs error=" + error(e));
                    return;
                }
                Map<String, ConfigEntry> sorted = new TreeMap<>();
                for (ConfigEntry e : config.entries()) {
                    sorted.put(e.name(), e);
                }
                for (ConfigEntry e : sorted.values()) {
                    String synonyms = e.synonyms().stream()
                            .map(y -> y.source() + ":" + y.name() + "=" + show(y.value()))
                            .collect(Collectors.joining(","));
                    fact("config " + e.name() + "=" + show(e.value()) + " source=" + e.source() + " readOnly="
                            + e.isReadOnly() + " sensitive=" + e.isSensitive() + " default=" + e.isDefault()
                            + " type=" + e.type() + " synonyms=" + synonyms);
                }
                return;
            }
            case "alter": {
                ConfigResource r = resource(a.get(0), a.get(1));
                List<AlterConfigOp> ops = new ArrayList<>();
                for (String op : a.subList(2, a.size())) {
                    int colon = op.indexOf(':');
                    String kind = op.substring(0, colon);
                    String kv = op.substring(colon + 1);
                    int eq = kv.indexOf('=');
                    String key = eq < 0 ? kv : kv.substring(0, eq);
                    String value = eq < 0 ? null : kv.substring(eq + 1);
                    AlterConfigOp.OpType type = AlterConfigOp.OpType.valueOf(kind.toUpperCase());
                    ops.add(new AlterConfigOp(new ConfigEntry(key, value), type));
                }
                Map<ConfigResource, Collection<AlterConfigOp>> changes = new HashMap<>();
                changes.put(r, ops);
                try {
                    get(admin.incrementalAlterConfigs(changes).all());
                    fact("altered");
                } catch (ExecutionException e) {
                    fact("alter error=" + error(e));
                }
                return;
            }
            case "offsets": {
                String topic = a.get(0);
                String spec = a.get(1);
                OffsetSpec s = spec.equals("earliest") ? OffsetSpec.earliest()
                        : spec.equals("latest") ? OffsetSpec.latest()
                        : OffsetSpec.forTimestamp(Long.parseLong(spec));
                int partitions = get(admin.describeTopics(List.of(topic)).topicNameValues().get(topic))
                        .partitions()
                        .size();
                Map<TopicPartition, OffsetSpec> asked = new HashMap<>();
                for (int p = 0; p < partitions; p++) {
                    asked.put(new TopicPartition(topic, p), s);
                }
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> found = get(admin.listOffsets(asked).all());
                for (int p = 0; p < partitions; p++) {
                    ListOffsetsResult.ListOffsetsResultInfo i = found.get(new TopicPartition(topic, p));
                    fact("offset " + topic + " " + p + " offset=" + i.offset() + " timestamp=" + i.timestamp());
                }
                return;
            }
            case "coordinator": {
                get(admin.listConsumerGroupOffsets(a.get(0)).partitionsToOffsetAndMetadata());
                fact("coordinator found");
                return;
            }
            default:
                throw new IllegalArgumentException("unknown action " + action);
        }
    }
}
