/*
 * A connection probe with Apache Kafka's own Java client, for checking secure listeners (TLS, SASL, ACLs) of the
 * harness's clusters without weir. Run with the JDK's single-file launcher, on the broker's jars:
 *
 *     java -cp '$REPO/.kafka/lib/*' crates/weir-testkit/java/Probe.java STEP [-- STEP]...
 *
 * A STEP is an action followed by KEY=VALUE tokens: client properties (a VALUE "@PATH" is replaced by the file's
 * content, e.g. ssl.keystore.key=@client-key-encrypted.pem), and the action's own arguments, prefixed "probe.":
 *
 *   topics                                   Admin.listTopics: the topic names the principal may describe
 *   produce      probe.topic=T [probe.partition=P]
 *                                            one record ("probe") to T (partition P, else the partitioner's
 *                                            choice) with acks=all; prints PARTITION:OFFSET
 *   allow-write  probe.topic=T probe.principal=User:NAME
 *                                            Admin.createAcls: ALLOW WRITE and DESCRIBE on topic T from any host
 *   decrypt-key  probe.encrypted=@KEY probe.plain=@KEY probe.password=PW
 *                                            decrypts an encrypted PKCS#8 key with the JDK's own JCE (the PBES2
 *                                            cipher named by its parameters; Kafka's PEM keystore cannot, on Java
 *                                            17: JDK-8231581), checks it equals the plain key and parses as EC;
 *                                            prints the cipher's name
 *
 * Any step takes probe.attempts=N (default 1): retry a failing action up to N times, 500 ms apart (for changes
 * such as new ACLs that reach the broker a moment after the call that made them returned).
 *
 * Each step prints one line on stdout: "PROBE OK <result>" or "PROBE FAIL <Exception> <- <cause> ...: <message>"
 * (the exception chain's simple class names, then the innermost message). Steps run in order in one JVM, each
 * with its own client; the exit status is 0 unless the arguments are malformed. Client logging (log4j2's default
 * configuration prints errors on stdout) is not prefixed with "PROBE".
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.AlgorithmParameters;
import java.security.KeyFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import javax.crypto.Cipher;
import javax.crypto.EncryptedPrivateKeyInfo;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringSerializer;

public class Probe {
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
            if (s.isEmpty()) {
                System.err.println("Probe: empty step");
                System.exit(64);
            }
            String action = s.get(0);
            Properties client = new Properties();
            Properties probe = new Properties();
            for (String kv : s.subList(1, s.size())) {
                int eq = kv.indexOf('=');
                if (eq <= 0) {
                    System.err.println("Probe: want KEY=VALUE, got " + kv);
                    System.exit(64);
                }
                String k = kv.substring(0, eq);
                String v = kv.substring(eq + 1);
                if (v.startsWith("@")) {
                    v = Files.readString(Path.of(v.substring(1)));
                }
                if (k.startsWith("probe.")) {
                    probe.setProperty(k.substring("probe.".length()), v);
                } else {
                    client.setProperty(k, v);
                }
            }
            int attempts = Integer.parseInt(probe.getProperty("attempts", "1"));
            String result = "";
            for (int i = 0; i < attempts; i++) {
                if (i > 0) {
                    Thread.sleep(500);
                }
                try {
                    result = "PROBE OK " + run(action, (Properties) client.clone(), probe);
                    break;
                } catch (Throwable t) {
                    result = "PROBE FAIL " + describe(t);
                }
            }
            System.out.println(result);
            System.out.flush();
        }
    }

    static String run(String action, Properties client, Properties probe) throws Exception {
        switch (action) {
            case "topics": {
                client.putIfAbsent("default.api.timeout.ms", "20000");
                client.putIfAbsent("request.timeout.ms", "10000");
                try (Admin admin = Admin.create(client)) {
                    return String.join(",", new TreeSet<>(admin.listTopics().names().get(30, TimeUnit.SECONDS)));
                }
            }
            case "produce": {
                String topic = need(probe, "topic");
                client.putIfAbsent("acks", "all");
                client.putIfAbsent("enable.idempotence", "false");
                client.putIfAbsent("max.block.ms", "20000");
                client.putIfAbsent("request.timeout.ms", "10000");
                client.putIfAbsent("delivery.timeout.ms", "20000");
                client.put("key.serializer", StringSerializer.class.getName());
                client.put("value.serializer", StringSerializer.class.getName());
                String part = probe.getProperty("partition");
                Integer partition = part == null ? null : Integer.valueOf(part);
                try (KafkaProducer<String, String> p = new KafkaProducer<>(client)) {
                    RecordMetadata m =
                            p.send(new ProducerRecord<>(topic, partition, null, "probe")).get(30, TimeUnit.SECONDS);
                    return m.partition() + ":" + m.offset();
                }
            }
            case "allow-write": {
                String topic = need(probe, "topic");
                String principal = need(probe, "principal");
                client.putIfAbsent("default.api.timeout.ms", "20000");
                client.putIfAbsent("request.timeout.ms", "10000");
                ResourcePattern pattern = new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL);
                List<AclBinding> acls = new ArrayList<>();
                for (AclOperation op : new AclOperation[] {AclOperation.WRITE, AclOperation.DESCRIBE}) {
                    acls.add(new AclBinding(pattern,
                            new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW)));
                }
                try (Admin admin = Admin.create(client)) {
                    admin.createAcls(acls).all().get(30, TimeUnit.SECONDS);
                    return "";
                }
            }
            case "decrypt-key": {
                EncryptedPrivateKeyInfo info = new EncryptedPrivateKeyInfo(pemBody(need(probe, "encrypted")));
                AlgorithmParameters params = info.getAlgParameters();
                // For PBES2 the JDK names the real scheme only here, e.g. PBEWithHmacSHA256AndAES_256.
                String alg = params.toString();
                SecretKeyFactory f = SecretKeyFactory.getInstance(alg);
                Cipher c = Cipher.getInstance(alg);
                c.init(Cipher.DECRYPT_MODE, f.generateSecret(new PBEKeySpec(need(probe, "password").toCharArray())),
                        params);
                PKCS8EncodedKeySpec spec = info.getKeySpec(c);
                if (!Arrays.equals(spec.getEncoded(), pemBody(need(probe, "plain")))) {
                    throw new IllegalStateException("the decrypted key differs from the plain one");
                }
                KeyFactory.getInstance("EC").generatePrivate(spec);
                return alg;
            }
            default:
                throw new IllegalArgumentException("unknown action " + action);
        }
    }

    /** The DER inside the first PEM block of `pem`. */
    static byte[] pemBody(String pem) {
        StringBuilder b = new StringBuilder();
        boolean in = false;
        for (String line : pem.split("\\R")) {
            if (line.startsWith("-----BEGIN")) {
                in = true;
            } else if (line.startsWith("-----END")) {
                break;
            } else if (in) {
                b.append(line.trim());
            }
        }
        return Base64.getDecoder().decode(b.toString());
    }

    static String need(Properties probe, String key) {
        String v = probe.getProperty(key);
        if (v == null) {
            throw new IllegalArgumentException("missing probe." + key);
        }
        return v;
    }

    /** "Outer <- Cause <- Root: root message" (simple class names; one line). */
    static String describe(Throwable t) {
        StringBuilder b = new StringBuilder();
        Throwable last = t;
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (b.length() > 0) {
                b.append(" <- ");
            }
            b.append(c.getClass().getSimpleName());
            last = c;
            if (c.getCause() == c) {
                break;
            }
        }
        String msg = last.getMessage() != null ? last.getMessage() : t.getMessage();
        return b + ": " + String.valueOf(msg).replace('\n', ' ');
    }
}
