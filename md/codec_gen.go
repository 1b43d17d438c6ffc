package md

import (
	"fmt"

	"fastfeed/fast"
	"fastfeed/fast/codecs/ffcodec"
	"fastfeed/fast/fastrt"
)

// genCodec is the Codec's path through the codec generated from fixtures/templates.xml
// (fast/codecs/ffcodec), taken when the Codec's templates have that file's exact content:
// the same bytes and errors as the interpreter, in a fraction of the time.
type genCodec struct {
	ts  *fast.Templates
	dec *ffcodec.Decoder
	enc *ffcodec.Encoder
	in  ffcodec.Message
	out ffcodec.Message
}

func newGenCodec(ts *fast.Templates) *genCodec {
	if ts.SourceSHA256() != ffcodec.SourceSHA256 {
		return nil
	}
	return &genCodec{ts: ts, dec: ffcodec.NewDecoder(), enc: ffcodec.NewEncoder()}
}

// Generated reports whether c encodes and decodes with generated code.
func (c *Codec) Generated() bool { return c.g != nil }

func genDecimal(d fastrt.Decimal, ok bool) Decimal {
	if !ok {
		return Decimal{}
	}
	return Decimal{Mantissa: d.Mantissa, Exp: int8(d.Exponent), Valid: true}
}

func toGenDecimal(d Decimal) (fastrt.Decimal, bool) {
	return fastrt.Decimal{Mantissa: d.Mantissa, Exponent: int32(d.Exp)}, d.Valid
}

func optBytes(b []byte) ([]byte, bool) { return b, len(b) > 0 }

// optional and optionalUint give an optional field's value, or nothing if it is absent (a
// generated decoder leaves absent values as they were).
func optional(b []byte, ok bool) []byte {
	if !ok {
		return nil
	}
	return b
}

func optionalUint[T uint32 | uint64](x T, ok bool) T {
	if !ok {
		return 0
	}
	return x
}

func (c *Codec) decodeGen(b []byte) (Kind, error) {
	g := c.g
	g.dec.Reset()
	n, err := g.dec.Decode(b, &g.in)
	if err != nil {
		return 0, err
	}
	if n != len(b) {
		name := ""
		if t := g.ts.ByID(g.in.ID); t != nil {
			name = t.Name
		}
		return 0, fmt.Errorf("md: %d bytes after the %s message", len(b)-n, name)
	}
	switch g.in.ID {
	case ffcodec.IDMDIncRefresh:
		v := &g.in.MDIncRefresh
		m := &c.Incremental
		m.Header = Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)}
		m.Continued = v.HasLastFragment && v.LastFragment == 0
		es := m.Entries[:0]
		for j := range v.MDEntries {
			x := &v.MDEntries[j]
			e := Entry{
				Action: Action(x.MDUpdateAction), Symbol: x.Symbol, RptSeq: x.RptSeq, ID: optional(x.MDEntryID, x.HasMDEntryID),
				Price: genDecimal(x.MDEntryPx, x.HasMDEntryPx), Size: genDecimal(x.MDEntrySize, x.HasMDEntrySize),
				Orders: optionalUint(x.NumberOfOrders, x.HasNumberOfOrders),
			}
			if len(x.MDEntryType) > 0 {
				e.Type = EntryType(x.MDEntryType[0])
			}
			es = append(es, e)
		}
		m.Entries = es
		return KindIncremental, nil
	case ffcodec.IDMDSnapshotFullRefresh:
		v := &g.in.MDSnapshotFullRefresh
		m := &c.Snapshot
		m.Header = Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)}
		m.LastMsgSeqNumProcessed = v.LastMsgSeqNumProcessed
		m.Symbol = v.Symbol
		m.RptSeq = v.RptSeq
		m.Continued = v.HasLastFragment && v.LastFragment == 0
		es := m.Entries[:0]
		for j := range v.MDEntries {
			x := &v.MDEntries[j]
			e := Entry{ID: optional(x.MDEntryID, x.HasMDEntryID), Price: genDecimal(x.MDEntryPx, true), Size: genDecimal(x.MDEntrySize, true),
				Orders: optionalUint(x.NumberOfOrders, x.HasNumberOfOrders)}
			if len(x.MDEntryType) > 0 {
				e.Type = EntryType(x.MDEntryType[0])
			}
			es = append(es, e)
		}
		m.Entries = es
		return KindSnapshot, nil
	case ffcodec.IDSecurityDefinition:
		v := &g.in.SecurityDefinition
		c.Definition = Definition{
			Header:        Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)},
			TotNumReports: optionalUint(v.TotNumReports, v.HasTotNumReports),
			Symbol:        v.Symbol,
			SecurityID:    optionalUint(v.SecurityID, v.HasSecurityID),
			SecurityType:  optional(v.SecurityType, v.HasSecurityType),
			Currency:      optional(v.Currency, v.HasCurrency),
			Description:   optional(v.SecurityDesc, v.HasSecurityDesc),
			Tick:          genDecimal(v.MinPriceIncrement, true),
			PriceExp:      int8(v.PriceExponent),
			SizeExp:       int8(v.SizeExponent),
			BookType:      BookType(v.MDBookType),
			MarketDepth:   optionalUint(v.MarketDepth, v.HasMarketDepth),
			Channel:       v.ApplID,
		}
		return KindDefinition, nil
	case ffcodec.IDSecurityStatus:
		v := &g.in.SecurityStatus
		c.Status = Status{
			Header:        Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)},
			Symbol:        v.Symbol,
			TradingStatus: optionalUint(v.SecurityTradingStatus, v.HasSecurityTradingStatus),
			SessionID:     optional(v.TradingSessionID, v.HasTradingSessionID),
			Text:          optional(v.Text, v.HasText),
		}
		return KindStatus, nil
	case ffcodec.IDHeartbeat:
		v := &g.in.Heartbeat
		c.Heartbeat = Heartbeat{Header: Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)}, LastSeqNum: v.LastMsgSeqNumProcessed}
		return KindHeartbeat, nil
	case ffcodec.IDSequenceReset:
		v := &g.in.SequenceReset
		c.Reset = Reset{Header: Header{SeqNum: v.MsgSeqNum, SendingTime: int64(v.SendingTime)}, NewSeqNo: v.NewSeqNo}
		return KindReset, nil
	}
	return 0, fmt.Errorf("md: template id %d is not a market-data message", g.in.ID)
}

func (g *genCodec) appendIncremental(dst []byte, m *Incremental) ([]byte, error) {
	v := &g.out.MDIncRefresh
	v.MsgSeqNum, v.SendingTime = m.SeqNum, uint64(m.SendingTime)
	v.LastFragment, v.HasLastFragment = 0, m.Continued
	if cap(v.MDEntries) < len(m.Entries) {
		v.MDEntries = make([]ffcodec.MDIncRefreshMDEntries, len(m.Entries), 2*len(m.Entries))
	}
	v.MDEntries = v.MDEntries[:len(m.Entries)]
	for j := range m.Entries {
		e := &m.Entries[j]
		x := &v.MDEntries[j]
		x.MDUpdateAction = uint32(e.Action)
		x.MDEntryType = entryTypeBytes[e.Type]
		x.Symbol = e.Symbol
		x.RptSeq = e.RptSeq
		x.MDEntryID, x.HasMDEntryID = optBytes(e.ID)
		x.MDEntryPx, x.HasMDEntryPx = toGenDecimal(e.Price)
		x.MDEntrySize, x.HasMDEntrySize = toGenDecimal(e.Size)
		x.NumberOfOrders, x.HasNumberOfOrders = e.Orders, e.Orders != 0
	}
	g.enc.Reset()
	return g.enc.EncodeMDIncRefresh(dst, v)
}

func (g *genCodec) appendSnapshot(dst []byte, m *Snapshot) ([]byte, error) {
	v := &g.out.MDSnapshotFullRefresh
	v.MsgSeqNum, v.SendingTime = m.SeqNum, uint64(m.SendingTime)
	v.LastMsgSeqNumProcessed, v.Symbol, v.RptSeq = m.LastMsgSeqNumProcessed, m.Symbol, m.RptSeq
	v.LastFragment, v.HasLastFragment = 0, m.Continued
	if cap(v.MDEntries) < len(m.Entries) {
		v.MDEntries = make([]ffcodec.MDSnapshotFullRefreshMDEntries, len(m.Entries), 2*len(m.Entries))
	}
	v.MDEntries = v.MDEntries[:len(m.Entries)]
	for j := range m.Entries {
		e := &m.Entries[j]
		x := &v.MDEntries[j]
		x.MDEntryType = entryTypeBytes[e.Type]
		x.MDEntryID, x.HasMDEntryID = optBytes(e.ID)
		if !e.Price.Valid || !e.Size.Valid {
			return dst, missingDecimal(e)
		}
		x.MDEntryPx, _ = toGenDecimal(e.Price)
		x.MDEntrySize, _ = toGenDecimal(e.Size)
		x.NumberOfOrders, x.HasNumberOfOrders = e.Orders, e.Orders != 0
	}
	g.enc.Reset()
	return g.enc.EncodeMDSnapshotFullRefresh(dst, v)
}

// missingDecimal is the interpreter's error for a snapshot entry without price or size.
func missingDecimal(e *Entry) error {
	name := "MDEntryPx"
	if e.Price.Valid {
		name = "MDEntrySize"
	}
	return &fast.Error{Code: fast.Missing, Offset: -1, Template: TemplateSnapshot, Field: name, Msg: "mandatory field has no value"}
}

func (g *genCodec) appendDefinition(dst []byte, m *Definition) ([]byte, error) {
	v := &g.out.SecurityDefinition
	v.MsgSeqNum, v.SendingTime = m.SeqNum, uint64(m.SendingTime)
	v.TotNumReports, v.HasTotNumReports = m.TotNumReports, m.TotNumReports != 0
	v.Symbol = m.Symbol
	v.SecurityID, v.HasSecurityID = m.SecurityID, m.SecurityID != 0
	v.SecurityType, v.HasSecurityType = optBytes(m.SecurityType)
	v.Currency, v.HasCurrency = optBytes(m.Currency)
	v.SecurityDesc, v.HasSecurityDesc = optBytes(m.Description)
	tick := m.Tick
	if !tick.Valid {
		tick = Dec(1, m.PriceExp)
	}
	v.MinPriceIncrement, _ = toGenDecimal(tick)
	v.PriceExponent, v.SizeExponent = int32(m.PriceExp), int32(m.SizeExp)
	bt := m.BookType
	if bt == 0 {
		bt = PriceDepth
	}
	v.MDBookType = uint32(bt)
	v.MarketDepth, v.HasMarketDepth = m.MarketDepth, m.MarketDepth != 0
	v.ApplID = m.Channel
	g.enc.Reset()
	return g.enc.EncodeSecurityDefinition(dst, v)
}

func (g *genCodec) appendStatus(dst []byte, m *Status) ([]byte, error) {
	v := &g.out.SecurityStatus
	v.MsgSeqNum, v.SendingTime = m.SeqNum, uint64(m.SendingTime)
	v.Symbol = m.Symbol
	v.SecurityTradingStatus, v.HasSecurityTradingStatus = m.TradingStatus, m.TradingStatus != 0
	v.TradingSessionID, v.HasTradingSessionID = optBytes(m.SessionID)
	v.Text, v.HasText = optBytes(m.Text)
	g.enc.Reset()
	return g.enc.EncodeSecurityStatus(dst, v)
}

func (g *genCodec) appendHeartbeat(dst []byte, m *Heartbeat) ([]byte, error) {
	v := &g.out.Heartbeat
	v.MsgSeqNum, v.SendingTime, v.LastMsgSeqNumProcessed = m.SeqNum, uint64(m.SendingTime), m.LastSeqNum
	g.enc.Reset()
	return g.enc.EncodeHeartbeat(dst, v)
}

func (g *genCodec) appendReset(dst []byte, m *Reset) ([]byte, error) {
	v := &g.out.SequenceReset
	v.MsgSeqNum, v.SendingTime, v.NewSeqNo = m.SeqNum, uint64(m.SendingTime), m.NewSeqNo
	g.enc.Reset()
	return g.enc.EncodeSequenceReset(dst, v)
}
