package main

// The bounded-buffer workload weir exists for, on franz-go. The same design is implemented with weir in
// crates/weir/benches/vs_peers.rs (keep the two in step):
//
//   - the application keeps a buffer of at most --buffer records per partition: a partition whose buffer
//     holds --buffer records or more is paused (one PauseFetchPartitions call per partition), and resumed
//     (one ResumeFetchPartitions call) by the worker that drains it below --resume-below;
//   - one poll loop calls PollRecords(--poll-max), counts each partition's records into its buffer (pausing the
//     full ones), and hands the records to the worker owning the partition (partition % workers), one slice
//     per worker per poll over an unbounded queue;
//   - --workers goroutines process records: --work-rounds passes of 64-bit FNV-1a over the value each (the same
//     function in both programs), then take the processed records out of their partition's buffer;
//   - a partition's count and paused flag live under its own mutex, held across the client's pause or resume
//     call, so that a pause and a resume of one partition cannot overtake each other;
//   - each worker checks that every partition's offsets arrive in order without gaps or repeats.
//
// Counters are read at --warmup and at --duration; rates are over that window. Prints one JSON object.

import (
	"context"
	"flag"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type partState struct {
	mu     sync.Mutex
	count  int
	paused bool
	_      [40]byte // keep neighbours off one cache line
}

// fnvWork is the per-record CPU work: rounds passes of 64-bit FNV-1a over v.
func fnvWork(v []byte, rounds int) uint64 {
	h := uint64(14695981039346656037)
	for r := 0; r < rounds; r++ {
		for _, b := range v {
			h ^= uint64(b)
			h *= 1099511628211
		}
	}
	return h
}

type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  [][]*kgo.Record
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(b []*kgo.Record) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *queue) pop() ([]*kgo.Record, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	b := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return b, true
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func pressure(args []string) {
	fs := flag.NewFlagSet("pressure", flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap brokers")
	topic := fs.String("topic", "", "topic")
	partitions := fs.Int("partitions", 0, "partitions of the topic")
	workers := fs.Int("workers", 8, "processing goroutines")
	buffer := fs.Int("buffer", 0, "records buffered per partition before it is paused")
	resumeBelow := fs.Int("resume-below", 0, "a paused partition is resumed when its buffer drains below this")
	duration := fs.Duration("duration", 10*time.Second, "run time")
	warmup := fs.Duration("warmup", time.Second, "not measured")
	rounds := fs.Int("work-rounds", 1, "FNV-1a passes over each value")
	pollMax := fs.Int("poll-max", 1000, "records per poll")
	maxWait := fs.Int("fetch-max-wait-ms", 500, "fetch max wait in ms")
	fs.Parse(args)
	if *brokers == "" || *topic == "" || *partitions <= 0 || *buffer <= 0 || *resumeBelow <= 0 || *resumeBelow > *buffer {
		die("pressure: --brokers, --topic, --partitions, --buffer and --resume-below (<= --buffer) are required")
	}
	cl := newClient(*brokers,
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(time.Duration(*maxWait)*time.Millisecond),
	)
	defer cl.Close()

	parts := make([]partState, *partitions)
	var delivered, pauses, resumes, disorder atomic.Int64
	perPart := make([]int64, *partitions) // records processed per partition (each written by one worker)
	next := make([]int64, *partitions)    // expected next offset per partition (each owned by one worker)
	queues := make([]*queue, *workers)
	var wg sync.WaitGroup
	var stop atomic.Bool
	var sink atomic.Uint64
	t := *topic
	for w := range queues {
		queues[w] = newQueue()
		wg.Add(1)
		go func(q *queue) {
			defer wg.Done()
			var acc uint64
			for {
				batch, ok := q.pop()
				if !ok {
					sink.Add(acc)
					return
				}
				// Records of one partition are contiguous in a poll: settle each run at once.
				for i := 0; i < len(batch); {
					p := batch[i].Partition
					j := i
					for ; j < len(batch) && batch[j].Partition == p; j++ {
						r := batch[j]
						acc += fnvWork(r.Value, *rounds)
						if r.Offset != next[p] {
							disorder.Add(1)
						}
						next[p] = r.Offset + 1
					}
					n := j - i
					i = j
					if stop.Load() {
						continue
					}
					perPart[p] += int64(n)
					delivered.Add(int64(n))
					ps := &parts[p]
					ps.mu.Lock()
					ps.count -= n
					if ps.paused && ps.count < *resumeBelow {
						ps.paused = false
						cl.ResumeFetchPartitions(map[string][]int32{t: {p}})
						resumes.Add(1)
					}
					ps.mu.Unlock()
				}
			}
		}(queues[w])
	}

	ctx := context.Background()
	start := time.Now()
	type snap struct{ delivered, pauses, resumes int64 }
	take := func() snap { return snap{delivered.Load(), pauses.Load(), resumes.Load()} }
	var atWarmup snap
	warm := false
	batches := make([][]*kgo.Record, *workers)
	for {
		el := time.Since(start)
		if !warm && el >= *warmup {
			atWarmup, warm = take(), true
		}
		if el >= *duration {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := cl.PollRecords(pctx, *pollMax)
		cancel()
		for _, e := range fetches.Errors() {
			if e.Err == context.DeadlineExceeded {
				continue
			}
			die("pressure: %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		recs := fetches.Records()
		// Count each partition's run into its buffer, pausing partitions that became full.
		for i := 0; i < len(recs); {
			p := recs[i].Partition
			j := i
			for j < len(recs) && recs[j].Partition == p {
				j++
			}
			ps := &parts[p]
			ps.mu.Lock()
			ps.count += j - i
			if !ps.paused && ps.count >= *buffer {
				ps.paused = true
				cl.PauseFetchPartitions(map[string][]int32{t: {p}})
				pauses.Add(1)
			}
			ps.mu.Unlock()
			w := int(p) % *workers
			batches[w] = append(batches[w], recs[i:j]...)
			i = j
		}
		for w, b := range batches {
			if len(b) > 0 {
				queues[w].push(b)
				batches[w] = nil
			}
		}
	}
	end := take()
	window := (*duration - *warmup).Seconds()
	stop.Store(true)
	for _, q := range queues {
		q.close()
	}
	wg.Wait()
	var minP, maxP int64 = -1, 0
	zero := 0
	for _, n := range perPart {
		if n == 0 {
			zero++
		}
		if minP < 0 || n < minP {
			minP = n
		}
		maxP = max(maxP, n)
	}
	printJSON(os.Stdout, map[string]any{
		"client":          "franz-go " + franzVersion(),
		"records":         end.delivered - atWarmup.delivered,
		"seconds":         window,
		"records_per_s":   float64(end.delivered-atWarmup.delivered) / window,
		"pauses_per_s":    float64(end.pauses-atWarmup.pauses) / window,
		"resumes_per_s":   float64(end.resumes-atWarmup.resumes) / window,
		"records_total":   end.delivered,
		"pauses_total":    end.pauses,
		"resumes_total":   end.resumes,
		"min_partition":   minP,
		"max_partition":   maxP,
		"out_of_order":    disorder.Load(),
		"zero_partitions": zero,
		"checksum":        sink.Load(),
	})
}
