package md

import (
	"fmt"

	"fastfeed/fast"
)

// Codec maps the model to FAST with fastfeed's templates (fixtures/templates.xml): one
// message per datagram, dictionaries reset before each. Decoded values live in the Codec
// and alias its buffers until the next Decode. A Codec is not safe for concurrent use.
type Codec struct {
	dec *fast.Decoder
	enc *fast.Encoder
	g   *genCodec    // generated code for fixtures/templates.xml, nil for other templates
	in  fast.Message // decoded
	out fast.Message // being encoded

	inc  incLayout
	snap snapLayout
	def  defLayout
	stat statLayout
	hb   hbLayout
	rst  rstLayout

	// Message is the last decoded message: its Kind and the value in the field of that
	// kind (c.Incremental, c.Definition, ...), aliasing the Codec's buffers.
	Message
}

type entryLayout struct {
	action, typ, symbol, rptSeq, id, px, size, orders int
}

type incLayout struct {
	t                                      *fast.Template
	seqNum, sendingTime, lastFrag, entries int
	e                                      entryLayout
}

type snapLayout struct {
	t                                                                     *fast.Template
	seqNum, sendingTime, lastProcessed, symbol, rptSeq, lastFrag, entries int
	e                                                                     entryLayout
}

type defLayout struct {
	t                                                                         *fast.Template
	seqNum, sendingTime, totNum, symbol, secID, secType, currency, desc, tick int
	priceExp, sizeExp, bookType, depth, channel                               int
}

type statLayout struct {
	t                                                  *fast.Template
	seqNum, sendingTime, symbol, status, session, text int
}

type hbLayout struct {
	t                            *fast.Template
	seqNum, sendingTime, lastSeq int
}

type rstLayout struct {
	t                             *fast.Template
	seqNum, sendingTime, newSeqNo int
}

// Template names in fixtures/templates.xml.
const (
	TemplateIncremental = "MDIncRefresh"
	TemplateSnapshot    = "MDSnapshotFullRefresh"
	TemplateDefinition  = "SecurityDefinition"
	TemplateStatus      = "SecurityStatus"
	TemplateHeartbeat   = "Heartbeat"
	TemplateReset       = "SequenceReset"
)

// layout resolves field names to indices, collecting the first missing one.
type layout struct {
	t   *fast.Template
	err error
}

func (l *layout) field(name string, types ...fast.Type) int {
	if l.err != nil {
		return -1
	}
	i := l.t.FieldIndex(name)
	if i < 0 {
		l.err = fmt.Errorf("md: template %s has no field %s", l.t.Name, name)
		return -1
	}
	return l.check(l.t.Fields[i], i, types)
}

func (l *layout) check(f *fast.Field, i int, types []fast.Type) int {
	for _, t := range types {
		if f.Type == t {
			return i
		}
	}
	l.err = fmt.Errorf("md: template %s field %s is a %s, want %v", l.t.Name, f.Name, f.Type, types)
	return -1
}

func (l *layout) sub(seq int, name string, types ...fast.Type) int {
	if l.err != nil {
		return -1
	}
	for i, f := range l.t.Fields[seq].Fields {
		if f.Name == name {
			return l.check(f, i, types)
		}
	}
	l.err = fmt.Errorf("md: template %s sequence %s has no field %s", l.t.Name, l.t.Fields[seq].Name, name)
	return -1
}

var (
	tUint   = []fast.Type{fast.TypeUint32, fast.TypeUint64}
	tInt    = []fast.Type{fast.TypeInt32, fast.TypeInt64}
	tString = []fast.Type{fast.TypeASCII, fast.TypeUnicode, fast.TypeBytes}
	tDec    = []fast.Type{fast.TypeDecimal}
	tSeq    = []fast.Type{fast.TypeSequence}
)

func (l *layout) entries(seq int, withIncremental bool) entryLayout {
	e := entryLayout{
		typ:    l.sub(seq, "MDEntryType", tString...),
		id:     l.sub(seq, "MDEntryID", tString...),
		px:     l.sub(seq, "MDEntryPx", tDec...),
		size:   l.sub(seq, "MDEntrySize", tDec...),
		orders: l.sub(seq, "NumberOfOrders", tUint...),
	}
	if withIncremental {
		e.action = l.sub(seq, "MDUpdateAction", tUint...)
		e.symbol = l.sub(seq, "Symbol", tString...)
		e.rptSeq = l.sub(seq, "RptSeq", tUint...)
	}
	return e
}

// NewCodec returns a Codec for ts, which must hold fastfeed's templates (by name, with
// the fields the model needs).
func NewCodec(ts *fast.Templates) (*Codec, error) {
	c := &Codec{dec: fast.NewDecoder(ts), enc: fast.NewEncoder(ts)}
	get := func(name string) *layout {
		t := ts.ByName(name)
		if t == nil {
			return &layout{err: fmt.Errorf("md: templates lack %s", name)}
		}
		return &layout{t: t}
	}
	var errs []error
	{
		l := get(TemplateIncremental)
		if l.t != nil {
			c.inc = incLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				lastFrag: l.field("LastFragment", tUint...), entries: l.field("MDEntries", tSeq...)}
			if l.err == nil {
				c.inc.e = l.entries(c.inc.entries, true)
			}
		}
		errs = append(errs, l.err)
	}
	{
		l := get(TemplateSnapshot)
		if l.t != nil {
			c.snap = snapLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				lastProcessed: l.field("LastMsgSeqNumProcessed", tUint...), symbol: l.field("Symbol", tString...),
				rptSeq: l.field("RptSeq", tUint...), lastFrag: l.field("LastFragment", tUint...), entries: l.field("MDEntries", tSeq...)}
			if l.err == nil {
				c.snap.e = l.entries(c.snap.entries, false)
			}
		}
		errs = append(errs, l.err)
	}
	{
		l := get(TemplateDefinition)
		if l.t != nil {
			c.def = defLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				totNum: l.field("TotNumReports", tUint...), symbol: l.field("Symbol", tString...),
				secID: l.field("SecurityID", tUint...), secType: l.field("SecurityType", tString...),
				currency: l.field("Currency", tString...), desc: l.field("SecurityDesc", tString...),
				tick: l.field("MinPriceIncrement", tDec...), priceExp: l.field("PriceExponent", tInt...),
				sizeExp: l.field("SizeExponent", tInt...), bookType: l.field("MDBookType", tUint...),
				depth: l.field("MarketDepth", tUint...), channel: l.field("ApplID", tString...)}
		}
		errs = append(errs, l.err)
	}
	{
		l := get(TemplateStatus)
		if l.t != nil {
			c.stat = statLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				symbol: l.field("Symbol", tString...), status: l.field("SecurityTradingStatus", tUint...),
				session: l.field("TradingSessionID", tString...), text: l.field("Text", tString...)}
		}
		errs = append(errs, l.err)
	}
	{
		l := get(TemplateHeartbeat)
		if l.t != nil {
			c.hb = hbLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				lastSeq: l.field("LastMsgSeqNumProcessed", tUint...)}
		}
		errs = append(errs, l.err)
	}
	{
		l := get(TemplateReset)
		if l.t != nil {
			c.rst = rstLayout{t: l.t, seqNum: l.field("MsgSeqNum", tUint...), sendingTime: l.field("SendingTime", tUint...),
				newSeqNo: l.field("NewSeqNo", tUint...)}
		}
		errs = append(errs, l.err)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	c.g = newGenCodec(ts)
	return c, nil
}

// Decode decodes one FAST message (a datagram's payload after the sequence preamble),
// with fresh dictionaries, and returns its kind; the value is in the field of that kind.
// It returns an error for malformed FAST (a *fast.Error), for trailing bytes, and for a
// template the model does not know.
func (c *Codec) Decode(b []byte) (Kind, error) {
	k, err := c.decode(b)
	c.Kind = k
	return k, err
}

func (c *Codec) decode(b []byte) (Kind, error) {
	if c.g != nil {
		return c.decodeGen(b)
	}
	c.dec.Reset()
	n, err := c.dec.Decode(b, &c.in)
	if err != nil {
		return 0, err
	}
	if n != len(b) {
		return 0, fmt.Errorf("md: %d bytes after the %s message", len(b)-n, c.in.Template.Name)
	}
	g := c.in.Root()
	switch c.in.Template {
	case c.inc.t:
		m := &c.Incremental
		m.Header = Header{SeqNum: uint32(g.Uint(c.inc.seqNum)), SendingTime: int64(g.Uint(c.inc.sendingTime))}
		m.Continued = g.Present(c.inc.lastFrag) && g.Uint(c.inc.lastFrag) == 0
		m.Entries = readEntries(m.Entries[:0], g.Seq(c.inc.entries), &c.inc.e, true)
		return KindIncremental, nil
	case c.snap.t:
		m := &c.Snapshot
		l := &c.snap
		m.Header = Header{SeqNum: uint32(g.Uint(l.seqNum)), SendingTime: int64(g.Uint(l.sendingTime))}
		m.LastMsgSeqNumProcessed = uint32(g.Uint(l.lastProcessed))
		m.Symbol = g.Bytes(l.symbol)
		m.RptSeq = uint32(g.Uint(l.rptSeq))
		m.Continued = g.Present(l.lastFrag) && g.Uint(l.lastFrag) == 0
		m.Entries = readEntries(m.Entries[:0], g.Seq(l.entries), &l.e, false)
		return KindSnapshot, nil
	case c.def.t:
		m := &c.Definition
		l := &c.def
		*m = Definition{
			Header:        Header{SeqNum: uint32(g.Uint(l.seqNum)), SendingTime: int64(g.Uint(l.sendingTime))},
			TotNumReports: uint32(g.Uint(l.totNum)),
			Symbol:        g.Bytes(l.symbol),
			SecurityID:    g.Uint(l.secID),
			SecurityType:  g.Bytes(l.secType),
			Currency:      g.Bytes(l.currency),
			Description:   g.Bytes(l.desc),
			Tick:          decimalOf(g, l.tick),
			PriceExp:      int8(g.Int(l.priceExp)),
			SizeExp:       int8(g.Int(l.sizeExp)),
			BookType:      BookType(g.Uint(l.bookType)),
			MarketDepth:   uint32(g.Uint(l.depth)),
			Channel:       g.Bytes(l.channel),
		}
		return KindDefinition, nil
	case c.stat.t:
		l := &c.stat
		c.Status = Status{
			Header:        Header{SeqNum: uint32(g.Uint(l.seqNum)), SendingTime: int64(g.Uint(l.sendingTime))},
			Symbol:        g.Bytes(l.symbol),
			TradingStatus: uint32(g.Uint(l.status)),
			SessionID:     g.Bytes(l.session),
			Text:          g.Bytes(l.text),
		}
		return KindStatus, nil
	case c.hb.t:
		l := &c.hb
		c.Heartbeat = Heartbeat{Header: Header{SeqNum: uint32(g.Uint(l.seqNum)), SendingTime: int64(g.Uint(l.sendingTime))},
			LastSeqNum: uint32(g.Uint(l.lastSeq))}
		return KindHeartbeat, nil
	case c.rst.t:
		l := &c.rst
		c.Reset = Reset{Header: Header{SeqNum: uint32(g.Uint(l.seqNum)), SendingTime: int64(g.Uint(l.sendingTime))},
			NewSeqNo: uint32(g.Uint(l.newSeqNo))}
		return KindReset, nil
	}
	return 0, fmt.Errorf("md: template %s (id %d) is not a market-data message", c.in.Template.Name, c.in.Template.ID)
}

func decimalOf(g fast.Group, i int) Decimal {
	if !g.Present(i) {
		return Decimal{}
	}
	m, e := g.Decimal(i)
	return Decimal{Mantissa: m, Exp: int8(e), Valid: true}
}

func readEntries(dst []Entry, s fast.Seq, l *entryLayout, incremental bool) []Entry {
	for j := 0; j < s.Len(); j++ {
		g := s.Elem(j)
		var e Entry
		typ := g.Bytes(l.typ)
		if len(typ) > 0 {
			e.Type = EntryType(typ[0])
		}
		e.ID = g.Bytes(l.id)
		e.Price = decimalOf(g, l.px)
		e.Size = decimalOf(g, l.size)
		e.Orders = uint32(g.Uint(l.orders))
		if incremental {
			e.Action = Action(g.Uint(l.action))
			e.Symbol = g.Bytes(l.symbol)
			e.RptSeq = uint32(g.Uint(l.rptSeq))
		}
		dst = append(dst, e)
	}
	return dst
}

// Encoding. Each Append function resets the dictionaries, encodes one message and
// appends it to dst.

func (c *Codec) start(t *fast.Template, h Header, seqNum, sendingTime int) fast.Group {
	c.out.Reset(t)
	g := c.out.Root()
	g.SetUint(seqNum, uint64(h.SeqNum))
	g.SetUint(sendingTime, uint64(h.SendingTime))
	return g
}

func (c *Codec) finish(dst []byte) ([]byte, error) {
	c.enc.Reset()
	return c.enc.Encode(dst, &c.out)
}

func setBytes(g fast.Group, i int, b []byte) {
	if len(b) > 0 {
		g.SetBytes(i, b)
	}
}

func setDecimal(g fast.Group, i int, d Decimal) {
	if d.Valid {
		g.SetDecimal(i, d.Mantissa, int32(d.Exp))
	}
}

var entryTypeBytes = [256][]byte{}

func init() {
	for i := range entryTypeBytes {
		entryTypeBytes[i] = []byte{byte(i)}
	}
}

func writeEntries(s fast.Seq, entries []Entry, l *entryLayout, incremental bool) {
	for j := range entries {
		e := &entries[j]
		g := s.Elem(j)
		g.SetBytes(l.typ, entryTypeBytes[e.Type])
		setBytes(g, l.id, e.ID)
		setDecimal(g, l.px, e.Price)
		setDecimal(g, l.size, e.Size)
		if e.Orders != 0 {
			g.SetUint(l.orders, uint64(e.Orders))
		}
		if incremental {
			g.SetUint(l.action, uint64(e.Action))
			g.SetBytes(l.symbol, e.Symbol)
			g.SetUint(l.rptSeq, uint64(e.RptSeq))
		}
	}
}

// AppendIncremental appends the FAST encoding of m to dst.
func (c *Codec) AppendIncremental(dst []byte, m *Incremental) ([]byte, error) {
	if c.g != nil {
		return c.g.appendIncremental(dst, m)
	}
	l := &c.inc
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	if m.Continued {
		g.SetUint(l.lastFrag, 0)
	}
	writeEntries(g.SetSeq(l.entries, len(m.Entries)), m.Entries, &l.e, true)
	return c.finish(dst)
}

// AppendSnapshot appends the FAST encoding of m to dst.
func (c *Codec) AppendSnapshot(dst []byte, m *Snapshot) ([]byte, error) {
	if c.g != nil {
		return c.g.appendSnapshot(dst, m)
	}
	l := &c.snap
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	g.SetUint(l.lastProcessed, uint64(m.LastMsgSeqNumProcessed))
	g.SetBytes(l.symbol, m.Symbol)
	g.SetUint(l.rptSeq, uint64(m.RptSeq))
	if m.Continued {
		g.SetUint(l.lastFrag, 0)
	}
	writeEntries(g.SetSeq(l.entries, len(m.Entries)), m.Entries, &l.e, false)
	return c.finish(dst)
}

// AppendDefinition appends the FAST encoding of m to dst.
func (c *Codec) AppendDefinition(dst []byte, m *Definition) ([]byte, error) {
	if c.g != nil {
		return c.g.appendDefinition(dst, m)
	}
	l := &c.def
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	if m.TotNumReports != 0 {
		g.SetUint(l.totNum, uint64(m.TotNumReports))
	}
	g.SetBytes(l.symbol, m.Symbol)
	if m.SecurityID != 0 {
		g.SetUint(l.secID, m.SecurityID)
	}
	setBytes(g, l.secType, m.SecurityType)
	setBytes(g, l.currency, m.Currency)
	setBytes(g, l.desc, m.Description)
	tick := m.Tick
	if !tick.Valid {
		tick = Dec(1, m.PriceExp)
	}
	setDecimal(g, l.tick, tick)
	g.SetInt(l.priceExp, int64(m.PriceExp))
	g.SetInt(l.sizeExp, int64(m.SizeExp))
	bt := m.BookType
	if bt == 0 {
		bt = PriceDepth
	}
	g.SetUint(l.bookType, uint64(bt))
	if m.MarketDepth != 0 {
		g.SetUint(l.depth, uint64(m.MarketDepth))
	}
	g.SetBytes(l.channel, m.Channel)
	return c.finish(dst)
}

// AppendStatus appends the FAST encoding of m to dst.
func (c *Codec) AppendStatus(dst []byte, m *Status) ([]byte, error) {
	if c.g != nil {
		return c.g.appendStatus(dst, m)
	}
	l := &c.stat
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	g.SetBytes(l.symbol, m.Symbol)
	if m.TradingStatus != 0 {
		g.SetUint(l.status, uint64(m.TradingStatus))
	}
	setBytes(g, l.session, m.SessionID)
	setBytes(g, l.text, m.Text)
	return c.finish(dst)
}

// AppendHeartbeat appends the FAST encoding of m to dst.
func (c *Codec) AppendHeartbeat(dst []byte, m *Heartbeat) ([]byte, error) {
	if c.g != nil {
		return c.g.appendHeartbeat(dst, m)
	}
	l := &c.hb
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	g.SetUint(l.lastSeq, uint64(m.LastSeqNum))
	return c.finish(dst)
}

// AppendReset appends the FAST encoding of m to dst.
func (c *Codec) AppendReset(dst []byte, m *Reset) ([]byte, error) {
	if c.g != nil {
		return c.g.appendReset(dst, m)
	}
	l := &c.rst
	g := c.start(l.t, m.Header, l.seqNum, l.sendingTime)
	g.SetUint(l.newSeqNo, uint64(m.NewSeqNo))
	return c.finish(dst)
}

// Peek returns the kind of the FAST message in b from its template identifier alone,
// without decoding it. Every datagram starts with fresh dictionaries, so its first
// message carries the identifier; ok is false if b does not start with one.
func (c *Codec) Peek(b []byte) (kind Kind, ok bool) {
	i := 0
	for i < len(b) && b[i]&0x80 == 0 {
		i++
	}
	if i >= len(b) || b[0]&0x40 == 0 {
		return 0, false
	}
	id, n := fast.ConsumeUint(b[i+1:])
	if n <= 0 {
		return 0, false
	}
	switch {
	case id == uint64(c.inc.t.ID):
		return KindIncremental, true
	case id == uint64(c.hb.t.ID):
		return KindHeartbeat, true
	case id == uint64(c.rst.t.ID):
		return KindReset, true
	case id == uint64(c.def.t.ID):
		return KindDefinition, true
	case id == uint64(c.stat.t.ID):
		return KindStatus, true
	case id == uint64(c.snap.t.ID):
		return KindSnapshot, true
	}
	return 0, false
}
