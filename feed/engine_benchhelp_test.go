package feed

import (
	"net/netip"
	"testing"

	"fastfeed/md"
)

// benchEngine, benchWork and benchRetransmitter adapt engine_bench_test.go to the
// engine. (Before it, they drove a Detached handler, and a retransmission was encoded
// to FAST again, as feed/fixrecovery did, to be decoded by the handler.)
func benchEngine(tb testing.TB, syms []string, rec Recovery) *Engine {
	cfg := Config{Topics: syms, Templates: templates(tb), Port: port}
	if rec != nil {
		cfg.Recovery = rec
	}
	e, err := NewEngine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func benchWork(e *Engine, now int64) { e.DoWork(now) }

type benchTarget = *Engine

type benchRetransmitter struct{ m md.Message }

// retransmit hands the parsed message over as it is, as feed/fixrecovery does. The
// message is reused: DoWork has applied it before the next call.
func (r *benchRetransmitter) retransmit(_ testing.TB, _ *md.Codec, s Sink, ch string, seq uint32, m *md.Incremental) {
	r.m.Kind, r.m.Incremental = md.KindIncremental, *m
	s.Retransmitted(ch, seq, &r.m)
}

// socketIndex is socketOf for a group known to be joined.
func (e *Engine) socketIndex(dst netip.AddrPort) int {
	i, _ := e.socketOf(dst)
	return i
}
