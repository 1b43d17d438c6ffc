package replay

import "fmt"

// IPv4 reassembly of UDP datagrams, bounded in every dimension:
//
//   - datagrams are keyed by (source, destination, identification); the
//     protocol is always UDP, as fragments of other protocols are skipped;
//   - at most Options.MaxReassemblies datagrams are open at once; a new one
//     evicts the one whose first fragment came earliest in the file;
//   - at most Options.MaxFragments fragments and Options.MaxDatagramSize bytes
//     per datagram;
//   - a datagram still open Options.FragmentTimeout of capture time after its
//     first fragment is dropped when the next fragment arrives;
//   - an exact duplicate of a fragment already held is dropped alone; a
//     fragment that overlaps another, has a length that is not a multiple of
//     8 while more follow, ends past the datagram's last fragment or past the
//     limit, or disagrees on where the datagram ends is rejected with
//     ErrBadFragment, and the datagram it belonged to is dropped whole (as
//     Linux does since it stopped accepting overlaps).
//
// Each open datagram owns a buffer of MaxDatagramSize bytes, allocated on its
// slot's first use and reused after, so the memory held is at most
// MaxReassemblies * MaxDatagramSize bytes.

type fragKey struct {
	src, dst [4]byte
	id       uint16
}

type fragSpan struct{ off, end int }

type reasmSlot struct {
	key    fragKey
	inUse  bool
	first  uint64 // record number of the first fragment taken (age for eviction)
	start  int64  // capture time of that fragment, ns
	total  int    // datagram (IPv4 payload) length, -1 until the last fragment
	have   int    // bytes held
	maxEnd int    // end of the highest fragment held
	spans  []fragSpan
	buf    []byte
}

type reassembler struct {
	slots    []reasmSlot
	open     int // slots in use
	maxFrags int
	maxSize  int
	timeout  int64 // ns of capture time
}

func newReassembler(o *Options) reassembler {
	return reassembler{
		slots:    make([]reasmSlot, o.MaxReassemblies),
		maxFrags: o.MaxFragments,
		maxSize:  o.MaxDatagramSize,
		timeout:  int64(o.FragmentTimeout),
	}
}

// add takes the fragment f of record num captured at ts. It returns the
// reassembled IPv4 payload (UDP header first) when f completes its datagram,
// along with the number of fragments held before f; the payload stays valid
// until the next call. It counts in st every fragment it holds or drops,
// except f when it completes a datagram or is rejected: the caller counts
// that one.
func (a *reassembler) add(f *ipv4UDP, num uint64, ts int64, st *Stats) (payload []byte, held int, err error) {
	a.expire(ts, st)
	key := fragKey{src: f.src, dst: f.dst, id: f.id}
	s := a.find(key)
	n := len(f.payload)
	off, end := f.fragOff, f.fragOff+n

	if s != nil {
		for _, sp := range s.spans {
			if sp.off == off && sp.end == end {
				st.Fragments++
				st.FragmentsDropped++ // an exact duplicate, as a capture on two taps gives
				return nil, 0, nil
			}
		}
	}
	switch {
	case n == 0:
		return nil, 0, a.reject(s, st, "empty fragment at offset %d", off)
	case f.more && n%8 != 0:
		return nil, 0, a.reject(s, st, "fragment at offset %d has %d bytes, not a multiple of 8, and more follow", off, n)
	case end > a.maxSize:
		return nil, 0, a.reject(s, st, "fragment ends at byte %d, past the %d-byte datagram limit", end, a.maxSize)
	}
	if s != nil {
		switch {
		case !f.more && s.total >= 0 && s.total != end:
			return nil, 0, a.reject(s, st, "last fragment ends at byte %d, an earlier last fragment at %d", end, s.total)
		case !f.more && s.maxEnd > end:
			return nil, 0, a.reject(s, st, "last fragment ends at byte %d, before data held up to %d", end, s.maxEnd)
		case f.more && s.total >= 0 && end > s.total:
			return nil, 0, a.reject(s, st, "fragment ends at byte %d, past the datagram's end %d", end, s.total)
		case len(s.spans) >= a.maxFrags:
			return nil, 0, a.reject(s, st, "more than %d fragments", a.maxFrags)
		}
		for _, sp := range s.spans {
			if off < sp.end && sp.off < end {
				return nil, 0, a.reject(s, st, "fragment bytes %d-%d overlap bytes %d-%d", off, end, sp.off, sp.end)
			}
		}
	} else {
		s = a.alloc(key, num, ts, st)
	}

	held = len(s.spans)
	copy(s.buf[off:end], f.payload)
	s.spans = append(s.spans, fragSpan{off, end})
	s.have += n
	if end > s.maxEnd {
		s.maxEnd = end
	}
	if !f.more {
		s.total = end
	}
	if s.total >= 0 && s.have == s.total {
		// No overlaps, so the bytes held cover [0, total) exactly.
		payload = s.buf[:s.total]
		a.free(s)
		return payload, held, nil
	}
	st.Fragments++
	return nil, 0, nil
}

// reject drops the datagram of slot s, if any, and returns the error for the
// fragment that spoiled it.
func (a *reassembler) reject(s *reasmSlot, st *Stats, format string, args ...any) error {
	if s != nil {
		st.FragmentsDropped += uint64(len(s.spans))
		a.free(s)
	}
	return fmt.Errorf("%w: "+format, append([]any{ErrBadFragment}, args...)...)
}

func (a *reassembler) find(key fragKey) *reasmSlot {
	if a.open == 0 {
		return nil
	}
	for i := range a.slots {
		if s := &a.slots[i]; s.inUse && s.key == key {
			return s
		}
	}
	return nil
}

// alloc opens a slot for key, evicting the oldest datagram if all are open.
func (a *reassembler) alloc(key fragKey, num uint64, ts int64, st *Stats) *reasmSlot {
	var s *reasmSlot
	for i := range a.slots {
		c := &a.slots[i]
		if !c.inUse {
			s = c
			break
		}
		if s == nil || c.first < s.first {
			s = c
		}
	}
	if s.inUse {
		st.FragmentsDropped += uint64(len(s.spans))
		a.free(s)
	}
	if s.buf == nil {
		s.buf = make([]byte, a.maxSize)
		s.spans = make([]fragSpan, 0, min(a.maxFrags, 16))
	}
	s.key = key
	s.inUse = true
	s.first = num
	s.start = ts
	s.total = -1
	a.open++
	return s
}

func (a *reassembler) free(s *reasmSlot) {
	s.inUse = false
	s.spans = s.spans[:0]
	s.have = 0
	s.maxEnd = 0
	a.open--
}

// expire drops the datagrams whose first fragment is more than the timeout
// older than ts. Capture time running backwards expires nothing.
func (a *reassembler) expire(ts int64, st *Stats) {
	if a.open == 0 {
		return
	}
	for i := range a.slots {
		if s := &a.slots[i]; s.inUse && ts-s.start > a.timeout {
			st.FragmentsDropped += uint64(len(s.spans))
			a.free(s)
		}
	}
}

// dropAll drops every open datagram, at the end of the file.
func (a *reassembler) dropAll(st *Stats) {
	for i := range a.slots {
		if s := &a.slots[i]; s.inUse {
			st.FragmentsDropped += uint64(len(s.spans))
			a.free(s)
		}
	}
}
