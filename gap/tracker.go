package gap

// Tracker is a Sequencer that holds datagrams as bytes: it keeps a copy of what it buffers.
type Tracker struct {
	Sequencer[[]byte]
}

// New returns a Tracker waiting for its first datagram.
func New(cfg Config) *Tracker {
	return &Tracker{Sequencer: *NewSequencer[[]byte](cfg)}
}

// Offer takes a datagram with sequence number seq received at time now (ns) from src.
// On Deliver the caller applies payload at once; Offer does not keep it. On Buffered the
// tracker keeps a copy.
func (t *Tracker) Offer(seq uint32, src Source, payload []byte, now int64) Verdict {
	v, slot := t.Sequencer.Offer(seq, src, now)
	if slot != nil {
		*slot = append((*slot)[:0], payload...)
	}
	return v
}

// Pop returns the next datagram in sequence if it is buffered, removing it. The payload is
// valid until the next call on the tracker. Call Pop after every Deliver and after
// SnapshotApplied until it returns ok=false.
func (t *Tracker) Pop() (seq uint32, payload []byte, ok bool) {
	seq, p, ok := t.Sequencer.Pop()
	if !ok {
		return 0, nil, false
	}
	return seq, *p, true
}
