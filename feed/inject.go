package feed

import "math/rand/v2"

// injector applies receive-path faults deterministically. It holds at most one datagram
// back for reordering, in a buffer it owns.
type injector struct {
	cfg     Inject
	rng     *rand.Rand
	held    []byte
	heldGrp int
	holding bool
}

func newInjector(cfg Inject) *injector {
	return &injector{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), held: make([]byte, 0, 2048)}
}

// apply passes one datagram through the faults, calling emit for each datagram that
// survives (zero, one or two times, possibly with a held-back one first or after).
func (in *injector) apply(group int, b []byte, st *Stats, emit func(group int, b []byte)) {
	if in.rng.Float64() < in.cfg.Loss {
		st.InjectedLoss++
		return
	}
	if !in.holding && in.rng.Float64() < in.cfg.Reorder {
		in.held = append(in.held[:0], b...)
		in.heldGrp, in.holding = group, true
		st.InjectedReord++
		return
	}
	emit(group, b)
	if in.rng.Float64() < in.cfg.Dup {
		st.InjectedDup++
		emit(group, b)
	}
	if in.holding {
		in.holding = false
		emit(in.heldGrp, in.held)
	}
}

// flush releases a held datagram (when no more traffic comes to overtake it).
func (in *injector) flush(emit func(group int, b []byte)) {
	if in.holding {
		in.holding = false
		emit(in.heldGrp, in.held)
	}
}
