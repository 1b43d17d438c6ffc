package feed

import (
	"testing"

	"fastfeed/md"
)

// benchEngine, benchWork and benchRetransmitter adapt engine_bench_test.go to the
// Detached handler (before the engine).
func benchEngine(tb testing.TB, syms []string, rec Recovery) *Handler {
	cfg := Config{Topics: syms, Templates: templates(tb), Port: port, Detached: true}
	if rec != nil {
		cfg.Recovery = rec
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func benchWork(h *Handler, now int64) { h.Poll(now) }

type benchRetransmitter struct{ buf []byte }

// retransmit does what feed/fixrecovery did: encode the parsed message to FAST again.
func (r *benchRetransmitter) retransmit(tb testing.TB, c *md.Codec, s Sink, ch string, seq uint32, m *md.Incremental) {
	var err error
	if r.buf, err = c.AppendIncremental(r.buf[:0], m); err != nil {
		tb.Fatal(err)
	}
	s.Retransmitted(ch, seq, r.buf)
}
