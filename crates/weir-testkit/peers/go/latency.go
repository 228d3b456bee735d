// The end-to-end latency driver: records produced on a fixed schedule while a consumer in the same process reads
// them back, as weir's `latency_vs_peers` bench does for every client.
//
//	latency --brokers B --topic T --partitions P --rate R --duration D --warmup W [--record-size 100]
//	        [--linger-ms -1] [--fetch-max-wait-ms -1] [--drain-timeout 10s]
//
// Record i is due at origin + i/R. The producing goroutine sleeps until then (or not at all when behind
// schedule) and hands the record to franz-go; both latencies are measured from that intended time, so a stall
// delays the records behind it in the figures too (no coordinated omission). Each value starts with a 24-byte
// big-endian header: the run's id, the record's number and its intended send time (nanoseconds after the origin,
// on this process's monotonic clock); 'x' fills the rest. Records of the warm-up (the first W*R) are produced and
// read but not counted.
//
// The consumer is a second client reading every partition of T from the start (direct partitions, no group);
// the topic is expected to be fresh. Latency = time of receipt (after the poll returned) - intended send time.
// After the last record is acknowledged the consumer gets --drain-timeout to read every record.
//
// franz-go settings: idempotent with acks=all (its defaults), no compression; --linger-ms and
// --fetch-max-wait-ms set ProducerLinger and FetchMaxWait when not negative (franz-go's defaults: 10 ms, 5 s).
//
// Prints one JSON object on stdout: count (measured records read), p50_ms, p90_ms, p99_ms, p999_ms, max_ms
// (end to end), ack_p50_ms, ack_p99_ms, ack_max_ms (intended send -> acknowledgement), scheduled, acked, failed,
// missing (scheduled records never read), duplicates, foreign (records of another run).
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyHeaderLen is the length of the header at the start of every value.
const latencyHeaderLen = 24

// latencyMaxTracked is the highest latency a histogram keeps (ns); longer ones are recorded as this.
const latencyMaxTracked = int64(time.Hour)

func latencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, latencyMaxTracked, 3)
}

func recordLatency(h *hdrhistogram.Histogram, ns int64) {
	if ns < 1 {
		ns = 1
	}
	if ns > latencyMaxTracked {
		ns = latencyMaxTracked
	}
	_ = h.RecordValue(ns)
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func latency(args []string) {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic (fresh: read from the start)")
	partitions := fs.Int("partitions", 0, "partitions of the topic (all are read)")
	rate := fs.Int("rate", 0, "records per second")
	duration := fs.Duration("duration", 0, "measured time")
	warmup := fs.Duration("warmup", 0, "warm-up before the measured time (produced and read, not counted)")
	size := fs.Int("record-size", 100, "value bytes, the 24-byte header included")
	linger := fs.Int("linger-ms", -1, "ProducerLinger in ms (negative: franz-go's default)")
	maxWait := fs.Int("fetch-max-wait-ms", -1, "FetchMaxWait in ms (negative: franz-go's default)")
	drain := fs.Duration("drain-timeout", 10*time.Second, "after the last acknowledgement: how long to wait for every record")
	fs.Parse(args)
	if *brokers == "" || *topic == "" || *partitions <= 0 || *rate <= 0 || *duration <= 0 {
		die("latency: --brokers, --topic, --partitions, --rate and --duration are required")
	}
	if *size < latencyHeaderLen {
		die("latency: --record-size must be at least %d", latencyHeaderLen)
	}
	warmRecords := uint64(warmup.Nanoseconds() * int64(*rate) / 1e9)
	total := warmRecords + uint64(duration.Nanoseconds()*int64(*rate)/1e9)
	due := func(i uint64) int64 { return int64(i * 1e9 / uint64(*rate)) }

	popts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.DefaultProduceTopic(*topic),
	}
	if *linger >= 0 {
		popts = append(popts, kgo.ProducerLinger(time.Duration(*linger)*time.Millisecond))
	}
	parts := make(map[int32]kgo.Offset, *partitions)
	for p := 0; p < *partitions; p++ {
		parts[int32(p)] = kgo.NewOffset().AtStart()
	}
	copts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: parts})}
	if *maxWait >= 0 {
		copts = append(copts, kgo.FetchMaxWait(time.Duration(*maxWait)*time.Millisecond))
	}
	producer := newClient(*brokers, popts...)
	consumer := newClient(*brokers, copts...)
	ctx := context.Background()
	// Both clients connected and the topic's metadata known before the schedule starts.
	if err := producer.Ping(ctx); err != nil {
		die("latency: producer: %v", err)
	}
	if err := consumer.Ping(ctx); err != nil {
		die("latency: consumer: %v", err)
	}
	run := rand.Uint64()

	origin := time.Now()
	var acked, failed atomic.Uint64
	var firstErr atomic.Pointer[error]
	var ackMu sync.Mutex
	ackHist := latencyHistogram()

	// The reader: every record of this run once, until told how many to expect and that many arrived.
	e2e := latencyHistogram()
	seen := make([]bool, total)
	var received, count, duplicates, foreign uint64
	var want atomic.Uint64
	want.Store(^uint64(0))
	readerDone := make(chan struct{})
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(readerDone)
		for received < want.Load() && readCtx.Err() == nil {
			// A bounded poll, so that the loop sees soon enough that every record arrived.
			pollCtx, cancel := context.WithTimeout(readCtx, 100*time.Millisecond)
			fetches := consumer.PollFetches(pollCtx)
			cancel()
			now := time.Since(origin).Nanoseconds()
			for _, e := range fetches.Errors() {
				if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
					continue
				}
				die("latency: consume %s[%d]: %v", e.Topic, e.Partition, e.Err)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				v := r.Value
				if len(v) < latencyHeaderLen || binary.BigEndian.Uint64(v) != run {
					foreign++
					return
				}
				seq := binary.BigEndian.Uint64(v[8:])
				sent := int64(binary.BigEndian.Uint64(v[16:]))
				if seq >= total {
					foreign++
					return
				}
				if seen[seq] {
					duplicates++
					return
				}
				seen[seq] = true
				received++
				if seq >= warmRecords {
					count++
					recordLatency(e2e, now-sent)
				}
			})
		}
	}()

	filler := make([]byte, *size-latencyHeaderLen)
	for i := range filler {
		filler[i] = 'x'
	}
	for i := uint64(0); i < total; i++ {
		d := due(i)
		if wait := d - time.Since(origin).Nanoseconds(); wait > 0 {
			time.Sleep(time.Duration(wait))
		}
		v := make([]byte, *size)
		binary.BigEndian.PutUint64(v, run)
		binary.BigEndian.PutUint64(v[8:], i)
		binary.BigEndian.PutUint64(v[16:], uint64(d))
		copy(v[latencyHeaderLen:], filler)
		measured := i >= warmRecords
		producer.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			acked.Add(1)
			if measured {
				now := time.Since(origin).Nanoseconds()
				ackMu.Lock()
				recordLatency(ackHist, now-d)
				ackMu.Unlock()
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		die("latency: flush: %v", err)
	}
	want.Store(acked.Load())
	select {
	case <-readerDone:
	case <-time.After(*drain):
		stopReading()
		<-readerDone
	}
	producer.Close()
	consumer.Close()
	if e := firstErr.Load(); e != nil {
		die("latency: %d records failed: %v", failed.Load(), *e)
	}
	printJSON(os.Stdout, map[string]any{
		"client":     "franz-go",
		"count":      count,
		"p50_ms":     ms(e2e.ValueAtQuantile(50)),
		"p90_ms":     ms(e2e.ValueAtQuantile(90)),
		"p99_ms":     ms(e2e.ValueAtQuantile(99)),
		"p999_ms":    ms(e2e.ValueAtQuantile(99.9)),
		"max_ms":     ms(e2e.Max()),
		"ack_p50_ms": ms(ackHist.ValueAtQuantile(50)),
		"ack_p99_ms": ms(ackHist.ValueAtQuantile(99)),
		"ack_max_ms": ms(ackHist.Max()),
		"scheduled":  total,
		"acked":      acked.Load(),
		"failed":     failed.Load(),
		"missing":    total - received,
		"duplicates": duplicates,
		"foreign":    foreign,
	})
}
