package fast

// Value is one field's value in a Message. Which members are meaningful depends on the
// field's type: Int holds integers (unsigned ones as their bits), a decimal's mantissa and a
// sequence's length; Exp a decimal's exponent; Off and Len locate string and byte vector
// contents in the message's byte arena, and Off is the index of the first child value of a
// sequence, group or dynamic template reference.
type Value struct {
	Int     int64
	Exp     int32
	Off     uint32
	Len     uint32
	Present bool
}

// Message is a decoded (or to-be-encoded) message: the template and a flat array of values,
// top-level fields first and then the blocks of sequence elements and groups. A Message is
// reused across Decode calls; after the first few messages it no longer allocates.
// Byte slices returned by its accessors stay valid until the next Decode or Reset.
type Message struct {
	Template *Template
	vals     []Value
	data     []byte
	refs     []*Template // targets of dynamic template references, indexed by Value.Exp
}

// Reset prepares m to be filled for template t: every field absent.
func (m *Message) Reset(t *Template) {
	m.Template = t
	m.vals = grow(m.vals[:0], len(t.Fields))
	m.data = m.data[:0]
	m.refs = m.refs[:0]
}

func (m *Message) refTemplate(v *Value) *Template { return m.refs[v.Exp] }

// grow extends vs by n zero values.
func grow(vs []Value, n int) []Value {
	l := len(vs)
	if cap(vs)-l < n {
		nv := make([]Value, l+n, 2*cap(vs)+n)
		copy(nv, vs)
		return nv
	}
	vs = vs[:l+n]
	clear(vs[l:])
	return vs
}

// Root returns the top-level fields of m as a Group.
func (m *Message) Root() Group {
	if m.Template == nil {
		return Group{m: m}
	}
	return Group{m: m, fields: m.Template.Fields}
}

// Group is a view of one block of values: the top level of a message, one element of a
// sequence, a group, or the fields of a dynamically referenced template. It is a small value
// and can be passed around freely; it stays valid while its Message is not reset.
type Group struct {
	m      *Message
	fields []*Field
	base   int
	tmpl   *Template // dynamic template reference target, else nil
}

// Fields returns the field instructions of g, in the order of their values.
func (g Group) Fields() []*Field { return g.fields }

// Len returns the number of fields of g.
func (g Group) Len() int { return len(g.fields) }

// Template returns the template of a dynamically referenced group, or nil.
func (g Group) Template() *Template { return g.tmpl }

// Value returns the raw value of field i.
func (g Group) Value(i int) *Value { return &g.m.vals[g.base+i] }

// Present reports whether field i has a value.
func (g Group) Present(i int) bool { return g.m.vals[g.base+i].Present }

// Uint returns the value of an unsigned integer field (0 if absent).
func (g Group) Uint(i int) uint64 { return uint64(g.m.vals[g.base+i].Int) }

// Int returns the value of a signed integer field (0 if absent).
func (g Group) Int(i int) int64 { return g.m.vals[g.base+i].Int }

// Decimal returns the mantissa and exponent of a decimal field (0, 0 if absent).
func (g Group) Decimal(i int) (mantissa int64, exponent int32) {
	v := &g.m.vals[g.base+i]
	return v.Int, v.Exp
}

// Bytes returns the contents of a string or byte vector field (nil if absent). The slice
// aliases the message and is valid until the next Decode or Reset.
func (g Group) Bytes(i int) []byte {
	v := &g.m.vals[g.base+i]
	if !v.Present {
		return nil
	}
	return g.m.data[v.Off : v.Off+v.Len : v.Off+v.Len]
}

// String returns a string field as a Go string. It allocates; hot paths use Bytes.
func (g Group) String(i int) string { return string(g.Bytes(i)) }

// Seq returns a sequence field. An absent sequence has length 0.
func (g Group) Seq(i int) Seq {
	v := &g.m.vals[g.base+i]
	return Seq{m: g.m, f: g.fields[i], base: int(v.Off), n: int(v.Int)}
}

// Group returns a group field; ok is false if the group is absent.
func (g Group) Group(i int) (sub Group, ok bool) {
	v := &g.m.vals[g.base+i]
	if !v.Present {
		return Group{}, false
	}
	return Group{m: g.m, fields: g.fields[i].Fields, base: int(v.Off)}, true
}

// Ref returns the message embedded by a dynamic template reference field.
func (g Group) Ref(i int) (sub Group, ok bool) {
	v := &g.m.vals[g.base+i]
	if !v.Present {
		return Group{}, false
	}
	t := g.m.refTemplate(v)
	return Group{m: g.m, fields: t.Fields, base: int(v.Off), tmpl: t}, true
}

// Seq is a view of a sequence field's elements.
type Seq struct {
	m    *Message
	f    *Field
	base int
	n    int
}

// Len returns the number of elements.
func (s Seq) Len() int { return s.n }

// Elem returns element j.
func (s Seq) Elem(j int) Group {
	return Group{m: s.m, fields: s.f.Fields, base: s.base + j*len(s.f.Fields)}
}

// Setters, used to build a message for the Encoder.

// SetUint sets an unsigned integer field.
func (g Group) SetUint(i int, v uint64) {
	g.m.vals[g.base+i] = Value{Int: int64(v), Present: true}
}

// SetInt sets a signed integer field.
func (g Group) SetInt(i int, v int64) {
	g.m.vals[g.base+i] = Value{Int: v, Present: true}
}

// SetDecimal sets a decimal field.
func (g Group) SetDecimal(i int, mantissa int64, exponent int32) {
	g.m.vals[g.base+i] = Value{Int: mantissa, Exp: exponent, Present: true}
}

// SetBytes sets a string or byte vector field, copying b into the message.
func (g Group) SetBytes(i int, b []byte) {
	off := len(g.m.data)
	g.m.data = append(g.m.data, b...)
	g.m.vals[g.base+i] = Value{Off: uint32(off), Len: uint32(len(b)), Present: true}
}

// SetString sets a string field, copying s into the message.
func (g Group) SetString(i int, s string) {
	off := len(g.m.data)
	g.m.data = append(g.m.data, s...)
	g.m.vals[g.base+i] = Value{Off: uint32(off), Len: uint32(len(s)), Present: true}
}

// Clear makes field i absent.
func (g Group) Clear(i int) { g.m.vals[g.base+i] = Value{} }

// SetSeq makes field i a sequence of n elements, all fields absent, and returns it.
func (g Group) SetSeq(i, n int) Seq {
	k := len(g.fields[i].Fields)
	base := len(g.m.vals)
	g.m.vals = grow(g.m.vals, n*k)
	g.m.vals[g.base+i] = Value{Int: int64(n), Off: uint32(base), Present: true}
	return Seq{m: g.m, f: g.fields[i], base: base, n: n}
}

// SetGroup makes group field i present, all its fields absent, and returns it.
func (g Group) SetGroup(i int) Group {
	fs := g.fields[i].Fields
	base := len(g.m.vals)
	g.m.vals = grow(g.m.vals, len(fs))
	g.m.vals[g.base+i] = Value{Off: uint32(base), Present: true}
	return Group{m: g.m, fields: fs, base: base}
}

// SetRef makes dynamic template reference field i hold a message of template t.
func (g Group) SetRef(i int, t *Template) Group {
	base := len(g.m.vals)
	g.m.vals = grow(g.m.vals, len(t.Fields))
	g.m.refs = append(g.m.refs, t)
	g.m.vals[g.base+i] = Value{Int: int64(t.ID), Exp: int32(len(g.m.refs) - 1), Off: uint32(base), Present: true}
	return Group{m: g.m, fields: t.Fields, base: base, tmpl: t}
}
