package md

// Message is one decoded message of any kind: Kind says which field holds it. A Codec
// embeds the Message it last decoded (aliasing its buffers); CopyFrom makes a Message that
// owns its bytes, reusing its own storage, so that a Message kept in a ring (what waits
// behind a sequence hole) costs no allocation once its storage has grown.
type Message struct {
	Kind        Kind
	Incremental Incremental
	Snapshot    Snapshot
	Definition  Definition
	Status      Status
	Heartbeat   Heartbeat
	Reset       Reset

	buf []byte // storage of the byte fields after CopyFrom
}

// CopyFrom makes m a deep copy of src's message (the field of src.Kind only): byte slices
// and entries are copied into m's own storage, which is reused from call to call.
func (m *Message) CopyFrom(src *Message) {
	m.Kind = src.Kind
	m.buf = m.buf[:0]
	switch src.Kind {
	case KindIncremental:
		s, d := &src.Incremental, &m.Incremental
		m.reserve(entriesSize(s.Entries))
		entries := d.Entries[:0]
		d.Header, d.Continued = s.Header, s.Continued
		d.Entries = m.copyEntries(entries, s.Entries)
	case KindSnapshot:
		s, d := &src.Snapshot, &m.Snapshot
		m.reserve(len(s.Symbol) + entriesSize(s.Entries))
		entries := d.Entries[:0]
		*d = *s
		d.Symbol = m.bytes(s.Symbol)
		d.Entries = m.copyEntries(entries, s.Entries)
	case KindDefinition:
		s := &src.Definition
		m.reserve(len(s.Symbol) + len(s.SecurityType) + len(s.Currency) + len(s.Description) + len(s.Channel))
		m.Definition = *s
		d := &m.Definition
		d.Symbol, d.SecurityType, d.Currency = m.bytes(s.Symbol), m.bytes(s.SecurityType), m.bytes(s.Currency)
		d.Description, d.Channel = m.bytes(s.Description), m.bytes(s.Channel)
	case KindStatus:
		s := &src.Status
		m.reserve(len(s.Symbol) + len(s.SessionID) + len(s.Text))
		m.Status = *s
		d := &m.Status
		d.Symbol, d.SessionID, d.Text = m.bytes(s.Symbol), m.bytes(s.SessionID), m.bytes(s.Text)
	case KindHeartbeat:
		m.Heartbeat = src.Heartbeat
	case KindReset:
		m.Reset = src.Reset
	}
}

// Header returns the header of the message of m's kind.
func (m *Message) Header() Header {
	switch m.Kind {
	case KindIncremental:
		return m.Incremental.Header
	case KindSnapshot:
		return m.Snapshot.Header
	case KindDefinition:
		return m.Definition.Header
	case KindStatus:
		return m.Status.Header
	case KindHeartbeat:
		return m.Heartbeat.Header
	case KindReset:
		return m.Reset.Header
	}
	return Header{}
}

func entriesSize(es []Entry) int {
	n := 0
	for i := range es {
		n += len(es[i].Symbol) + len(es[i].ID)
	}
	return n
}

// reserve makes room for n bytes in buf at once, so that the slices bytes hands out
// stay in one array.
func (m *Message) reserve(n int) {
	if cap(m.buf) < n {
		m.buf = make([]byte, 0, max(n, 2*cap(m.buf)))
	}
}

// bytes copies b into buf; nil stays nil.
func (m *Message) bytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	i := len(m.buf)
	m.buf = append(m.buf, b...)
	return m.buf[i:len(m.buf):len(m.buf)]
}

func (m *Message) copyEntries(dst, src []Entry) []Entry {
	dst = append(dst, src...)
	for i := range dst {
		dst[i].Symbol, dst[i].ID = m.bytes(src[i].Symbol), m.bytes(src[i].ID)
	}
	return dst
}
