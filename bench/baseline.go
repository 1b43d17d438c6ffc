package bench

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"fastfeed/internal/cpupin"
	"fastfeed/mcast"
)

// busyPollMicros is the SO_BUSY_POLL of a busy-polling baseline: the handler's default
// (feed.Config.BusyPollMicros).
const busyPollMicros = 50

// incrementalTemplate is the template ID of MDIncRefresh (fixtures/templates.xml).
const incrementalTemplate = 1

// BaselineConfig configures a Baseline.
type BaselineConfig struct {
	Groups     []netip.AddrPort // joined on loopback, one socket each
	ReadBuffer int              // SO_RCVBUF per socket (default 8 MiB, as the handler's)
	Batch      int              // datagrams per recvmmsg (default 64, as the handler's)
	// BusyPoll, PinCPU and CPU are the handler's receive mode (feed.Config): spin on
	// recvmmsg on a locked OS thread, pinned to CPU.
	BusyPoll bool
	PinCPU   bool
	CPU      int
	// Shared joins the groups on shared sockets, as the handler's
	// feed.Config.SharedSockets.
	Shared bool
}

// Baseline is the bare receiver: it drains its sockets with recvmmsg and, for each
// incremental refresh, reads the kernel receive time and the SendingTime from the
// header. Nothing else: no sequencing, no decoding beyond the header, no book.
type Baseline struct {
	poller *mcast.Poller
	batch  int
	cfg    BaselineConfig

	mu       sync.Mutex // guards the histograms against Reset while Run records
	wire     *hdrhistogram.Histogram
	recv     *hdrhistogram.Histogram // kernel rx -> recvmmsg returned
	total    *hdrhistogram.Histogram
	received atomic.Uint64 // incremental datagrams
	other    atomic.Uint64 // other datagrams (heartbeats, definitions, ...)
}

// NewBaseline joins cfg.Groups.
func NewBaseline(cfg BaselineConfig) (*Baseline, error) {
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = 8 << 20
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.PinCPU {
		if err := cpupin.Check(cfg.CPU); err != nil || cfg.CPU < 0 {
			return nil, fmt.Errorf("bench: baseline: pin to CPU %d: %v", cfg.CPU, err)
		}
	}
	p, err := mcast.NewPoller(mcast.PollerConfig{ReadBuffer: cfg.ReadBuffer, BatchSize: cfg.Batch, Shared: cfg.Shared})
	if err != nil {
		return nil, fmt.Errorf("bench: baseline: %w", err)
	}
	for _, g := range cfg.Groups {
		if _, err := p.JoinGroup(g); err != nil {
			p.Close()
			return nil, fmt.Errorf("bench: baseline: %w", err)
		}
	}
	return &Baseline{poller: p, batch: cfg.Batch, cfg: cfg, wire: NewHistogram(), recv: NewHistogram(), total: NewHistogram()}, nil
}

// Run receives until ctx ends, then closes the sockets. With BusyPoll it spins as the
// handler does (feed.Handler.Run): on a locked OS thread, SO_BUSY_POLL where permitted.
func (b *Baseline) Run(ctx context.Context) error {
	defer b.poller.Close()
	if b.cfg.BusyPoll || b.cfg.PinCPU {
		cpu := -1
		if b.cfg.PinCPU {
			cpu = b.cfg.CPU
		}
		release, err := cpupin.Lock(cpu)
		if err != nil {
			return fmt.Errorf("bench: baseline: %w", err)
		}
		defer release()
	}
	if b.cfg.BusyPoll {
		_ = b.poller.SetBusyPoll(busyPollMicros) // as the handler: spin without it if refused
	}
	msgs := make([]mcast.Message, b.batch)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	var done atomic.Bool
	stop := context.AfterFunc(ctx, func() { done.Store(true) })
	defer stop()
	for !done.Load() {
		var n int
		var err error
		if b.cfg.BusyPoll {
			n, err = b.poller.Poll(msgs)
		} else {
			n, err = b.poller.ReadBatch(msgs, time.Millisecond)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("bench: baseline read: %w", err)
		}
		if n == 0 {
			continue
		}
		now := time.Now().UnixNano()
		b.mu.Lock()
		for i := range msgs[:n] {
			m := &msgs[i]
			tid, sent, ok := Header(m.Buf[:m.N])
			if !ok || tid != incrementalTemplate {
				b.other.Add(1)
				continue
			}
			b.received.Add(1)
			if m.KernelTime > 0 {
				_ = b.wire.RecordValue(clamp(m.KernelTime - sent))
				_ = b.recv.RecordValue(clamp(now - m.KernelTime))
			}
			_ = b.total.RecordValue(clamp(now - sent))
		}
		b.mu.Unlock()
	}
	return ctx.Err()
}

func clamp(d int64) int64 { return min(max(d, 0), int64(MaxLatency)) }

// Received returns the incremental datagrams received so far. It may be called while
// Run runs.
func (b *Baseline) Received() uint64 { return b.received.Load() }

// KernelDrops returns the datagrams the kernel dropped on the sockets, as reported with
// the datagrams read (SO_RXQ_OVFL). Call it after Run returns.
func (b *Baseline) KernelDrops() uint64 {
	var n uint64
	for i := 0; i < b.poller.Len(); i++ {
		n += b.poller.Drops(i)
	}
	return n
}

// ResetLatency empties the histograms (after a warm-up). It may be called while Run runs.
func (b *Baseline) ResetLatency() {
	b.mu.Lock()
	b.wire.Reset()
	b.recv.Reset()
	b.total.Reset()
	b.mu.Unlock()
}

// Latency returns the histograms (nanoseconds): wire is SendingTime to the kernel's
// receive time, total SendingTime to the return of recvmmsg. Call it after Run returns.
func (b *Baseline) Latency() (wire, total *hdrhistogram.Histogram) { return b.wire, b.total }

// ReceiveLatency returns the histogram (nanoseconds) of the kernel's receive time to the
// return of recvmmsg: how long a datagram waited for the receiver to read it, the
// handler's feed.DecodeSplit Received measured the same way. Call it after Run returns.
func (b *Baseline) ReceiveLatency() *hdrhistogram.Histogram { return b.recv }

// Header reads the template ID and the SendingTime of a fastfeed datagram (the 4-byte
// sequence preamble, then a FAST message whose presence map carries the template ID and
// whose first fields are MsgSeqNum and SendingTime), without decoding the rest.
func Header(d []byte) (template uint32, sendingTime int64, ok bool) {
	if len(d) < 5 || d[4]&0x40 == 0 { // no template ID in the presence map
		return 0, 0, false
	}
	_, d, ok = stopBit(d[4:]) // the presence map
	if !ok {
		return 0, 0, false
	}
	tid, d, ok := stopBit(d)
	if !ok {
		return 0, 0, false
	}
	_, d, ok = stopBit(d) // MsgSeqNum
	if !ok {
		return 0, 0, false
	}
	t, _, ok := stopBit(d)
	if !ok || t > 1<<63-1 || tid > 1<<32-1 {
		return 0, 0, false
	}
	return uint32(tid), int64(t), true
}

// stopBit reads one FAST stop-bit encoded unsigned integer (at most 10 bytes).
func stopBit(d []byte) (v uint64, rest []byte, ok bool) {
	for i := 0; i < len(d) && i < 10; i++ {
		if i == 9 && v > 1<<57-1 {
			return 0, nil, false
		}
		v = v<<7 | uint64(d[i]&0x7f)
		if d[i]&0x80 != 0 {
			return v, d[i+1:], true
		}
	}
	return 0, nil, false
}
