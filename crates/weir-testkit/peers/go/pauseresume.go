package main

// Pause/resume as applications use it, on franz-go: the same method as weir's
// crates/weir/benches/pause_resume_vs_franz.rs (keep the two in step).
//
//   - one kgo.Client consumes all --partitions partitions of --topic by direct assignment
//     (kgo.ConsumePartitions, no group), from the start or the end, with FetchMaxWait --fetch-max-wait-ms;
//   - a poll loop runs all along in its own goroutine: PollRecords(--poll-max) with a 100 ms deadline, the
//     records discarded (counted);
//   - optionally (--trickle-per-s > 0) a second client produces small records to random partitions, so that
//     fetches carry data; weir's bench leaves it at 0 and runs its own trickle producer for both clients;
//   - every --kept-every-th partition (0: none) is paused before anything is measured and stays paused;
//   - for each thread count in --threads and each mode in --modes, that many goroutines loop for --duration:
//     single:   PauseFetchPartitions({topic: [p]}) + ResumeFetchPartitions({topic: [p]}) for one random
//     partition p that is not kept paused;
//     batch100: the same with --batch random partitions per call (16 batches per goroutine, built before
//     the measured region).
//     The maps passed in are built before the measured region (franz-go only reads them), so the figures are
//     the calls' own cost;
//   - at the end, the paused set must be exactly the kept-paused partitions (every pause is followed by a
//     resume of the same partitions by the same goroutine).
//
// Prints one JSON object per (threads, mode) on stdout, then {"check":"ok",...}.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// xorshift is a per-goroutine random source (the same generator as the weir bench's).
type xorshift uint64

func (x *xorshift) next() uint64 {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift(v)
	return v
}

// pauseResumeRun is one measured workload's setting.
type pauseResumeRun struct {
	cl         *kgo.Client
	topic      string
	partitions int
	keptEvery  int
	batch      int
	single     []map[string][]int32 // one prebuilt argument per partition
}

func (r *pauseResumeRun) kept(i int) bool { return r.keptEvery > 0 && i%r.keptEvery == 0 }

// pick returns a random partition that is not kept paused.
func (r *pauseResumeRun) pick(rng *xorshift) int {
	for {
		i := int(rng.next() % uint64(r.partitions))
		if !r.kept(i) {
			return i
		}
	}
}

// measure runs `threads` goroutines in `mode` for `d`; returns pause+resume pairs and partitions paused and
// resumed, and the wall time.
func (r *pauseResumeRun) measure(mode string, threads int, d time.Duration) (pairs, parts int64, took time.Duration) {
	var stop atomic.Bool
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var totalPairs, totalParts atomic.Int64
	for t := 0; t < threads; t++ {
		ready.Add(1)
		done.Add(1)
		go func(t int) {
			defer done.Done()
			rng := xorshift(0x2545F4914F6CDD1D ^ (uint64(t+1) * 0x9E3779B9))
			var batches []map[string][]int32
			var sizes []int64
			if mode == "batch100" {
				for k := 0; k < 16; k++ {
					seen := map[int32]bool{}
					for j := 0; j < r.batch; j++ {
						seen[int32(r.pick(&rng))] = true
					}
					ps := make([]int32, 0, len(seen))
					for p := range seen {
						ps = append(ps, p)
					}
					sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
					batches = append(batches, map[string][]int32{r.topic: ps})
					sizes = append(sizes, int64(len(ps)))
				}
			}
			ready.Done()
			<-start
			var n, np int64
			k := 0
			for !stop.Load() {
				if mode == "batch100" {
					k = (k + 1) % len(batches)
					r.cl.PauseFetchPartitions(batches[k])
					r.cl.ResumeFetchPartitions(batches[k])
					np += sizes[k]
				} else {
					m := r.single[r.pick(&rng)]
					r.cl.PauseFetchPartitions(m)
					r.cl.ResumeFetchPartitions(m)
					np++
				}
				n++
			}
			totalPairs.Add(n)
			totalParts.Add(np)
		}(t)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	done.Wait()
	return totalPairs.Load(), totalParts.Load(), time.Since(t0)
}

func intList(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			die("pause-resume: bad count %q in %q", f, s)
		}
		out = append(out, n)
	}
	return out
}

func pauseResume(args []string) {
	fs := flag.NewFlagSet("pause-resume", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 0, "partitions of the topic (all are consumed)")
	threadsFlag := fs.String("threads", "1,2,4,8", "writer goroutine counts, comma-separated")
	modesFlag := fs.String("modes", "single,batch100", "single and/or batch100, comma-separated")
	duration := fs.Duration("duration", time.Second, "measured time per (threads, mode)")
	warmup := fs.Duration("warmup", 2*time.Second, "time between assignment and the first measurement")
	keptEvery := fs.Int("kept-every", 10, "every K-th partition stays paused throughout (0: none)")
	batch := fs.Int("batch", 100, "partitions per call in batch100 mode (random, deduplicated)")
	from := fs.String("from", "end", "start or end: where consumption starts")
	maxWait := fs.Int("fetch-max-wait-ms", 20, "fetch max wait in ms")
	pollMax := fs.Int("poll-max", 500, "records per poll")
	trickle := fs.Int("trickle-per-s", 0, "records per second produced to random partitions by a second client")
	fs.Parse(args)
	if *brokers == "" || *topic == "" || *partitions <= 0 {
		die("pause-resume: --brokers, --topic and --partitions are required")
	}
	threads := intList(*threadsFlag)
	modes := strings.Split(*modesFlag, ",")
	for _, m := range modes {
		if m != "single" && m != "batch100" {
			die("pause-resume: unknown mode %q (single, batch100)", m)
		}
	}
	offset := kgo.NewOffset().AtEnd()
	switch *from {
	case "start":
		offset = kgo.NewOffset().AtStart()
	case "end":
	default:
		die("pause-resume: --from start|end, not %q", *from)
	}
	assign := make(map[int32]kgo.Offset, *partitions)
	for p := 0; p < *partitions; p++ {
		assign[int32(p)] = offset
	}
	cl := newClient(*brokers,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: assign}),
		kgo.FetchMaxWait(time.Duration(*maxWait)*time.Millisecond),
	)
	defer cl.Close()

	r := &pauseResumeRun{cl: cl, topic: *topic, partitions: *partitions, keptEvery: *keptEvery, batch: *batch}
	r.single = make([]map[string][]int32, *partitions)
	var kept []int32
	for p := 0; p < *partitions; p++ {
		r.single[p] = map[string][]int32{*topic: {int32(p)}}
		if r.kept(p) {
			kept = append(kept, int32(p))
		}
	}
	if len(kept) > 0 {
		cl.PauseFetchPartitions(map[string][]int32{*topic: kept})
	}

	// The application's poll loop.
	ctx, cancel := context.WithCancel(context.Background())
	var polls, polled, pollErrors atomic.Int64
	var loops sync.WaitGroup
	loops.Add(1)
	go func() {
		defer loops.Done()
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			fetches := cl.PollRecords(pctx, *pollMax)
			pcancel()
			for _, e := range fetches.Errors() {
				if e.Err != context.DeadlineExceeded && e.Err != context.Canceled && pollErrors.Add(1) <= 3 {
					fmt.Fprintf(os.Stderr, "pause-resume: poll: %s[%d]: %v\n", e.Topic, e.Partition, e.Err)
				}
			}
			polls.Add(1)
			polled.Add(int64(fetches.NumRecords()))
		}
	}()
	var produced atomic.Int64
	if *trickle > 0 {
		loops.Add(1)
		go func() {
			defer loops.Done()
			pcl := newClient(*brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(*topic))
			defer pcl.Close()
			rng := xorshift(0x0DDB1A5E5BAD5EED)
			perTick := max(1, *trickle/100)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			var unacked atomic.Int64
			for ctx.Err() == nil {
				<-tick.C
				if unacked.Load() > 2000 {
					continue // the broker is behind: a trickle, not a backlog
				}
				for i := 0; i < perTick; i++ {
					p := int32(rng.next() % uint64(*partitions))
					unacked.Add(1)
					pcl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte("trickle-record-0123456789abcdef")},
						func(*kgo.Record, error) { unacked.Add(-1); produced.Add(1) })
				}
			}
		}()
	}

	time.Sleep(*warmup)
	fmt.Fprintf(os.Stderr, "pause-resume: franz-go %s, %d partitions, %d kept paused; after warm-up: %d polls, %d records\n",
		franzVersion(), *partitions, len(kept), polls.Load(), polled.Load())
	// Warm-up of each mode (not reported).
	for _, m := range modes {
		r.measure(m, 1, 150*time.Millisecond)
	}
	for _, t := range threads {
		for _, m := range modes {
			p0, r0 := polls.Load(), polled.Load()
			pairs, parts, took := r.measure(m, t, *duration)
			s := took.Seconds()
			printJSON(os.Stdout, map[string]any{
				"client":           "franz-go " + franzVersion(),
				"mode":             m,
				"threads":          t,
				"partitions":       *partitions,
				"kept_paused":      len(kept),
				"seconds":          s,
				"pairs":            pairs,
				"pairs_per_s":      float64(pairs) / s,
				"partitions_per_s": float64(parts) / s,
				"polls":            polls.Load() - p0,
				"polled_records":   polled.Load() - r0,
			})
		}
	}
	cancel()
	loops.Wait()

	// Every pause was followed by a resume of the same partitions: only the kept ones are paused.
	got := cl.PauseFetchPartitions(nil)[*topic]
	sort.Slice(got, func(a, b int) bool { return got[a] < got[b] })
	if len(got) != len(kept) {
		die("pause-resume: %d partitions paused at the end, want the %d kept paused", len(got), len(kept))
	}
	for i := range got {
		if got[i] != kept[i] {
			die("pause-resume: partition %d paused at the end, not one of the kept paused", got[i])
		}
	}
	printJSON(os.Stdout, map[string]any{
		"check":          "ok",
		"paused":         len(got),
		"polls":          polls.Load(),
		"polled_records": polled.Load(),
		"poll_errors":    pollErrors.Load(),
		"produced":       produced.Load(),
	})
}
