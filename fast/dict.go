package fast

// dictionary holds the previous values of the operators that keep state. Every dictionary
// of every scope (global, template, type, named) is resolved to a slot when templates are
// loaded, so the decoder indexes an array instead of hashing names. Reset is O(1): an entry
// is defined only while its generation matches the dictionary's.
type dictionary struct {
	gen     uint32
	entries []entry
}

type entry struct {
	gen   uint32
	empty bool // assigned the empty (absent) value
	typ   Type
	i     int64 // integer (unsigned as bits) or decimal mantissa
	e     int32 // decimal exponent
	b     []byte
	// Decoder only: the value of b is also at arena offset off of the message being
	// decoded when msg equals the decoder's message counter.
	msg uint32
	off uint32
}

func newDictionary(slots int) dictionary {
	return dictionary{gen: 1, entries: make([]entry, slots)}
}

// reset makes every entry undefined.
func (d *dictionary) reset() {
	d.gen++
	if d.gen == 0 { // wrapped: entries from 2^32 resets ago would look defined
		for i := range d.entries {
			d.entries[i].gen = 0
		}
		d.gen = 1
	}
}

// state of a dictionary entry.
type state uint8

const (
	undefined state = iota
	empty
	assigned
)

func (d *dictionary) state(slot int32) (state, *entry) {
	e := &d.entries[slot]
	switch {
	case e.gen != d.gen:
		return undefined, e
	case e.empty:
		return empty, e
	}
	return assigned, e
}

func (d *dictionary) setInt(slot int32, t Type, v int64, exp int32) {
	e := &d.entries[slot]
	e.gen, e.empty, e.typ, e.i, e.e = d.gen, false, t, v, exp
}

func (d *dictionary) setBytes(slot int32, t Type, b []byte) {
	e := &d.entries[slot]
	e.gen, e.empty, e.typ, e.msg = d.gen, false, t, 0
	e.b = append(e.b[:0], b...)
}

func (d *dictionary) setEmpty(slot int32, t Type) {
	e := &d.entries[slot]
	e.gen, e.empty, e.typ = d.gen, true, t
}
