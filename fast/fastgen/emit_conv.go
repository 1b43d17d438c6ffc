package fastgen

import "fastfeed/fast"

func (g *gen) emitConvert() {
	g.w(`// ToFast fills out with m in the form of the interpreter (package fast), for tools and
// tests. ts must hold the templates the code was generated from.
func (m *Message) ToFast(ts *fast.Templates, out *fast.Message) error {
	t := ts.ByID(m.ID)
	if t == nil {
		return fastrt.EncErr(fast.D9, nil, "unknown template identifier")
	}
	out.Reset(t)
	switch m.ID {
`)
	for _, t := range g.tmpls {
		g.w("case %d:\nm.%s.toFast(out.Root())\n", t.t.ID, t.seg.typeName)
	}
	g.w(`}
	return nil
}

// FromFast sets m from a message in the form of the interpreter. Byte slices alias in.
func (m *Message) FromFast(in *fast.Message) error {
	if in.Template == nil {
		return fastrt.EncErr(fast.Missing, nil, "message has no template")
	}
	m.ID = in.Template.ID
	switch m.ID {
`)
	for _, t := range g.tmpls {
		g.w("case %d:\nm.%s.fromFast(in.Root())\nreturn nil\n", t.t.ID, t.seg.typeName)
	}
	g.w("}\nreturn fastrt.EncErr(fast.D9, nil, \"unknown template identifier\")\n}\n\n")
	for _, s := range g.segs {
		g.w("func (v *%s) toFast(g fast.Group) {\n", s.typeName)
		for i, f := range s.fields {
			if f.has != "" {
				g.w("if v.%s {\n", f.has)
			} else {
				g.w("{\n")
			}
			switch t := f.f.Type; {
			case t == fast.TypeUint32 || t == fast.TypeUint64:
				g.w("g.SetUint(%d, uint64(v.%s))\n", i, f.name)
			case isInt(t):
				g.w("g.SetInt(%d, int64(v.%s))\n", i, f.name)
			case t == fast.TypeDecimal:
				g.w("g.SetDecimal(%d, v.%s.Mantissa, v.%s.Exponent)\n", i, f.name, f.name)
			case isVector(t):
				g.w("g.SetBytes(%d, v.%s)\n", i, f.name)
			case t == fast.TypeSequence:
				g.w("s := g.SetSeq(%d, len(v.%s))\nfor j := range v.%s {\nv.%s[j].toFast(s.Elem(j))\n}\n", i, f.name, f.name, f.name)
			case t == fast.TypeGroup:
				g.w("v.%s.toFast(g.SetGroup(%d))\n", f.name, i)
			}
			g.w("}\n")
		}
		g.w("}\n\n")
		g.w("func (v *%s) fromFast(g fast.Group) {\n", s.typeName)
		for i, f := range s.fields {
			if f.has != "" {
				g.w("v.%s = g.Present(%d)\n", f.has, i)
			}
			switch t := f.f.Type; {
			case t == fast.TypeUint32 || t == fast.TypeUint64:
				g.w("v.%s = %s(g.Uint(%d))\n", f.name, goType(t), i)
			case isInt(t):
				g.w("v.%s = %s(g.Int(%d))\n", f.name, goType(t), i)
			case t == fast.TypeDecimal:
				g.w("v.%s.Mantissa, v.%s.Exponent = g.Decimal(%d)\n", f.name, f.name, i)
			case isVector(t):
				g.w("v.%s = g.Bytes(%d)\n", f.name, i)
			case t == fast.TypeSequence:
				g.w("{\ns := g.Seq(%d)\nv.%s = make([]%s, s.Len())\nfor j := range v.%s {\nv.%s[j].fromFast(s.Elem(j))\n}\n}\n", i, f.name, f.elem.typeName, f.name, f.name)
			case t == fast.TypeGroup:
				g.w("if sub, ok := g.Group(%d); ok {\nv.%s.fromFast(sub)\n}\n", i, f.name)
			}
		}
		g.w("}\n\n")
	}
}
