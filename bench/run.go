package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/publisher"
)

// Config configures Run.
type Config struct {
	Templates *fast.Templates
	// Rates are the end-to-end publishing rates, incremental datagrams per second, each
	// run by the publisher (simulator, encoder, sendmmsg) for Duration. 0 means the
	// maximum: BlastDatagrams datagrams encoded in advance, handed to sendmmsg as fast as
	// the kernel takes them (the simulator and the encoder, which share the CPUs with the
	// receiver, out of the loop), without warm-up. Default 10000, 100000 and 0.
	Rates []float64
	// BlastDatagrams is the size of the maximum-rate run (default 300000).
	BlastDatagrams int
	// Duration is the data phase of each end-to-end run (default 5 s), Warmup its start
	// left out of the histograms (default a tenth of Duration).
	Duration, Warmup time.Duration
	// Instruments is the number of simulated instruments, one channel each (default 256:
	// enough channels that a paced publisher packs one or two entries per message).
	Instruments int
	// Port is the UDP port of the first run; each run uses the next (default 32000).
	Port uint16
	// NoMicro skips the microbenchmarks.
	NoMicro bool
	// Benchtime is how long each microbenchmark runs (default 1 s).
	Benchtime time.Duration
	// Spawn, if set, runs the sender of each end-to-end run in a child process, as a
	// publisher is deployed, so that the receiver's process (its Go scheduler, its
	// garbage collector) is its own: Spawn returns the command, not yet started, that
	// runs RunSender with args inside the caller's network namespace; its standard
	// output is left unset for Run to read. Nil: the sender runs in this process.
	Spawn func(ctx context.Context, args []string) (*exec.Cmd, error)
	// BusyPoll runs the handler and the baseline alike in busy-poll mode (spinning on
	// recvmmsg on a locked OS thread, feed.Config.BusyPoll); PinCPU pins both to CPU.
	BusyPoll bool
	PinCPU   bool
	CPU      int
	// Rounds is how many times each rate is measured through each receiver, handler and
	// baseline alternating (default 1): their histograms and counts are merged, so that
	// the two see the machine's changing load alike rather than one after the other.
	Rounds int
	// SharedSockets joins the groups, handler and baseline alike, on shared sockets
	// (mcast.PollerConfig.Shared, feed.Config.SharedSockets); the caller makes room for
	// them all on one socket (net.ipv4.igmp_max_memberships) or gets more sockets.
	SharedSockets bool
	// SpinPacing makes the paced publisher spin through its waits (publisher.Config.SpinWait)
	// instead of sleeping: each datagram leaves when it is due, where Go's timers, which
	// wake a sub-millisecond sleep up to a millisecond late, make a sleeping publisher send
	// a millisecond's datagrams at once, and a datagram's latency then includes its place
	// in that burst (tens of µs at 10k msgs/s): the publisher's, not the receiver's. It
	// keeps the sender's CPU busy while data flows.
	SpinPacing bool
	// NoWarm turns off the handler's cache warming in busy-poll mode (feed.Config.NoWarm).
	NoWarm bool
	// StageEvery is the handler's stage sample (feed.Config.StageEvery; 0: its default,
	// one message in 8 of each channel's; 1: every message).
	StageEvery int
	// Progress, if set, is told which step starts: "[3/9] handler at 100000 msgs/s".
	Progress func(step string)
}

func (c *Config) defaults() error {
	if c.Templates == nil {
		return errors.New("bench: no templates")
	}
	if c.Rates == nil {
		c.Rates = []float64{10000, 100000, 0}
	}
	for _, r := range c.Rates {
		if r < 0 {
			return fmt.Errorf("bench: rate %v is negative", r)
		}
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = c.Duration / 10
	}
	if c.Warmup >= c.Duration {
		return fmt.Errorf("bench: warm-up %v not shorter than the duration %v", c.Warmup, c.Duration)
	}
	if c.Instruments <= 0 {
		c.Instruments = 256
	}
	if c.BlastDatagrams <= 0 {
		c.BlastDatagrams = 300000
	}
	if c.Port == 0 {
		c.Port = 32000
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	return nil
}

// Results are what Run measured.
type Results struct {
	Started     time.Time
	Took        time.Duration
	Env         Env
	Duration    time.Duration // per end-to-end run
	Rounds      int           // runs per rate and receiver, alternating (Config.Rounds)
	Warmup      time.Duration
	Instruments int
	Blast       int // datagrams of the maximum-rate run
	// SenderProcess reports that the senders ran in child processes (Config.Spawn).
	SenderProcess bool
	// BusyPoll, PinCPU, CPU and SharedSockets are the receivers' mode (Config).
	BusyPoll      bool
	PinCPU        bool
	CPU           int
	SharedSockets bool
	// SpinPacing and NoWarm are Config's; StageEvery is the handler's stage sample in
	// effect (feed.Config.StageEvery, its default filled in).
	SpinPacing bool
	NoWarm     bool
	StageEvery int
	Micro      []MicroResult
	Rates      []RateResult
}

// Env describes the machine.
type Env struct {
	GoVersion, OS, Arch, Kernel, CPU string
	NumCPU, GOMAXPROCS               int
	LoadAvg                          string // /proc/loadavg's 1, 5 and 15 minute averages at the start
}

// RateResult is one publishing rate through the handler and through the baseline.
type RateResult struct {
	Rate     float64 // target, incremental datagrams per second; 0: as fast as possible
	Handler  Measurement
	Baseline Measurement
}

// RateLabel names a target rate: "10k", "100k", "max".
func RateLabel(rate float64) string {
	switch {
	case rate == 0:
		return "max"
	case rate >= 1e6 && int64(rate)%1e6 == 0:
		return fmt.Sprintf("%dM", int64(rate/1e6))
	case rate >= 1e3 && int64(rate)%1e3 == 0:
		return fmt.Sprintf("%dk", int64(rate/1e3))
	}
	return fmt.Sprintf("%g", rate)
}

// Measurement is one end-to-end run.
type Measurement struct {
	Receiver    string        // "handler" or "baseline"
	Sent        uint64        // incremental datagrams the publisher sent
	Entries     uint64        // book entries in them
	Received    uint64        // incremental datagrams received (the handler: applied in sequence)
	Elapsed     time.Duration // from the start of the data to the last datagram received
	Rate        float64       // Received / Elapsed
	KernelDrops uint64        // datagrams the kernel dropped (SO_RXQ_OVFL)
	Gaps        uint64        // holes the handler detected
	// Stages are the latency histograms (nanoseconds) after the warm-up. The handler
	// fills every stage; the baseline StageWire (SendingTime to kernel receive time) and
	// StageTotal (SendingTime to the return of recvmmsg).
	Stages [feed.NumStages]*hdrhistogram.Histogram
	// Recv is kernel rx->received: the kernel's receive time to the return of the
	// read (recvmmsg) that handed the datagram over, for both receivers (the handler's
	// feed.DecodeSplit Received, the baseline's ReceiveLatency). Work is the handler's
	// received->decoded (its DecodeSplit Work); nil for the baseline.
	Recv, Work *hdrhistogram.Histogram
	// Faults and Preempted are the minor page faults and the involuntary context switches
	// of the receiving process (the bench's; the sender is a child) from the end of the
	// warm-up to the end of the publisher's sending, the part the histograms hold: a page
	// touched for the first time on the receiving thread holds up the datagrams behind it
	// for a fault's microseconds.
	Faults, Preempted uint64
}

// merge adds o, another run of the same rate and receiver, to m: counts and times are
// summed, the rate is the sum's, the histograms are merged.
func (m *Measurement) merge(o *Measurement) {
	m.Sent += o.Sent
	m.Entries += o.Entries
	m.Received += o.Received
	m.Elapsed += o.Elapsed
	if m.Elapsed > 0 {
		m.Rate = float64(m.Received) / m.Elapsed.Seconds()
	}
	m.KernelDrops += o.KernelDrops
	m.Gaps += o.Gaps
	m.Faults += o.Faults
	m.Preempted += o.Preempted
	mergeInto := func(dst **hdrhistogram.Histogram, src *hdrhistogram.Histogram) {
		switch {
		case src == nil:
		case *dst == nil:
			*dst = src
		default:
			(*dst).Merge(src)
		}
	}
	for i := range m.Stages {
		mergeInto(&m.Stages[i], o.Stages[i])
	}
	mergeInto(&m.Recv, o.Recv)
	mergeInto(&m.Work, o.Work)
}

// Total returns the tick-to-receiver histogram.
func (m *Measurement) Total() *hdrhistogram.Histogram { return m.Stages[feed.StageTotal] }

// Run runs the microbenchmarks, then each rate through the handler and the baseline. It
// opens multicast sockets on loopback: call it in a private network namespace.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	res := &Results{Started: time.Now().UTC(), Env: env(), Duration: cfg.Duration, Rounds: cfg.Rounds, Warmup: cfg.Warmup, Instruments: cfg.Instruments, Blast: cfg.BlastDatagrams,
		SenderProcess: cfg.Spawn != nil, BusyPoll: cfg.BusyPoll, PinCPU: cfg.PinCPU, CPU: cfg.CPU,
		SharedSockets: cfg.SharedSockets, SpinPacing: cfg.SpinPacing, NoWarm: cfg.NoWarm, StageEvery: cfg.StageEvery}
	if res.StageEvery == 0 {
		res.StageEvery = feed.DefaultStageEvery
	}
	var micro []Benchmark
	if !cfg.NoMicro {
		var err error
		if micro, err = Micro(cfg.Templates); err != nil {
			return nil, err
		}
	}
	steps, step := len(micro)+2*cfg.Rounds*len(cfg.Rates), 0
	next := func(what string) {
		step++
		cfg.Progress(fmt.Sprintf("[%d/%d] %s", step, steps, what))
	}
	for _, m := range micro {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next("micro " + m.Name)
		mr, err := RunMicro(m, cfg.Benchtime)
		if err != nil {
			return nil, err
		}
		res.Micro = append(res.Micro, mr)
	}
	port := cfg.Port
	for _, rate := range cfg.Rates {
		rr := RateResult{Rate: rate}
		for round := range cfg.Rounds {
			for _, recv := range []string{"handler", "baseline"} {
				what := fmt.Sprintf("%s at %s msgs/s (%v)", recv, RateLabel(rate), cfg.Duration)
				if rate == 0 {
					what = fmt.Sprintf("%s at max msgs/s (%d datagrams)", recv, cfg.BlastDatagrams)
				}
				if cfg.Rounds > 1 {
					what += fmt.Sprintf(", round %d of %d", round+1, cfg.Rounds)
				}
				next(what)
				m, err := measure(ctx, &cfg, rate, port, recv)
				if err != nil {
					return nil, err
				}
				port++
				into := &rr.Handler
				if recv == "baseline" {
					into = &rr.Baseline
				}
				if round == 0 {
					*into = m
				} else {
					into.merge(&m)
				}
			}
		}
		res.Rates = append(res.Rates, rr)
	}
	res.Took = time.Since(res.Started)
	return res, nil
}

// receiver is what measure needs of the handler or the baseline.
type receiver interface {
	run(ctx context.Context) error
	received(ctx context.Context) uint64
	resetLatency(ctx context.Context)
	finish(m *Measurement)
}

func measure(ctx context.Context, cfg *Config, rate float64, port uint16, kind string) (Measurement, error) {
	m := Measurement{Receiver: kind}
	where := fmt.Sprintf("bench: %s at %s msgs/s", kind, RateLabel(rate))
	ins, err := publisher.GenerateInstruments(cfg.Instruments)
	if err != nil {
		return m, fmt.Errorf("%s: %w", where, err)
	}
	symbols := make([]string, len(ins))
	for i, in := range ins {
		symbols[i] = in.Symbol
	}
	src, err := newSource(cfg, rate, port)
	if err != nil {
		return m, fmt.Errorf("%s: %w", where, err)
	}
	warmup := cfg.Warmup
	if rate == 0 {
		warmup = 0 // the books are built by the blast's first datagrams
	}
	groups := src.groups
	var recv receiver
	if kind == "handler" {
		h, err := feed.New(feed.Config{Topics: symbols, Templates: cfg.Templates, Port: port,
			BusyPoll: cfg.BusyPoll, PinCPU: cfg.PinCPU, CPU: cfg.CPU, SharedSockets: cfg.SharedSockets, NoWarm: cfg.NoWarm,
			StageEvery: cfg.StageEvery})
		if err != nil {
			return m, fmt.Errorf("%s: %w", where, err)
		}
		hr := &handlerReceiver{h: h}
		h.Subscribe(func(*feed.Event) { hr.events++ }, "*") // a subscriber, so that hand-off is measured
		recv = hr
	} else {
		b, err := NewBaseline(BaselineConfig{Groups: groups, BusyPoll: cfg.BusyPoll, PinCPU: cfg.PinCPU, CPU: cfg.CPU,
			Shared: cfg.SharedSockets})
		if err != nil {
			return m, err
		}
		recv = baselineReceiver{b}
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var recvErr error
	wg.Add(1)
	go func() { defer wg.Done(); recvErr = recv.run(rctx) }()

	var start time.Time
	warmed := make(chan struct{})
	var faults, preempted uint64 // the process's, when the measured part began (after the warm-up)
	measuring := false
	started := func() { // the sender is about to send: its process, if any, has started
		start = time.Now()
		go func() {
			defer close(warmed)
			if warmup == 0 {
				faults, preempted = processCounters()
				measuring = true
				return
			}
			select {
			case <-time.After(warmup):
				recv.resetLatency(rctx)
				faults, preempted = processCounters()
				measuring = true
			case <-rctx.Done():
			}
		}()
	}
	sendErr := src.send(ctx, started)
	endFaults, endPreempted := processCounters()
	if sendErr != nil && start.IsZero() {
		close(warmed)
	}
	m.Sent, m.Entries = src.sent()
	// Wait for the receiver to take what is in flight: until it has everything or it has
	// received nothing new for 300 ms.
	last, lastAt := uint64(0), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
		n := recv.received(rctx)
		if n != last {
			last, lastAt = n, time.Now()
		}
		if n >= m.Sent || time.Since(lastAt) > 300*time.Millisecond {
			break
		}
	}
	stop()
	wg.Wait()
	<-warmed
	if measuring && endFaults >= faults && endPreempted >= preempted { // not if the sending ended within the warm-up
		m.Faults, m.Preempted = endFaults-faults, endPreempted-preempted
	}
	if sendErr != nil {
		return m, fmt.Errorf("%s: sending: %w", where, sendErr)
	}
	if recvErr != nil && !errors.Is(recvErr, context.Canceled) {
		return m, fmt.Errorf("%s: %w", where, recvErr)
	}
	if err := ctx.Err(); err != nil {
		return m, err
	}
	recv.finish(&m)
	m.Elapsed = lastAt.Sub(start)
	if m.Elapsed > 0 {
		m.Rate = float64(m.Received) / m.Elapsed.Seconds()
	}
	return m, nil
}

type handlerReceiver struct {
	h      *feed.Handler
	events uint64
}

func (r *handlerReceiver) run(ctx context.Context) error { return r.h.Run(ctx) }

func (r *handlerReceiver) received(ctx context.Context) uint64 {
	var n uint64
	_ = r.h.Do(ctx, func() { n = r.h.Messages() }) // not Stats: it walks the 256 channels on the receiving loop
	return n
}

func (r *handlerReceiver) resetLatency(ctx context.Context) {
	// Only the handler-wide histograms, which the report uses: resetting every channel's
	// would touch (and fault in) megabytes of pages while datagrams wait.
	_ = r.h.Do(ctx, func() {
		for _, hist := range r.h.StageLatency() {
			hist.Reset()
		}
		split := r.h.DecodeSplit()
		split.Received.Reset()
		split.Work.Reset()
	})
}

func (r *handlerReceiver) finish(m *Measurement) {
	st := r.h.Stats()
	m.Received, m.KernelDrops, m.Gaps = st.Messages, st.KernelDrops, st.Gaps
	m.Stages = *r.h.StageLatency()
	split := r.h.DecodeSplit()
	m.Recv, m.Work = split.Received, split.Work
}

type baselineReceiver struct{ b *Baseline }

func (r baselineReceiver) run(ctx context.Context) error   { return r.b.Run(ctx) }
func (r baselineReceiver) received(context.Context) uint64 { return r.b.Received() }
func (r baselineReceiver) resetLatency(context.Context)    { r.b.ResetLatency() }
func (r baselineReceiver) finish(m *Measurement) {
	m.Received, m.KernelDrops = r.b.Received(), r.b.KernelDrops()
	m.Stages[feed.StageWire], m.Stages[feed.StageTotal] = r.b.Latency()
	m.Recv = r.b.ReceiveLatency()
}

func env() Env {
	e := Env{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	e.Kernel = kernelRelease()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			e.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return e
}
