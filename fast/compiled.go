package fast

// FieldInfo is what loading decided about a field instruction beyond its exported fields:
// its initial value, its dictionary slot and its presence-map and nullability properties.
// Code generators (fast/fastgen) read it to produce codecs with the interpreter's semantics.
type FieldInfo struct {
	HasInit   bool
	InitInt   int64  // integers (unsigned as bits), decimal mantissa
	InitExp   int32  // decimal exponent
	InitBytes []byte // strings and byte vectors; shared, do not modify

	Slot      int32 // dictionary slot, -1 if the operator keeps no state
	TypeCheck bool  // the slot is shared with a field of another type (D4 is possible)
	Key       string

	Bit         bool // the field takes a bit of the enclosing presence map
	Nullable    bool
	Split       bool // decimal with individual exponent and mantissa operators
	SegmentPmap bool // group or sequence element: each instance has its own presence map
	SegmentBits int  // group or sequence element: most presence map bits an instance can use
	MinBytes    int  // sequence: fewest bytes an element can take
}

// Info returns the compiled properties of f.
func (f *Field) Info() FieldInfo {
	return FieldInfo{
		HasInit: f.hasInit, InitInt: f.initInt, InitExp: f.initExp, InitBytes: f.initBytes,
		Slot: f.slot, TypeCheck: f.typeCheck, Key: f.key,
		Bit: f.bit, Nullable: f.nullable, Split: f.split, SegmentPmap: f.segPmap,
		SegmentBits: f.segBits, MinBytes: f.minBytes,
	}
}

// PmapBits returns the most presence map bits a message of t can use, with the template
// identifier's.
func (t *Template) PmapBits() int { return t.pmapBits }

// Slots returns the number of dictionary entries a decoder or encoder of ts keeps.
func (ts *Templates) Slots() int { return ts.slots }

// TemplateIDSlot returns the dictionary slot of the template identifier (copy operator).
func (ts *Templates) TemplateIDSlot() int32 { return ts.tidKey }
