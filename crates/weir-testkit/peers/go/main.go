// Command franz-go-peer drives github.com/twmb/franz-go for weir's interop tests and benchmarks.
//
// Subcommands (each prints a one-line JSON summary on stderr's last line or stdout, see below):
//
//	produce  --brokers B --topic T (--count N --size S | --input FILE|-) [--round-robin] [--linger-ms 5]
//	         [--compression none] [--chunk C --partitions P]
//	         N records of S bytes (or one record per input line), idempotent, acks=all, as fast as possible.
//	         Prints {"records":N,"seconds":X} on stdout.
//	produce-records --brokers B --topic T [--compression none]
//	         Interop: one record per stdin line "PARTITION\tKEY\tVALUE\tHEADERS" (see the record format below),
//	         produced in order to the given partitions; prints "PARTITION\tOFFSET" per record, in input order.
//	consume  --brokers B --topic T --count N [--out summary|values|records] [--fetch-max-wait-ms 500]
//	         [--fetch-max-partition-bytes N] [--fetch-max-bytes N] [--max-concurrent-fetches N]
//	         Consumes N records of every partition from the start (direct partitions, no group).
//	         summary: {"records":N,"bytes":B,"seconds":X} on stdout; values: each value and "\n" on stdout, the
//	         summary on stderr; records: one record per line (format below), the summary on stderr.
//	pressure --brokers B --topic T --partitions P --workers 8 --buffer N --resume-below M --duration D
//	         [--warmup W] [--work-rounds R] [--poll-max K] [--fetch-max-wait-ms 500]
//	         The bounded-buffer workload, see pressure.go.
//	pause-resume --brokers B --topic T --partitions P [--threads 1,2,4,8] [--modes single,batch100]
//	         [--duration 1s] [--warmup 2s] [--kept-every 10] [--batch 100] [--from end|start]
//	         [--fetch-max-wait-ms 20] [--poll-max 500] [--trickle-per-s 0]
//	         PauseFetchPartitions+ResumeFetchPartitions pairs per second from T goroutines while the client
//	         consumes all P partitions with a poll loop running, see pauseresume.go. One JSON object per
//	         (threads, mode) on stdout.
//	latency  --brokers B --topic T --partitions P --rate R --duration D --warmup W [--record-size 100]
//	         [--linger-ms -1] [--fetch-max-wait-ms -1]
//	         End-to-end latency at a fixed rate, produced and read back in one process; see latency.go.
//
// Record format (tab-separated; bytes in standard base64, "~" for null):
//
//	PARTITION OFFSET TIMESTAMP_MS KEY VALUE HEADERS
//
// HEADERS is "" or comma-separated "KEYB64:VALUE" pairs (VALUE base64 or "~").
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "franz-go-peer: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		die("usage: franz-go-peer produce|produce-records|consume|pressure|pause-resume|latency [flags] (see the source)")
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "produce":
		produce(args)
	case "produce-records":
		produceRecords(args)
	case "consume":
		consume(args)
	case "pressure":
		pressure(args)
	case "pause-resume":
		pauseResume(args)
	case "latency":
		latency(args)
	case "version":
		fmt.Println(franzVersion())
	default:
		die("unknown subcommand %q", cmd)
	}
}

// codec maps a --compression name to franz-go's codec (franz-go's own default would be snappy).
func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	die("unknown --compression %q (none, gzip, snappy, lz4, zstd)", name)
	return kgo.NoCompression()
}

func printJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		die("json: %v", err)
	}
	fmt.Fprintln(w, string(b))
}

func newClient(brokers string, opts ...kgo.Opt) *kgo.Client {
	all := append([]kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, opts...)
	// FRANZ_GO_PEER_LOG=debug|info|warn|error: franz-go's own log on stderr.
	if lv := os.Getenv("FRANZ_GO_PEER_LOG"); lv != "" {
		levels := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo, "warn": kgo.LogLevelWarn, "error": kgo.LogLevelError}
		all = append(all, kgo.WithLogger(kgo.BasicLogger(os.Stderr, levels[lv], nil)))
	}
	cl, err := kgo.NewClient(all...)
	if err != nil {
		die("client: %v", err)
	}
	return cl
}

func produce(args []string) {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic")
	count := fs.Int("count", 0, "records to produce (with --size)")
	size := fs.Int("size", 100, "value size in bytes")
	input := fs.String("input", "", "produce one record per line of FILE (- for stdin) instead of --count")
	roundRobin := fs.Bool("round-robin", false, "spread records over partitions one by one (default: franz-go's sticky partitioner)")
	linger := fs.Int("linger-ms", 5, "producer linger in ms")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	chunk := fs.Int("chunk", 0, "with --partitions: record i goes to partition (i / chunk) % partitions (with --count)")
	partitions := fs.Int("partitions", 0, "partitions of the topic, for --chunk")
	fs.Parse(args)
	if *brokers == "" || *topic == "" || (*count <= 0 && *input == "") {
		die("produce: --brokers, --topic and --count (or --input) are required")
	}
	if (*chunk > 0) != (*partitions > 0) || (*chunk > 0 && (*input != "" || *roundRobin)) {
		die("produce: --chunk and --partitions go together, with --count and without --round-robin")
	}
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default
		kgo.ProducerLinger(time.Duration(*linger) * time.Millisecond),
		kgo.ProducerBatchCompression(codec(*compression)),
		kgo.DefaultProduceTopic(*topic),
	}
	if *roundRobin {
		opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	}
	if *chunk > 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl := newClient(*brokers, opts...)
	defer cl.Close()
	ctx := context.Background()

	var failed atomic.Pointer[error]
	var n int64
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	if *input != "" {
		var r io.Reader = os.Stdin
		if *input != "-" {
			f, err := os.Open(*input)
			if err != nil {
				die("produce: %v", err)
			}
			defer f.Close()
			r = f
		}
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				v := line
				if v[len(v)-1] == '\n' {
					v = v[:len(v)-1]
				}
				// ReadSlice reuses its buffer: the record needs its own copy.
				cl.Produce(ctx, &kgo.Record{Value: append([]byte(nil), v...)}, done)
				n++
			}
			if err == io.EOF {
				break
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				die("produce: reading input: %v", err)
			}
		}
	} else {
		for i := 0; i < *count; i++ {
			v := make([]byte, *size)
			fill(v, i)
			r := &kgo.Record{Value: v}
			if *chunk > 0 {
				r.Partition = int32((i / *chunk) % *partitions)
			}
			cl.Produce(ctx, r, done)
			n++
		}
	}
	if err := cl.Flush(ctx); err != nil {
		die("produce: flush: %v", err)
	}
	if e := failed.Load(); e != nil {
		die("produce: %v", *e)
	}
	printJSON(os.Stdout, map[string]any{"records": n, "seconds": time.Since(start).Seconds()})
}

// fill writes a recognisable value: the record number, then 'x' padding.
func fill(v []byte, i int) {
	s := fmt.Sprintf("%010d-", i)
	for j := range v {
		if j < len(s) {
			v[j] = s[j]
		} else {
			v[j] = 'x'
		}
	}
}

func b64(b []byte) string {
	if b == nil {
		return "~"
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unb64(s string) []byte {
	if s == "~" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		die("bad base64 %q: %v", s, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

func produceRecords(args []string) {
	fs := flag.NewFlagSet("produce-records", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.Parse(args)
	if *brokers == "" || *topic == "" {
		die("produce-records: --brokers and --topic are required")
	}
	cl := newClient(*brokers,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec(*compression)),
		kgo.DefaultProduceTopic(*topic),
	)
	defer cl.Close()
	var recs []*kgo.Record
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			die("produce-records: want 4 tab-separated fields, got %d in %q", len(f), sc.Text())
		}
		p, err := strconv.Atoi(f[0])
		if err != nil {
			die("produce-records: partition %q: %v", f[0], err)
		}
		r := &kgo.Record{Partition: int32(p), Key: unb64(f[1]), Value: unb64(f[2])}
		if f[3] != "" {
			for _, h := range strings.Split(f[3], ",") {
				kv := strings.SplitN(h, ":", 2)
				if len(kv) != 2 {
					die("produce-records: header %q", h)
				}
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(unb64(kv[0])), Value: unb64(kv[1])})
			}
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		die("produce-records: reading stdin: %v", err)
	}
	// In order: one at a time would be slow; ProduceSync of all keeps per-partition order (idempotent producer).
	res := cl.ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		die("produce-records: %v", err)
	}
	w := bufio.NewWriter(os.Stdout)
	// ProduceSync's results come in completion order; the records themselves carry their partition and offset.
	for _, r := range recs {
		fmt.Fprintf(w, "%d\t%d\n", r.Partition, r.Offset)
	}
	w.Flush()
}

func consume(args []string) {
	fs := flag.NewFlagSet("consume", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic")
	count := fs.Int64("count", 0, "records to consume")
	out := fs.String("out", "summary", "summary, values or records")
	maxWait := fs.Int("fetch-max-wait-ms", 500, "fetch max wait in ms")
	partitionBytes := fs.Int("fetch-max-partition-bytes", 0, "FetchMaxPartitionBytes (0: franz-go's default)")
	fetchBytes := fs.Int("fetch-max-bytes", 0, "FetchMaxBytes (0: franz-go's default)")
	concurrent := fs.Int("max-concurrent-fetches", 0, "MaxConcurrentFetches (0: franz-go's default, unbounded)")
	fs.Parse(args)
	if *brokers == "" || *topic == "" || *count <= 0 {
		die("consume: --brokers, --topic and --count are required")
	}
	opts := []kgo.Opt{
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Duration(*maxWait) * time.Millisecond),
	}
	if *partitionBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(int32(*partitionBytes)))
	}
	if *fetchBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(int32(*fetchBytes)))
	}
	if *concurrent > 0 {
		opts = append(opts, kgo.MaxConcurrentFetches(*concurrent))
	}
	cl := newClient(*brokers, opts...)
	defer cl.Close()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	summary := io.Writer(os.Stdout)
	if *out != "summary" {
		summary = os.Stderr
	}
	start := time.Now()
	var n, bytes int64
	ctx := context.Background()
	for n < *count {
		fetches := cl.PollRecords(ctx, 10000)
		for _, e := range fetches.Errors() {
			die("consume: %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if n >= *count {
				return
			}
			n++
			bytes += int64(len(r.Value))
			switch *out {
			case "values":
				w.Write(r.Value)
				w.WriteByte('\n')
			case "records":
				hs := make([]string, len(r.Headers))
				for i, h := range r.Headers {
					hs[i] = b64([]byte(h.Key)) + ":" + b64(h.Value)
				}
				fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%s\n", r.Partition, r.Offset, r.Timestamp.UnixMilli(),
					b64(r.Key), b64(r.Value), strings.Join(hs, ","))
			}
		})
	}
	if err := w.Flush(); err != nil {
		die("consume: writing: %v", err)
	}
	printJSON(summary, map[string]any{"records": n, "bytes": bytes, "seconds": time.Since(start).Seconds()})
}

// franzVersion is the franz-go module version this binary was built with.
func franzVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "unknown"
}
