package fast

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Namespaces of the FAST 1.1 template definition and of the session control protocol.
const (
	TemplateNS = "http://www.fixprotocol.org/ns/fast/td/1.1"
	scpNS      = "http://www.fixprotocol.org/ns/fast/scp/1.1"
)

// Type is the transfer type of a field instruction.
type Type uint8

// Field types. TypeTemplateRef is a dynamic template reference; static references are
// expanded into the referencing template when templates are loaded.
const (
	TypeUint32 Type = iota + 1
	TypeInt32
	TypeUint64
	TypeInt64
	TypeDecimal
	TypeASCII
	TypeUnicode
	TypeBytes
	TypeSequence
	TypeGroup
	TypeTemplateRef
)

var typeNames = [...]string{"", "uInt32", "int32", "uInt64", "int64", "decimal", "string", "unicode", "byteVector", "sequence", "group", "templateRef"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

func (t Type) isInteger() bool { return t >= TypeUint32 && t <= TypeInt64 }
func (t Type) isSigned() bool  { return t == TypeInt32 || t == TypeInt64 }
func (t Type) isVector() bool  { return t == TypeASCII || t == TypeUnicode || t == TypeBytes }

// Operator is a FAST field operator.
type Operator uint8

// Field operators.
const (
	OpNone Operator = iota
	OpConstant
	OpDefault
	OpCopy
	OpIncrement
	OpDelta
	OpTail
)

var opNames = [...]string{"none", "constant", "default", "copy", "increment", "delta", "tail"}

func (o Operator) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Field is one compiled field instruction. Fields are immutable after loading and shared by
// every decoder and encoder of their Templates.
type Field struct {
	Name     string
	ID       uint32 // FIX tag from the id attribute; 0 if none
	Type     Type
	Optional bool
	Op       Operator // for a decimal with individual operators: OpNone, see Exponent and Mantissa

	Exponent *Field   // decimal with individual operators: the exponent (int32) instruction
	Mantissa *Field   // decimal with individual operators: the mantissa (int64) instruction
	Length   *Field   // sequence: the length instruction
	Fields   []*Field // sequence element or group instructions
	Line     int      // line in the template XML

	// Initial value from the operator's value attribute.
	hasInit   bool
	initInt   int64 // integers (unsigned as bits), decimal mantissa
	initExp   int32 // decimal exponent
	initBytes []byte

	slot      int32 // dictionary slot, -1 if the operator uses none
	typeCheck bool  // the slot is shared with a field of another type: check for D4
	code      opcode
	bit       bool // the field takes a bit of the enclosing presence map
	nullable  bool
	split     bool // decimal with individual operators
	segPmap   bool // group or sequence element: each instance is a segment with its own presence map
	segBits   int  // group or sequence element: most presence map bits one instance can use
	minBytes  int  // sequence: fewest bytes one element can take

	dictName, key, qualifier string // for slot resolution and diagnostics
}

// Template is one compiled template.
type Template struct {
	Name    string
	ID      uint32
	Fields  []*Field
	TypeRef string
	// Reset is set for a template marked scp:reset="yes": decoding or encoding it resets
	// every dictionary, as the FAST session control protocol's Reset message does.
	Reset bool
	// ResetEach is set for a template with the reset attribute (reset="Y", "yes" or
	// "true", an extension of QuickFAST and mFAST): every dictionary entry is reset before
	// the fields of each of its messages, after its template identifier.
	ResetEach bool
	Line      int

	pmapBits int // most presence map bits a message of this template can use, with the identifier

	index map[string]int
}

// FieldIndex returns the index of the top-level field name, or -1.
func (t *Template) FieldIndex(name string) int {
	if i, ok := t.index[name]; ok {
		return i
	}
	return -1
}

// Templates is a loaded, immutable set of templates. It is safe for concurrent use; each
// goroutine uses its own Decoder and Encoder.
type Templates struct {
	list   []*Template
	sum    string // SHA-256 of the source XML, hex
	byName map[string]*Template
	byID   map[uint32]*Template
	dense  []*Template // byID for small IDs, for a lookup without hashing
	slots  int         // dictionary entries needed by a decoder or encoder
	tidKey int32       // dictionary slot of the template identifier (copy operator)
}

// List returns the templates in file order.
func (ts *Templates) List() []*Template { return ts.list }

// ByName returns the template called name, or nil.
func (ts *Templates) ByName(name string) *Template { return ts.byName[name] }

// ByID returns the template with identifier id, or nil.
func (ts *Templates) ByID(id uint32) *Template {
	if id < uint32(len(ts.dense)) {
		return ts.dense[id]
	}
	return ts.byID[id]
}

// LoadFile loads templates from an XML file.
func LoadFile(path string) (*Templates, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ts, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// Load parses FAST 1.1 template XML. Unknown elements and attributes in the template
// namespace are errors naming their line; elements and attributes of other namespaces are
// ignored, except scp:reset.
func Load(r io.Reader) (*Templates, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	root, err := parseXML(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	l := &loader{raw: map[string]*node{}, slotIndex: map[string]int32{}}
	ts, err := l.load(root)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	ts.sum = hex.EncodeToString(sum[:])
	return ts, nil
}

// SourceSHA256 returns the SHA-256 (hex) of the XML the templates were loaded from: a
// codec generated from the same file (fast/fastgen) has the same semantics.
func (ts *Templates) SourceSHA256() string { return ts.sum }

// node is a parsed XML element.
type node struct {
	name     string // local name
	space    string
	attrs    []xml.Attr
	children []*node
	line     int
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == TemplateNS) {
			return a.Value, true
		}
	}
	return "", false
}

// maxXMLDepth bounds element nesting so a hostile file cannot exhaust the stack.
const maxXMLDepth = 64

func parseXML(r io.Reader) (*node, error) {
	d := xml.NewDecoder(r)
	var stack []*node
	var root *node
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &Error{Code: S1, Offset: -1, Line: line, Msg: "invalid XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, space: t.Name.Space, attrs: append([]xml.Attr(nil), t.Attr...), line: line}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
			if len(stack) > maxXMLDepth {
				return nil, &Error{Code: S1, Offset: -1, Line: line, Msg: "elements nested too deeply"}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && strings.TrimSpace(string(t)) != "" {
				return nil, &Error{Code: S1, Offset: -1, Line: line, Msg: fmt.Sprintf("unexpected text %q in <%s>", strings.TrimSpace(string(t)), stack[len(stack)-1].name)}
			}
		}
	}
	if root == nil {
		return nil, &Error{Code: S1, Offset: -1, Msg: "no templates element"}
	}
	return root, nil
}

// ctx is the instruction context inherited from enclosing elements.
type ctx struct {
	dict      string // dictionary attribute in force
	typeRef   string // current application type
	qualifier string // name of the template whose identifier is in the stream
	refs      []string
}

type loader struct {
	raw       map[string]*node
	order     []*node
	slotIndex map[string]int32
}

func (l *loader) errf(line int, code Code, format string, args ...any) error {
	return &Error{Code: code, Offset: -1, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (l *loader) inNS(n *node) bool { return n.space == TemplateNS || n.space == "" }

// checkAttrs rejects attributes of the template namespace that the element does not have.
func (l *loader) checkAttrs(n *node, allowed ...string) error {
	for _, a := range n.attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		if a.Name.Space != "" && a.Name.Space != TemplateNS {
			continue // foreign attribute
		}
		ok := false
		for _, name := range allowed {
			if a.Name.Local == name {
				ok = true
				break
			}
		}
		if !ok {
			return l.errf(n.line, S1, "unknown attribute %q on <%s>", a.Name.Local, n.name)
		}
	}
	return nil
}

func (l *loader) load(root *node) (*Templates, error) {
	var tnodes []*node
	rootDict := ""
	switch {
	case root.name == "templates" && l.inNS(root):
		if err := l.checkAttrs(root, "ns", "templateNs", "dictionary"); err != nil {
			return nil, err
		}
		rootDict, _ = root.attr("dictionary")
		for _, c := range root.children {
			if !l.inNS(c) {
				continue
			}
			if c.name != "template" {
				return nil, l.errf(c.line, S1, "unknown element <%s> in <templates>", c.name)
			}
			tnodes = append(tnodes, c)
		}
	case root.name == "template" && l.inNS(root):
		tnodes = []*node{root}
	default:
		return nil, l.errf(root.line, S1, "root element is <%s>, want <templates> in namespace %s", root.name, TemplateNS)
	}
	for _, t := range tnodes {
		if err := l.checkAttrs(t, "name", "ns", "templateNs", "id", "dictionary", "reset"); err != nil {
			return nil, err
		}
		name, _ := t.attr("name")
		if name == "" {
			return nil, l.errf(t.line, S1, "template without a name")
		}
		if _, dup := l.raw[name]; dup {
			return nil, l.errf(t.line, S1, "duplicate template name %q", name)
		}
		l.raw[name] = t
		l.order = append(l.order, t)
	}

	ts := &Templates{byName: map[string]*Template{}, byID: map[uint32]*Template{}}
	ts.tidKey = l.slot("global", "", "\x00templateID")
	var maxID uint32
	for _, tn := range l.order {
		name, _ := tn.attr("name")
		t := &Template{Name: name, Line: tn.line, index: map[string]int{}}
		if s, ok := tn.attr("id"); ok {
			id, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, l.errf(tn.line, S1, "template %q: bad id %q", name, s)
			}
			t.ID = uint32(id)
			if other := ts.byID[t.ID]; other != nil {
				return nil, l.errf(tn.line, S1, "templates %q and %q share id %d", other.Name, name, id)
			}
			ts.byID[t.ID] = t
			maxID = max(maxID, t.ID)
		}
		for _, a := range tn.attrs {
			if a.Name.Space == scpNS && a.Name.Local == "reset" {
				t.Reset = a.Value == "yes" || a.Value == "Y" || a.Value == "true"
			}
		}
		if v, ok := tn.attr("reset"); ok {
			switch strings.TrimSpace(v) {
			case "Y", "y", "yes", "Yes", "YES", "true", "True", "TRUE", "1":
				t.ResetEach = true
			case "N", "n", "no", "No", "NO", "false", "False", "FALSE", "0", "":
			default:
				return nil, l.errf(tn.line, S1, "template %q: reset %q, want Y, yes, true, N, no or false", name, v)
			}
		}
		c := ctx{dict: rootDict, qualifier: name, refs: []string{name}}
		if d, ok := tn.attr("dictionary"); ok {
			c.dict = d
		}
		children, typeRef, err := l.typeRefOf(tn)
		if err != nil {
			return nil, err
		}
		if typeRef != "" {
			c.typeRef = typeRef
		}
		t.TypeRef = c.typeRef
		fields, err := l.instructions(children, c)
		if err != nil {
			return nil, err
		}
		t.Fields = fields
		t.pmapBits = 1 + pmapBits(fields)
		for i, f := range fields {
			if _, dup := t.index[f.Name]; !dup && f.Name != "" {
				t.index[f.Name] = i
			}
		}
		ts.list = append(ts.list, t)
		ts.byName[name] = t
	}
	if maxID < 1<<16 {
		ts.dense = make([]*Template, maxID+1)
		for id, t := range ts.byID {
			ts.dense[id] = t
		}
	}
	ts.slots = len(l.slotIndex)
	finishFields(ts)
	return ts, nil
}

// walkFields calls fn for every field instruction of ts, nested ones and decimal parts
// and sequence lengths included.
func walkFields(fs []*Field, fn func(*Field)) {
	for _, f := range fs {
		fn(f)
		if f.Exponent != nil {
			fn(f.Exponent)
			fn(f.Mantissa)
		}
		if f.Length != nil {
			fn(f.Length)
		}
		walkFields(f.Fields, fn)
	}
}

// finishFields decides, once all templates are known, which fields share a dictionary
// entry with a field of another type (only those check for D4 while decoding) and picks
// each field's decoding opcode.
func finishFields(ts *Templates) {
	types := map[int32]Type{}
	mixed := map[int32]bool{}
	for _, t := range ts.list {
		walkFields(t.Fields, func(f *Field) {
			if f.slot < 0 {
				return
			}
			if prev, ok := types[f.slot]; ok && prev != f.Type {
				mixed[f.slot] = true
			}
			types[f.slot] = f.Type
		})
	}
	for _, t := range ts.list {
		walkFields(t.Fields, func(f *Field) {
			f.typeCheck = f.slot >= 0 && mixed[f.slot]
			f.code = opcodeOf(f)
		})
	}
}

// typeRefOf splits off a leading <typeRef> child.
func (l *loader) typeRefOf(n *node) ([]*node, string, error) {
	var out []*node
	typeRef := ""
	for _, c := range n.children {
		if !l.inNS(c) {
			continue
		}
		if c.name == "typeRef" {
			if err := l.checkAttrs(c, "name", "ns"); err != nil {
				return nil, "", err
			}
			typeRef, _ = c.attr("name")
			continue
		}
		out = append(out, c)
	}
	return out, typeRef, nil
}

func (l *loader) slot(dict, qualifier, key string) int32 {
	k := dict + "\x00" + qualifier + "\x00" + key
	if s, ok := l.slotIndex[k]; ok {
		return s
	}
	s := int32(len(l.slotIndex))
	l.slotIndex[k] = s
	return s
}

// instructions compiles a list of field instructions, expanding static template references.
func (l *loader) instructions(nodes []*node, c ctx) ([]*Field, error) {
	var out []*Field
	for _, n := range nodes {
		if n.name == "templateRef" {
			if err := l.checkAttrs(n, "name", "templateNs"); err != nil {
				return nil, err
			}
			if len(n.children) > 0 {
				return nil, l.errf(n.line, S1, "<templateRef> has children")
			}
			name, ok := n.attr("name")
			if !ok {
				out = append(out, &Field{Name: "templateRef", Type: TypeTemplateRef, Line: n.line, slot: -1})
				continue
			}
			ref, found := l.raw[name]
			if !found {
				return nil, l.errf(n.line, D8, "static template reference to unknown template %q", name)
			}
			for _, r := range c.refs {
				if r == name {
					return nil, l.errf(n.line, S1, "template reference cycle through %q", name)
				}
			}
			rc := c
			rc.refs = append(append([]string(nil), c.refs...), name)
			if d, ok := ref.attr("dictionary"); ok {
				rc.dict = d
			}
			children, typeRef, err := l.typeRefOf(ref)
			if err != nil {
				return nil, err
			}
			if typeRef != "" {
				rc.typeRef = typeRef
			}
			fs, err := l.instructions(children, rc)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
			continue
		}
		f, err := l.field(n, c)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
