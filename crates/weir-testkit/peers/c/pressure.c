/*
 * rdk-pressure: the bounded-buffer workload weir exists for, on librdkafka. The same design as
 * peers/go/pressure.go (franz-go) and `fn pressure` in crates/weir/benches/vs_peers.rs (weir), point by point:
 * keep the three in step.
 *
 *   rdk-pressure --brokers B --topic T --partitions P --buffer N --resume-below M [--workers 8]
 *                [--duration-ms 10000] [--warmup-ms 1000] [--work-rounds 1] [--poll-max 1000]
 *                [--fetch-max-wait-ms 500] [KEY=VALUE...]
 *   rdk-pressure --version      (prints the version of the librdkafka it runs on)
 *
 * (pressure.go takes --duration and --warmup as Go durations; here they are --duration-ms and --warmup-ms.)
 *
 *   - no consumer group: one consumer handle (group.id set only because librdkafka's consumer queue needs one,
 *     never subscribed; enable.auto.commit and enable.auto.offset.store off; enable.partition.eof off;
 *     auto.offset.reset earliest, as pressure.go's ConsumeResetOffset(AtStart)) with every partition 0..P
 *     assigned by rd_kafka_assign at RD_KAFKA_OFFSET_BEGINNING; fetch.wait.max.ms = --fetch-max-wait-ms;
 *     everything else librdkafka's defaults, notably queued.max.messages.kbytes = 64 MiB of pre-fetched records
 *     in the consumer queue over all partitions, the same total as weir's default memory budget (64 MiB).
 *     KEY=VALUE pairs after the flags are further librdkafka properties;
 *   - the application keeps a buffer of at most --buffer records per partition: a partition whose buffer holds
 *     --buffer records or more is paused (one rd_kafka_pause_partitions call with a one-element list), and
 *     resumed (one rd_kafka_resume_partitions call) by the worker that drains it below --resume-below;
 *   - one poll loop on the main thread reads up to --poll-max records from the consumer queue
 *     (rd_kafka_queue_get_consumer), counts each partition's run of records into its buffer (pausing the full
 *     ones), and hands the records to the worker owning the partition (partition % workers), one batch per
 *     worker per poll over an unbounded mutex+condvar queue. A poll is rd_kafka_consume_batch_queue for one
 *     record with a 100 ms timeout, then again with timeout 0 for what else is queued (up to --poll-max in all):
 *     a single call with a timeout returns only when it has --poll-max records or the timeout has passed,
 *     whereas PollRecords and weir's poll return what there is as soon as there is something;
 *   - --workers threads process records: --work-rounds passes of 64-bit FNV-1a over the value each (the same
 *     function in all three programs), then take the processed records out of their partition's buffer and
 *     destroy them (rd_kafka_message_destroy);
 *   - a partition's count and paused flag live under its own mutex, held across librdkafka's pause or resume
 *     call, so that a pause and a resume of one partition cannot overtake each other;
 *   - each worker checks that every partition's offsets arrive in order without gaps or repeats (out_of_order).
 *
 * An error from the poll (a message with err set) other than RD_KAFKA_RESP_ERR__PARTITION_EOF is fatal. Counters
 * are read at --warmup-ms and at --duration-ms; rates are over that window. Prints one JSON object on stdout with
 * the keys pressure.go prints (client = "librdkafka " + rd_kafka_version_str()); exit status 1 on any failure,
 * with a message on stderr. For diagnosis, RDK_PRESSURE_STATS=FILE with statistics.interval.ms=N writes the
 * consumer's last statistics JSON to FILE (e.g. its rxmsgs, the records fetched, against records_total).
 *
 * Built with the headers of Debian's librdkafka-dev (2.0.2) against the librdkafka 2.16 of the PyPI wheel: every
 * function called here has the same signature in both, and the shared object is found through the run path the
 * build sets (see weir_testkit::peers::rdk_driver).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define DRIVER_NAME "rdk-pressure"
#include "driver.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

/* One partition's application buffer: its record count and whether the application paused it; the lock is held
 * across librdkafka's pause or resume call. `one` is the partition as a one-element list for those calls (used
 * under the lock only). Aligned to keep neighbours off one cache line. */
struct part {
    _Alignas(64) pthread_mutex_t mu;
    int64_t count;
    int paused;
    rd_kafka_topic_partition_list_t *one;
};

/* fnv_work is the per-record CPU work: rounds passes of 64-bit FNV-1a over v. */
static uint64_t fnv_work(const unsigned char *v, size_t len, int64_t rounds) {
    uint64_t h = 14695981039346656037ULL;
    for (int64_t r = 0; r < rounds; r++) {
        for (size_t i = 0; i < len; i++) {
            h ^= v[i];
            h *= 1099511628211ULL;
        }
    }
    return h;
}

/* A batch of records for one worker. */
struct batch {
    struct batch *next;
    size_t n;
    rd_kafka_message_t *m[];
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct batch *head, *tail;
    int closed;
};

static void queue_init(struct queue *q) {
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->head = q->tail = NULL;
    q->closed = 0;
}

static void queue_push(struct queue *q, struct batch *b) {
    b->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail == NULL) {
        q->head = b;
    } else {
        q->tail->next = b;
    }
    q->tail = b;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_signal(&q->cond);
}

/* The next batch, or NULL once the queue is closed (batches left in it are then the closer's to free). */
static struct batch *queue_pop(struct queue *q) {
    pthread_mutex_lock(&q->mu);
    while (q->head == NULL && !q->closed) {
        pthread_cond_wait(&q->cond, &q->mu);
    }
    struct batch *b = NULL;
    if (!q->closed) {
        b = q->head;
        q->head = b->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

static void queue_close(struct queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_mutex_unlock(&q->mu);
    pthread_cond_broadcast(&q->cond);
}

/* The run. */
static rd_kafka_t *rk;
static int partitions, workers;
static int64_t buffer, resume_below, rounds;
static struct part *parts;
static atomic_int_least64_t delivered, pauses, resumes, disorder;
static atomic_uint_least64_t sink;
static atomic_int stop;
static int64_t *per_part; /* records processed per partition (each written by one worker) */
static int64_t *next_off; /* expected next offset per partition (each owned by one worker) */

/* rd_kafka_pause_partitions or rd_kafka_resume_partitions on one partition; any error is fatal. */
static void pause_resume(int p, int pause) {
    rd_kafka_topic_partition_list_t *one = parts[p].one;
    one->elems[0].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(rk, one) : rd_kafka_resume_partitions(rk, one);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = one->elems[0].err;
    }
    if (e) {
        die("%s partition %d: %s", pause ? "pause" : "resume", p, rd_kafka_err2str(e));
    }
}

static void *worker(void *arg) {
    struct queue *q = arg;
    uint64_t acc = 0;
    struct batch *b;
    while ((b = queue_pop(q)) != NULL) {
        /* Records of one partition are contiguous in a poll: settle each run at once. */
        for (size_t i = 0; i < b->n;) {
            int p = (int)b->m[i]->partition;
            size_t j = i;
            for (; j < b->n && b->m[j]->partition == p; j++) {
                const rd_kafka_message_t *r = b->m[j];
                acc += fnv_work(r->payload, r->len, rounds);
                if (r->offset != next_off[p]) {
                    atomic_fetch_add_explicit(&disorder, 1, memory_order_relaxed);
                }
                next_off[p] = r->offset + 1;
            }
            int64_t n = (int64_t)(j - i);
            if (!atomic_load_explicit(&stop, memory_order_relaxed)) {
                per_part[p] += n;
                atomic_fetch_add_explicit(&delivered, n, memory_order_relaxed);
                struct part *ps = &parts[p];
                pthread_mutex_lock(&ps->mu);
                ps->count -= n;
                if (ps->paused && ps->count < resume_below) {
                    ps->paused = 0;
                    pause_resume(p, 0);
                    atomic_fetch_add_explicit(&resumes, 1, memory_order_relaxed);
                }
                pthread_mutex_unlock(&ps->mu);
            }
            for (; i < j; i++) {
                rd_kafka_message_destroy(b->m[i]);
            }
        }
        free(b);
    }
    atomic_fetch_add_explicit(&sink, acc, memory_order_relaxed);
    return NULL;
}

/* Up to max records (or errors) from the consumer queue: waits up to 100 ms for the first, then takes what else
 * is queued without waiting. */
static size_t poll_records(rd_kafka_queue_t *cq, rd_kafka_message_t **msgs, size_t max) {
    ssize_t n = rd_kafka_consume_batch_queue(cq, 100, msgs, 1);
    if (n < 0) {
        die("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
    }
    if (n == 0 || max == 1) {
        return (size_t)n;
    }
    ssize_t more = rd_kafka_consume_batch_queue(cq, 0, msgs + 1, max - 1);
    if (more < 0) {
        die("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
    }
    return 1 + (size_t)more;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", rd_kafka_version_str());
        return 0;
    }
    const char *brokers = NULL, *topic = NULL;
    int64_t nparts = 0, nworkers = 8, duration_ms = 10000, warmup_ms = 1000, poll_max = 1000, max_wait = 500;
    rounds = 1;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *flag = argv[i];
        if (i + 1 >= argc) {
            die("%s needs a value", flag);
        }
        const char *v = argv[i + 1];
        if (strcmp(flag, "--brokers") == 0) {
            brokers = v;
        } else if (strcmp(flag, "--topic") == 0) {
            topic = v;
        } else if (strcmp(flag, "--partitions") == 0) {
            nparts = number(v, flag);
        } else if (strcmp(flag, "--workers") == 0) {
            nworkers = number(v, flag);
        } else if (strcmp(flag, "--buffer") == 0) {
            buffer = number(v, flag);
        } else if (strcmp(flag, "--resume-below") == 0) {
            resume_below = number(v, flag);
        } else if (strcmp(flag, "--duration-ms") == 0) {
            duration_ms = number(v, flag);
        } else if (strcmp(flag, "--warmup-ms") == 0) {
            warmup_ms = number(v, flag);
        } else if (strcmp(flag, "--work-rounds") == 0) {
            rounds = number(v, flag);
        } else if (strcmp(flag, "--poll-max") == 0) {
            poll_max = number(v, flag);
        } else if (strcmp(flag, "--fetch-max-wait-ms") == 0) {
            max_wait = number(v, flag);
        } else {
            die("unknown flag %s", flag);
        }
    }
    if (brokers == NULL || topic == NULL || nparts <= 0 || nparts > INT32_MAX || buffer <= 0 || resume_below <= 0 ||
        resume_below > buffer) {
        die("--brokers, --topic, --partitions, --buffer and --resume-below (<= --buffer) are required");
    }
    /* number() has refused negative values already. */
    if (nworkers <= 0 || nworkers > 4096 || poll_max <= 0 || duration_ms <= warmup_ms) {
        die("positive --workers and --poll-max, and --duration-ms > --warmup-ms >= 0 are required");
    }
    partitions = (int)nparts;
    workers = (int)nworkers;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", brokers);
    char group[128];
    snprintf(group, sizeof group, "rdk-pressure-%d", (int)getpid());
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "enable.partition.eof", "false");
    set(conf, "auto.offset.reset", "earliest");
    char wait_ms[32];
    snprintf(wait_ms, sizeof wait_ms, "%" PRId64, max_wait);
    set(conf, "fetch.wait.max.ms", wait_ms);
    for (; i < argc; i++) {
        char *kv = strdup(argv[i]);
        char *eq = kv == NULL ? NULL : strchr(kv, '=');
        if (eq == NULL) {
            die("%s is not KEY=VALUE (flags come first)", argv[i]);
        }
        *eq = '\0';
        set(conf, kv, eq + 1);
        free(kv);
    }
    const char *stats_file = getenv("RDK_PRESSURE_STATS");
    if (stats_file != NULL) {
        rd_kafka_conf_set_stats_cb(conf, on_stats);
    }
    char err[512];
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL) {
        die("consumer: %s", err);
    }
    /* The main queue (statistics, errors) is served by the poll too. */
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(rk);
    if (cq == NULL) {
        die("no consumer queue");
    }

    parts = aligned_alloc(_Alignof(struct part), sizeof(struct part) * (size_t)partitions);
    per_part = calloc((size_t)partitions, sizeof(int64_t));
    next_off = calloc((size_t)partitions, sizeof(int64_t));
    if (parts == NULL || per_part == NULL || next_off == NULL) {
        die("out of memory");
    }
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(tps, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        pthread_mutex_init(&parts[p].mu, NULL);
        parts[p].count = 0;
        parts[p].paused = 0;
        parts[p].one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts[p].one, topic, p);
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, tps);
    if (e) {
        die("assign: %s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(tps);

    struct queue *queues = xmalloc(sizeof(struct queue) * (size_t)workers);
    pthread_t *threads = xmalloc(sizeof(pthread_t) * (size_t)workers);
    for (int w = 0; w < workers; w++) {
        queue_init(&queues[w]);
        if (pthread_create(&threads[w], NULL, worker, &queues[w]) != 0) {
            die("cannot start worker %d", w);
        }
    }

    rd_kafka_message_t **msgs = xmalloc(sizeof(rd_kafka_message_t *) * (size_t)poll_max);
    /* This poll's records per worker (at most a poll's). */
    rd_kafka_message_t **staged = xmalloc(sizeof(rd_kafka_message_t *) * (size_t)poll_max * (size_t)workers);
    size_t *nstaged = calloc((size_t)workers, sizeof(size_t));
    if (nstaged == NULL) {
        die("out of memory");
    }
    int64_t start = mono_ns();
    int64_t warm_d = 0, warm_p = 0, warm_r = 0;
    int warm = 0;
    for (;;) {
        int64_t el = mono_ns() - start;
        if (!warm && el >= warmup_ms * 1000000LL) {
            warm_d = atomic_load(&delivered);
            warm_p = atomic_load(&pauses);
            warm_r = atomic_load(&resumes);
            warm = 1;
        }
        if (el >= duration_ms * 1000000LL) {
            break;
        }
        size_t n = poll_records(cq, msgs, (size_t)poll_max), kept = 0;
        for (size_t k = 0; k < n; k++) {
            rd_kafka_message_t *m = msgs[k];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                continue;
            }
            if (m->err) {
                die("%s[%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
                    rd_kafka_message_errstr(m));
            }
            if (m->partition < 0 || m->partition >= partitions) {
                die("a record of partition %d, not in 0..%d", (int)m->partition, partitions);
            }
            msgs[kept++] = m;
        }
        /* Count each partition's run into its buffer, pausing partitions that became full. */
        for (size_t k = 0; k < kept;) {
            int p = (int)msgs[k]->partition;
            size_t j = k;
            while (j < kept && msgs[j]->partition == p) {
                j++;
            }
            struct part *ps = &parts[p];
            pthread_mutex_lock(&ps->mu);
            ps->count += (int64_t)(j - k);
            if (!ps->paused && ps->count >= buffer) {
                ps->paused = 1;
                pause_resume(p, 1);
                atomic_fetch_add_explicit(&pauses, 1, memory_order_relaxed);
            }
            pthread_mutex_unlock(&ps->mu);
            int w = p % workers;
            memcpy(staged + (size_t)w * (size_t)poll_max + nstaged[w], msgs + k, sizeof(msgs[0]) * (j - k));
            nstaged[w] += j - k;
            k = j;
        }
        for (int w = 0; w < workers; w++) {
            if (nstaged[w] > 0) {
                struct batch *b = xmalloc(sizeof(struct batch) + sizeof(rd_kafka_message_t *) * nstaged[w]);
                b->n = nstaged[w];
                memcpy(b->m, staged + (size_t)w * (size_t)poll_max, sizeof(rd_kafka_message_t *) * b->n);
                queue_push(&queues[w], b);
                nstaged[w] = 0;
            }
        }
    }
    int64_t end_d = atomic_load(&delivered), end_p = atomic_load(&pauses), end_r = atomic_load(&resumes);
    double window = (double)(duration_ms - warmup_ms) / 1000.0;
    atomic_store(&stop, 1);
    for (int w = 0; w < workers; w++) {
        queue_close(&queues[w]);
    }
    for (int w = 0; w < workers; w++) {
        pthread_join(threads[w], NULL);
    }
    /* The batches no worker took. */
    for (int w = 0; w < workers; w++) {
        struct batch *b = queues[w].head;
        while (b != NULL) {
            struct batch *next = b->next;
            for (size_t k = 0; k < b->n; k++) {
                rd_kafka_message_destroy(b->m[k]);
            }
            free(b);
            b = next;
        }
        pthread_mutex_destroy(&queues[w].mu);
        pthread_cond_destroy(&queues[w].cond);
    }
    /* The one-element lists hold references to their partitions once used (librdkafka caches the partition
     * object in them): they go before the close, or rd_kafka_destroy waits for those references forever. */
    for (int p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_destroy(parts[p].one);
        parts[p].one = NULL;
        pthread_mutex_destroy(&parts[p].mu);
    }
    /* The queue reference goes before the close (rd_kafka_queue_get_consumer's contract). */
    rd_kafka_queue_destroy(cq);
    e = rd_kafka_consumer_close(rk);
    if (e) {
        die("close: %s", rd_kafka_err2str(e));
    }
    /* RDK_PRESSURE_STATS=FILE: the last statistics JSON (set statistics.interval.ms too) is written there. */
    write_stats(stats_file);
    rd_kafka_destroy(rk);

    int64_t min_p = -1, max_p = 0, zero = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t c = per_part[p];
        if (c == 0) {
            zero++;
        }
        if (min_p < 0 || c < min_p) {
            min_p = c;
        }
        if (c > max_p) {
            max_p = c;
        }
    }
    int64_t records = end_d - warm_d;
    printf("{\"client\":\"librdkafka %s\",\"records\":%" PRId64 ",\"seconds\":%g,\"records_per_s\":%.3f,"
           "\"pauses_per_s\":%.3f,\"resumes_per_s\":%.3f,\"records_total\":%" PRId64 ",\"pauses_total\":%" PRId64
           ",\"resumes_total\":%" PRId64 ",\"min_partition\":%" PRId64 ",\"max_partition\":%" PRId64
           ",\"out_of_order\":%" PRId64 ",\"zero_partitions\":%" PRId64 ",\"checksum\":%" PRIu64 "}\n",
           rd_kafka_version_str(), records, window, (double)records / window, (double)(end_p - warm_p) / window,
           (double)(end_r - warm_r) / window, end_d, end_p, end_r, min_p, max_p, (int64_t)atomic_load(&disorder),
           zero, (uint64_t)atomic_load(&sink));
    free(last_stats);
    free(msgs);
    free(staged);
    free(nstaged);
    free(queues);
    free(threads);
    free(parts);
    free(per_part);
    free(next_off);
    return 0;
}
