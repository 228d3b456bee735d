/*
 * rdk-latency: end-to-end latency at a fixed rate on librdkafka, produced and read back in one process, the method
 * of weir's `latency_vs_peers` bench for every client.
 *
 *   rdk-latency BROKERS TOPIC PARTITIONS RATE DURATION_MS WARMUP_MS RECORD_SIZE [KEY=VALUE...]
 *   rdk-latency --version      (prints the version of the librdkafka it runs on)
 *
 * KEY=VALUE pairs are librdkafka properties; a "consumer." or "producer." prefix sends one to that client only,
 * without a prefix it goes to both. The producer: acks=all, enable.idempotence=true unless overridden; linger.ms
 * etc. librdkafka's defaults unless given. The consumer: a second client (group.id set but no subscription, so no
 * group; auto commit off; auto.offset.reset earliest) with every partition assigned from the beginning (the topic is expected to be fresh),
 * read by its own thread with rd_kafka_consumer_poll(100 ms).
 *
 * Record i is due at origin + i/RATE. The main thread sleeps until then with clock_nanosleep (or not at all when
 * behind schedule), produces, and serves delivery reports with rd_kafka_poll(0); both latencies are measured from
 * the intended send time, so a stall delays the records behind it in the figures too (no coordinated omission).
 * Each value starts with a 24-byte big-endian header: the run's id, the record's number and its intended send time
 * (nanoseconds after the origin, CLOCK_MONOTONIC); 'x' fills the rest. The first WARMUP_MS*RATE/1000 records are
 * produced and read but not counted. Latency = time after the poll returned the record - intended send time.
 * After the last delivery report the reader gets 10 s to read every acknowledged record.
 *
 * Percentiles are exact (every measured latency kept and sorted; at most a few MB), the nearest-rank definition.
 * Prints one JSON object on stdout: librdkafka (rd_kafka_version_str), count, p50_ms, p90_ms, p99_ms, p999_ms,
 * max_ms (end to end), ack_p50_ms, ack_p99_ms, ack_max_ms (intended send -> delivery report), scheduled, acked,
 * failed, missing (scheduled records never read), duplicates, foreign (records of another run). Exit status 1 on
 * any failure, with a message on stderr. For diagnosis, RDK_LATENCY_STATS=FILE with producer.statistics.interval.ms=N
 * writes the producer's last statistics JSON (per-broker rtt, int_latency, outbuf_latency windows) to FILE.
 *
 * Built with the headers of Debian's librdkafka-dev (2.0.2) against the librdkafka 2.16 of the PyPI wheel: every
 * function called here has the same signature in both, and the shared object is found through the run path the
 * build sets (see weir_testkit::peers::rdk_driver).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define DRIVER_NAME "rdk-latency"
#include "driver.h"

#define HEADER_LEN 24
#define DRAIN_TIMEOUT_NS (10LL * 1000000000LL)

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Latencies in ns, appended by one thread each. */
struct samples {
    int64_t *v;
    size_t n;
};

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least q of the samples at or below it (sorted). */
static double quantile_ms(const struct samples *s, double q) {
    if (s->n == 0) {
        return 0.0;
    }
    size_t rank = (size_t)(q * (double)s->n + 0.999999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > s->n) {
        rank = s->n;
    }
    return (double)s->v[rank - 1] / 1e6;
}

/* The run. */
static uint64_t run_id;
static int64_t origin;
static uint64_t rate, warmup, total;
static rd_kafka_t *consumer;

/* The reader's state (its thread only, read by main after join). */
static unsigned char *seen;
static atomic_uint_least64_t received;
static uint64_t duplicates, foreign;
static struct samples e2e;
static atomic_uint_least64_t expected = UINT64_MAX;
static atomic_int stop_reading;
/* Set by the reader when it returns (done, or failed). */
static atomic_int reader_done;
static char reader_error[512];

static int64_t due_ns(uint64_t i) { return (int64_t)(i * 1000000000ULL / rate); }

static void read_records(void) {
    while (!atomic_load(&stop_reading) && received < atomic_load(&expected)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
        if (m == NULL) {
            continue;
        }
        int64_t now = mono_ns() - origin;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                snprintf(reader_error, sizeof reader_error, "%s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        const unsigned char *v = m->payload;
        uint64_t seq = 0;
        if (m->len < HEADER_LEN || get_u64(v) != run_id || (seq = get_u64(v + 8)) >= total) {
            foreign++;
        } else if (seen[seq]) {
            duplicates++;
        } else {
            seen[seq] = 1;
            atomic_fetch_add_explicit(&received, 1, memory_order_relaxed);
            if (seq >= warmup) {
                e2e.v[e2e.n++] = now - (int64_t)get_u64(v + 16);
            }
        }
        rd_kafka_message_destroy(m);
    }
}

static void *reader(void *arg) {
    (void)arg;
    read_records();
    atomic_store(&reader_done, 1);
    return NULL;
}

/* Delivery reports, served by rd_kafka_poll on the main thread. */
static uint64_t acked, failed;
static struct samples ack;
static char first_error[512];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    if (m->err) {
        if (failed++ == 0) {
            snprintf(first_error, sizeof first_error, "%s", rd_kafka_err2str(m->err));
        }
        return;
    }
    acked++;
    if (seq >= warmup) {
        ack.v[ack.n++] = mono_ns() - origin - due_ns(seq);
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", rd_kafka_version_str());
        return 0;
    }
    if (argc < 8) {
        die("usage: rdk-latency BROKERS TOPIC PARTITIONS RATE DURATION_MS WARMUP_MS RECORD_SIZE [KEY=VALUE...]");
    }
    const char *brokers = argv[1], *topic = argv[2];
    int partitions = (int)number(argv[3], "PARTITIONS");
    rate = number(argv[4], "RATE");
    uint64_t duration_ms = number(argv[5], "DURATION_MS"), warmup_ms = number(argv[6], "WARMUP_MS");
    size_t size = number(argv[7], "RECORD_SIZE");
    if (partitions <= 0 || rate == 0 || duration_ms == 0 || size < HEADER_LEN) {
        die("positive PARTITIONS, RATE, DURATION_MS and a RECORD_SIZE of at least 24 are required");
    }
    warmup = warmup_ms * rate / 1000;
    total = warmup + duration_ms * rate / 1000;

    rd_kafka_conf_t *pconf = rd_kafka_conf_new(), *cconf = rd_kafka_conf_new();
    set(pconf, "bootstrap.servers", brokers);
    set(pconf, "acks", "all");
    set(pconf, "enable.idempotence", "true");
    set(cconf, "bootstrap.servers", brokers);
    char group[128];
    snprintf(group, sizeof group, "rdk-latency-%d", (int)getpid());
    set(cconf, "group.id", group);
    set(cconf, "enable.auto.commit", "false");
    set(cconf, "enable.partition.eof", "false");
    /* The topic is fresh: were the start offset's lookup to fail, the reset must not skip to the end (the
     * default, latest), which loses the records produced before it (seen once as one missing warm-up record). */
    set(cconf, "auto.offset.reset", "earliest");
    for (int i = 8; i < argc; i++) {
        char *kv = strdup(argv[i]);
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            die("%s is not KEY=VALUE", argv[i]);
        }
        *eq = '\0';
        if (strncmp(kv, "producer.", 9) == 0) {
            set(pconf, kv + 9, eq + 1);
        } else if (strncmp(kv, "consumer.", 9) == 0) {
            set(cconf, kv + 9, eq + 1);
        } else {
            set(pconf, kv, eq + 1);
            set(cconf, kv, eq + 1);
        }
        free(kv);
    }
    rd_kafka_conf_set_dr_msg_cb(pconf, on_delivery);
    const char *stats_file = getenv("RDK_LATENCY_STATS");
    if (stats_file != NULL) {
        rd_kafka_conf_set_stats_cb(pconf, on_stats);
    }

    char err[512];
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
    if (producer == NULL) {
        die("producer: %s", err);
    }
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
    if (consumer == NULL) {
        die("consumer: %s", err);
    }
    rd_kafka_poll_set_consumer(consumer);

    /* The producer knows the topic (and is connected) before the schedule starts. */
    rd_kafka_topic_t *t = rd_kafka_topic_new(producer, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(producer, 0, t, &md, 30000);
    if (e) {
        die("metadata of %s: %s", topic, rd_kafka_err2str(e));
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);

    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(tps, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    e = rd_kafka_assign(consumer, tps);
    if (e) {
        die("assign: %s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(tps);

    seen = calloc(total, 1);
    e2e.v = malloc(sizeof(int64_t) * (total + 1));
    ack.v = malloc(sizeof(int64_t) * (total + 1));
    if (seen == NULL || e2e.v == NULL || ack.v == NULL) {
        die("out of memory");
    }
    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    run_id = ((uint64_t)seed.tv_nsec << 32) ^ (uint64_t)seed.tv_sec ^ ((uint64_t)getpid() << 16);

    origin = mono_ns();
    pthread_t reader_thread;
    if (pthread_create(&reader_thread, NULL, reader, NULL) != 0) {
        die("cannot start the reader thread");
    }
    unsigned char *value = malloc(size);
    memset(value, 'x', size);
    put_u64(value, run_id);
    for (uint64_t i = 0; i < total; i++) {
        int64_t due = due_ns(i), at = origin + due;
        if (mono_ns() < at) {
            struct timespec ts = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
        put_u64(value + 8, i);
        put_u64(value + 16, (uint64_t)due);
        for (;;) {
            e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(value, size),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i),
                                  RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            rd_kafka_poll(producer, 1); /* a full queue: serve delivery reports, then retry */
        }
        if (e) {
            die("produce: %s", rd_kafka_err2str(e));
        }
        rd_kafka_poll(producer, 0);
    }
    e = rd_kafka_flush(producer, 60000);
    if (e) {
        die("flush: %s", rd_kafka_err2str(e));
    }
    atomic_store(&expected, acked);
    int64_t deadline = mono_ns() + DRAIN_TIMEOUT_NS;
    while (mono_ns() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};
        if (atomic_load(&reader_done)) {
            break;
        }
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop_reading, 1);
    pthread_join(reader_thread, NULL);
    if (reader_error[0]) {
        die("reading: %s", reader_error);
    }
    if (failed) {
        fprintf(stderr, "rdk-latency: %" PRIu64 " records failed: %s\n", failed, first_error);
        return 1;
    }
    /* RDK_LATENCY_STATS=FILE: the producer's last statistics JSON (set statistics.interval.ms too). */
    write_stats(stats_file);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);

    qsort(e2e.v, e2e.n, sizeof(int64_t), cmp_i64);
    qsort(ack.v, ack.n, sizeof(int64_t), cmp_i64);
    printf("{\"client\":\"librdkafka\",\"librdkafka\":\"%s\",\"count\":%zu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,"
           "\"ack_max_ms\":%.3f,\"scheduled\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"missing\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"foreign\":%" PRIu64 "}\n",
           rd_kafka_version_str(), e2e.n, quantile_ms(&e2e, 0.5), quantile_ms(&e2e, 0.9), quantile_ms(&e2e, 0.99),
           quantile_ms(&e2e, 0.999), quantile_ms(&e2e, 1.0), quantile_ms(&ack, 0.5), quantile_ms(&ack, 0.99),
           quantile_ms(&ack, 1.0), total, acked, failed, total - received, duplicates, foreign);
    return 0;
}
