/*
 * What the librdkafka drivers (latency.c, pressure.c) share: dying with a message, the monotonic clock, setting a
 * property, parsing a number, and keeping librdkafka's last statistics JSON for a file. Each driver defines
 * DRIVER_NAME (the prefix of its messages) before including this file. Compiled into each driver (static
 * functions), see weir_testkit::peers::rdk_driver.
 */
#ifndef WEIR_RDK_DRIVER_H
#define WEIR_RDK_DRIVER_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#ifndef DRIVER_NAME
#error "define DRIVER_NAME before including driver.h"
#endif

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints DRIVER_NAME: message to stderr and exits with status 1. */
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, DRIVER_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sets a librdkafka property, or dies with librdkafka's reason. */
static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        die("%s: %s", key, err);
    }
}

/* A non-negative decimal number, or dies naming `what`. */
static int64_t number(const char *s, const char *what) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 0) {
        die("%s: not a non-negative number: %s", what, s);
    }
    return v;
}

/* The last statistics JSON librdkafka gave (statistics.interval.ms), kept by on_stats. */
static char *last_stats;

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    (void)len;
    (void)opaque;
    free(last_stats);
    last_stats = json;
    return 1; /* the JSON is ours to free */
}

/* Writes the last statistics JSON to `path`, if both are there (best effort: a diagnostic). */
static void write_stats(const char *path) {
    if (path == NULL || last_stats == NULL) {
        return;
    }
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(last_stats, f);
        fclose(f);
    }
}

#endif
