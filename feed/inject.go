package feed

import (
	"math/rand/v2"

	"fastfeed/gap"
)

// heldSlots is how many datagrams the injector can hold back at once (reordered or
// delayed); when all are taken, a datagram that would be held is delivered at once.
const heldSlots = 64

// heldDatagram is a datagram the injector holds back, in a buffer it owns.
type heldDatagram struct {
	buf   []byte
	group int
	after int   // deliver after this many more datagrams (reordering); 0: by time
	at    int64 // deliver at this time (delay)
	used  bool
}

// injector applies receive-path faults deterministically: the same seed and the same
// arrival order give the same faults. It allocates only when it is made.
type injector struct {
	cfg  Inject
	rng  *rand.Rand
	seen uint64 // datagrams of the faulted line(s) so far, for the burst
	held [heldSlots]heldDatagram
	nh   int // slots in use
}

func newInjector(cfg Inject) *injector {
	in := &injector{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if in.cfg.Window < 1 {
		in.cfg.Window = 1
	}
	for i := range in.held {
		in.held[i].buf = make([]byte, 0, 2048)
	}
	return in
}

// apply passes one datagram of socket group, from line, received at now, through the
// faults, calling emit for each datagram that comes out: none, the datagram, its copy,
// and held-back datagrams that are due.
func (in *injector) apply(group int, line gap.Source, b []byte, now int64, st *Stats, emit func(group int, b []byte)) {
	if !in.cfg.faults(line) {
		emit(group, b)
		in.release(now, false, emit)
		return
	}
	in.seen++
	switch {
	case in.cfg.Burst > 0 && in.seen > in.cfg.BurstAt && in.seen <= in.cfg.BurstAt+uint64(in.cfg.Burst):
		st.InjectedLoss++
	case in.cfg.Loss > 0 && in.rng.Float64() < in.cfg.Loss:
		st.InjectedLoss++
	case in.cfg.Reorder > 0 && in.rng.Float64() < in.cfg.Reorder && in.hold(group, b, 1+in.rng.IntN(in.cfg.Window), 0):
		st.InjectedReord++
	case in.cfg.Delay > 0 && in.rng.Float64() < in.cfg.Delay && in.hold(group, b, 0, now+int64(in.cfg.DelayBy)):
		st.InjectedDelay++
	default:
		emit(group, b)
		if in.cfg.Dup > 0 && in.rng.Float64() < in.cfg.Dup {
			st.InjectedDup++
			emit(group, b)
		}
	}
	in.release(now, true, emit)
}

// hold keeps a copy of b to deliver after more datagrams or at a time; false when
// every slot is taken.
func (in *injector) hold(group int, b []byte, after int, at int64) bool {
	if in.nh == heldSlots || len(b) > cap(in.held[0].buf) {
		return false
	}
	for i := range in.held {
		h := &in.held[i]
		if !h.used {
			if after > 0 {
				after++ // the release at the end of this apply counts one
			}
			h.buf = append(h.buf[:0], b...)
			h.group, h.after, h.at, h.used = group, after, at, true
			in.nh++
			return true
		}
	}
	return false
}

// release delivers the held datagrams that are due at now; counted says whether a
// datagram of the faulted lines just went by (reordered ones wait for a number of them).
func (in *injector) release(now int64, counted bool, emit func(group int, b []byte)) {
	if in.nh == 0 {
		return
	}
	for i := range in.held {
		h := &in.held[i]
		if !h.used {
			continue
		}
		if h.after > 0 {
			if !counted {
				continue
			}
			if h.after--; h.after > 0 {
				continue
			}
		} else if now < h.at {
			continue
		}
		h.used = false
		in.nh--
		emit(h.group, h.buf)
	}
}

// flush releases what is due at now when no traffic comes: delayed datagrams whose
// time has come, and every reordered one (nothing is left to overtake it).
func (in *injector) flush(now int64, emit func(group int, b []byte)) {
	if in.nh == 0 {
		return
	}
	for i := range in.held {
		if h := &in.held[i]; h.used && h.after > 0 {
			h.after = 1
		}
	}
	in.release(now, true, emit)
}
