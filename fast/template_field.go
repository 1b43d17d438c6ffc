package fast

import (
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"fastfeed/internal/decfmt"
)

var scalarTypes = map[string]Type{
	"uInt32": TypeUint32, "int32": TypeInt32, "uInt64": TypeUint64, "int64": TypeInt64,
	"decimal": TypeDecimal, "string": TypeASCII, "byteVector": TypeBytes,
}

var operators = map[string]Operator{
	"constant": OpConstant, "default": OpDefault, "copy": OpCopy,
	"increment": OpIncrement, "delta": OpDelta, "tail": OpTail,
}

// field compiles one field instruction other than a template reference.
func (l *loader) field(n *node, c ctx) (*Field, error) {
	f := &Field{Line: n.line, slot: -1}
	f.Name, _ = n.attr("name")
	if id, ok := n.attr("id"); ok && id != "" {
		v, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, l.errf(n.line, S1, "<%s %s>: bad id %q", n.name, f.Name, id)
		}
		f.ID = uint32(v)
	}
	if p, ok := n.attr("presence"); ok {
		switch p {
		case "mandatory":
		case "optional":
			f.Optional = true
		default:
			return nil, l.errf(n.line, S1, "<%s %s>: presence %q, want mandatory or optional", n.name, f.Name, p)
		}
	}
	if f.Name == "" {
		return nil, l.errf(n.line, S1, "<%s> without a name", n.name)
	}
	switch n.name {
	case "sequence", "group":
		return l.composite(n, f, c)
	}
	t, ok := scalarTypes[n.name]
	if !ok {
		return nil, l.errf(n.line, S1, "unknown element <%s>", n.name)
	}
	f.Type = t
	allowed := []string{"name", "ns", "id", "presence"}
	if t == TypeASCII {
		allowed = append(allowed, "charset")
		switch cs, _ := n.attr("charset"); cs {
		case "", "ascii":
		case "unicode":
			f.Type = TypeUnicode
		default:
			return nil, l.errf(n.line, S1, "<string %s>: charset %q, want ascii or unicode", f.Name, cs)
		}
	}
	if err := l.checkAttrs(n, allowed...); err != nil {
		return nil, err
	}
	var kids []*node
	for _, k := range n.children {
		if !l.inNS(k) {
			continue
		}
		if k.name == "length" && (t == TypeASCII || t == TypeBytes) {
			// The length element of a unicode string or byte vector names the FIX length
			// field of the application type; it does not change the transfer encoding.
			if err := l.checkAttrs(k, "name", "ns", "id"); err != nil {
				return nil, err
			}
			continue
		}
		kids = append(kids, k)
	}
	if t == TypeDecimal {
		return l.decimal(n, f, kids, c)
	}
	if err := l.operator(n, f, kids, c, f.Name); err != nil {
		return nil, err
	}
	return f, nil
}

// operator compiles the optional operator child of a scalar field.
func (l *loader) operator(n *node, f *Field, kids []*node, c ctx, defaultKey string) error {
	if len(kids) > 1 {
		return l.errf(kids[1].line, S1, "<%s %s> has more than one operator", n.name, f.Name)
	}
	if len(kids) == 1 {
		k := kids[0]
		op, ok := operators[k.name]
		if !ok {
			return l.errf(k.line, S1, "unknown element <%s> in <%s %s>", k.name, n.name, f.Name)
		}
		if err := l.checkAttrs(k, "value", "key", "ns", "dictionary"); err != nil {
			return err
		}
		if len(k.children) > 0 {
			return l.errf(k.line, S1, "<%s> in <%s %s> has children", k.name, n.name, f.Name)
		}
		f.Op = op
		if v, ok := k.attr("value"); ok {
			if err := l.initial(f, v, k.line); err != nil {
				return err
			}
		}
		if key, ok := k.attr("key"); ok {
			defaultKey = key
		}
		if d, ok := k.attr("dictionary"); ok {
			c.dict = d
		}
	}
	return l.finish(f, c, defaultKey)
}

// finish validates the operator against the type and assigns the dictionary slot and the
// presence-map and nullability properties.
func (l *loader) finish(f *Field, c ctx, key string) error {
	switch f.Op {
	case OpIncrement:
		if !f.Type.isInteger() {
			return l.errf(f.Line, S2, "increment operator on %s field %s", f.Type, f.Name)
		}
	case OpTail:
		if !f.Type.isVector() {
			return l.errf(f.Line, S2, "tail operator on %s field %s", f.Type, f.Name)
		}
	case OpConstant:
		if !f.hasInit {
			return l.errf(f.Line, S4, "constant operator without a value on field %s", f.Name)
		}
	case OpDefault:
		if !f.Optional && !f.hasInit {
			return l.errf(f.Line, S5, "mandatory default operator without a value on field %s", f.Name)
		}
	}
	f.nullable = f.Optional && f.Op != OpConstant
	switch f.Op {
	case OpNone, OpDelta:
	case OpConstant:
		f.bit = f.Optional
	default:
		f.bit = true
	}
	switch f.Op {
	case OpCopy, OpIncrement, OpDelta, OpTail:
		f.dictName = c.dict
		if f.dictName == "" {
			f.dictName = "global"
		}
		switch f.dictName {
		case "template":
			f.qualifier = c.qualifier
		case "type":
			f.qualifier = c.typeRef
		}
		f.key = key
		f.slot = l.slot(f.dictName, f.qualifier, key)
	}
	return nil
}

// decimal compiles a decimal field with no operator, one operator, or individual exponent
// and mantissa operators.
func (l *loader) decimal(n *node, f *Field, kids []*node, c ctx) (*Field, error) {
	var exp, mant *node
	var ops []*node
	for _, k := range kids {
		switch k.name {
		case "exponent":
			exp = k
		case "mantissa":
			mant = k
		default:
			ops = append(ops, k)
		}
	}
	if exp == nil && mant == nil {
		return f, l.operator(n, f, ops, c, f.Name)
	}
	if len(ops) > 0 {
		return nil, l.errf(ops[0].line, S1, "decimal %s mixes <%s> with <exponent>/<mantissa>", f.Name, ops[0].name)
	}
	f.split = true
	f.Exponent = &Field{Name: f.Name, Type: TypeInt32, Optional: f.Optional, Line: f.Line, slot: -1}
	f.Mantissa = &Field{Name: f.Name, Type: TypeInt64, Line: f.Line, slot: -1}
	for _, part := range []struct {
		n   *node
		f   *Field
		key string
	}{{exp, f.Exponent, f.Name + ":exponent"}, {mant, f.Mantissa, f.Name + ":mantissa"}} {
		var pk []*node
		if part.n != nil {
			if err := l.checkAttrs(part.n); err != nil {
				return nil, err
			}
			for _, k := range part.n.children {
				if l.inNS(k) {
					pk = append(pk, k)
				}
			}
			part.f.Line = part.n.line
		}
		if err := l.operator(n, part.f, pk, c, part.key); err != nil {
			return nil, err
		}
	}
	f.bit = f.Exponent.bit || f.Mantissa.bit
	f.nullable = f.Exponent.nullable
	return f, nil
}

// composite compiles a sequence or group.
func (l *loader) composite(n *node, f *Field, c ctx) (*Field, error) {
	if err := l.checkAttrs(n, "name", "ns", "id", "presence", "dictionary"); err != nil {
		return nil, err
	}
	if d, ok := n.attr("dictionary"); ok {
		c.dict = d
	}
	kids, typeRef, err := l.typeRefOf(n)
	if err != nil {
		return nil, err
	}
	if typeRef != "" {
		c.typeRef = typeRef
	}
	if n.name == "group" {
		f.Type = TypeGroup
		f.bit = f.Optional
	} else {
		f.Type = TypeSequence
		lf := &Field{Name: f.Name + ":length", Type: TypeUint32, Optional: f.Optional, Line: n.line, slot: -1}
		var lk []*node
		if len(kids) > 0 && kids[0].name == "length" {
			ln := kids[0]
			kids = kids[1:]
			if err := l.checkAttrs(ln, "name", "ns", "id"); err != nil {
				return nil, err
			}
			if name, ok := ln.attr("name"); ok && name != "" {
				lf.Name = name
			}
			if id, ok := ln.attr("id"); ok && id != "" {
				v, err := strconv.ParseUint(id, 10, 32)
				if err != nil {
					return nil, l.errf(ln.line, S1, "<length %s>: bad id %q", lf.Name, id)
				}
				lf.ID = uint32(v)
			}
			lf.Line = ln.line
			for _, k := range ln.children {
				if l.inNS(k) {
					lk = append(lk, k)
				}
			}
		}
		if err := l.operator(n, lf, lk, c, lf.Name); err != nil {
			return nil, err
		}
		f.Length = lf
		f.bit = lf.bit
	}
	fields, err := l.instructions(kids, c)
	if err != nil {
		return nil, err
	}
	f.Fields = fields
	for _, k := range fields {
		if k.bit {
			f.segPmap = true
		}
	}
	f.minBytes = minBytes(fields, f.segPmap)
	f.segBits = pmapBits(fields)
	return f, nil
}

// pmapBits counts the presence map bits a list of instructions can use.
func pmapBits(fields []*Field) int {
	n := 0
	for _, f := range fields {
		switch {
		case f.split:
			if f.Exponent.bit {
				n++
			}
			if f.Mantissa.bit {
				n++
			}
		case f.bit:
			n++
		}
	}
	return n
}

// minBytes is the fewest bytes an instance of a segment can take on the wire.
func minBytes(fields []*Field, pmap bool) int {
	if pmap {
		return 1
	}
	n := 0
	for _, f := range fields {
		switch {
		case f.Type == TypeTemplateRef:
			n++
		case f.Type == TypeGroup:
			if f.segPmap {
				n++
			} else {
				n += minBytes(f.Fields, false)
			}
		case f.Type == TypeSequence:
			if f.Length.Op == OpNone || f.Length.Op == OpDelta {
				n++
			}
		case f.split:
			if f.Exponent.Op == OpNone || f.Exponent.Op == OpDelta {
				n++
			}
		case f.Op == OpNone || f.Op == OpDelta:
			n++
		}
	}
	return n
}

// initial converts an operator's value attribute to the field's type (S3 on failure).
func (l *loader) initial(f *Field, v string, line int) error {
	bad := func(why string) error {
		return l.errf(line, S3, "field %s: initial value %q is not a valid %s%s", f.Name, v, f.Type, why)
	}
	s := strings.TrimSpace(v)
	switch f.Type {
	case TypeUint32, TypeUint64:
		bits := 32
		if f.Type == TypeUint64 {
			bits = 64
		}
		u, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return bad("")
		}
		f.initInt = int64(u)
	case TypeInt32, TypeInt64:
		bits := 32
		if f.Type == TypeInt64 {
			bits = 64
		}
		i, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return bad("")
		}
		f.initInt = i
	case TypeDecimal:
		m, e, ok := ParseDecimal(s)
		if !ok {
			return bad("")
		}
		f.initInt, f.initExp = m, e
	case TypeASCII:
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x80 {
				return bad(": not ASCII")
			}
		}
		f.initBytes = []byte(v)
	case TypeUnicode:
		if !utf8.ValidString(v) {
			return bad("")
		}
		f.initBytes = []byte(v)
	case TypeBytes:
		b, err := hex.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return bad(": want hex digits")
		}
		f.initBytes = b
	}
	f.hasInit = true
	return nil
}

// ParseDecimal parses a decimal string such as "-12.50", "12000" or "1.5E3" into a
// normalized mantissa and exponent (no trailing zeros in the mantissa; zero is 0e0).
func ParseDecimal(s string) (mantissa int64, exponent int32, ok bool) {
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e < -1000 || e > 1000 {
			return 0, 0, false
		}
		exp = e
		s = s[:i]
	}
	if strings.HasPrefix(s, "+") {
		s = s[1:]
		if strings.HasPrefix(s, "-") {
			return 0, 0, false
		}
	}
	d, err := decfmt.Scan(s, decfmt.Rules{})
	if err != nil {
		return 0, 0, false
	}
	if d.Mag == 0 {
		return 0, 0, true
	}
	for d.Mag%10 == 0 {
		d.Mag /= 10
		d.Exp++
	}
	exp += d.Exp
	m, fits := d.Int64()
	if !fits || exp < -63 || exp > 63 {
		return 0, 0, false
	}
	return m, int32(exp), true
}
