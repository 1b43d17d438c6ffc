package md

// FIX tag-value mapping of the model, for the recovery and distribution sessions
// (FIXT.1.1 transport, FIX.5.0SP2 application messages, DefaultApplVerID 9).
//
// The builders return messages with BeginString and MsgType set; a quickfix session fills
// in the rest of the header (SenderCompID, TargetCompID, MsgSeqNum, SendingTime) when it
// sends them. The readers accept messages built here or parsed from the wire, copy what
// they keep (nothing in the result aliases the message), and reject malformed input with a
// *FIXError naming the tag and the problem.
//
// Prices and sizes travel as FIX Float strings written from the mantissa and exponent,
// never through a float: Dec(10120, -2) is written "101.20" and read back as mantissa
// 10120, exponent -2. A positive exponent is written out in zeros (Dec(5, 3) is "5000")
// and read back at exponent 0 — the same value, which Decimal.At converts to any exponent.

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"
)

// FIX MsgType values of the messages mapped here, beyond the model's Kinds.
const (
	MsgTypeMarketDataRequest       = "V"
	MsgTypeMarketDataRequestReject = "Y"
)

// Custom tags of SecurityDefinition (d).
const (
	TagPriceExponent quickfix.Tag = 20001 // the instrument's price exponent (int, -63..63)
	TagSizeExponent  quickfix.Tag = 20002 // the instrument's size exponent (int, -63..63)
)

// maxFIXDecimalDigits is the most significant digits a FIX decimal may carry: every
// 18-digit mantissa fits an int64.
const maxFIXDecimalDigits = 18

// ApplFields are the application-level sequencing fields a FIX market-data message carries
// on the recovery and distribution sessions. Each is optional: the zero value is absent.
type ApplFields struct {
	ApplID         string // ApplID (1180): the channel
	ApplSeqNum     uint32 // ApplSeqNum (1181): the channel sequence number
	ApplResendFlag bool   // ApplResendFlag (1352): the message is a retransmission
	MDReqID        string // MDReqID (262): the request this message answers
}

// The ToFIX functions write ApplSeqNum (1181) from appl.ApplSeqNum if it is non-zero and
// from the message's Header.SeqNum otherwise; the FromFIX functions set both from 1181.
// SendingTime goes to the header (52) and, when ApplResendFlag is set, to OrigSendingTime
// (122) too, since the session overwrites 52 with the time it sends the retransmission;
// the readers take 122 when ApplResendFlag is set and 122 is present, and 52 otherwise.

// FIXError reports a FIX message that does not map to the model.
type FIXError struct {
	MsgType string       // MsgType (35) of the message, empty if unknown
	Tag     quickfix.Tag // the offending tag; 0 if the problem is not one tag's
	Entry   int          // index of the repeating-group entry, -1 outside a group
	Reason  string
}

func (e *FIXError) Error() string {
	var b []byte
	b = append(b, "md: FIX "...)
	if e.MsgType != "" {
		b = append(b, "35="...)
		b = append(b, e.MsgType...)
		b = append(b, ' ')
	}
	if e.Tag != 0 {
		b = append(b, "tag "...)
		b = strconv.AppendInt(b, int64(e.Tag), 10)
		b = append(b, ' ')
	}
	if e.Entry >= 0 {
		b = append(b, "entry "...)
		b = strconv.AppendInt(b, int64(e.Entry), 10)
		b = append(b, ' ')
	}
	b = append(b[:len(b)-1], ": "...)
	b = append(b, e.Reason...)
	return string(b)
}

// ParseFIX parses one FIX message from b. It wraps quickfix.ParseMessage, whose parser can
// panic on some malformed input (v0.9.7: an XmlDataLen (212) longer than the message),
// and turns such a panic into an error.
func ParseFIX(b []byte) (msg *quickfix.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, &FIXError{Entry: -1, Reason: fmt.Sprintf("malformed message: %v", r)}
		}
	}()
	msg = quickfix.NewMessage()
	if err := quickfix.ParseMessage(msg, bytes.NewBuffer(bytes.Clone(b))); err != nil {
		return nil, fmt.Errorf("md: FIX: %w", err)
	}
	return msg, nil
}

// KindOfFIX returns the Kind of a FIX market-data message from its MsgType (35): X, W, d
// or f. Any other MsgType, session messages included, is an error.
func KindOfFIX(msg *quickfix.Message) (Kind, error) {
	t, err := msg.Header.GetBytes(tag.MsgType)
	if err != nil {
		return 0, &FIXError{Tag: tag.MsgType, Entry: -1, Reason: "missing required tag"}
	}
	if len(t) == 1 {
		switch k := Kind(t[0]); k {
		case KindIncremental, KindSnapshot, KindDefinition, KindStatus:
			return k, nil
		}
	}
	return 0, &FIXError{MsgType: fixMsgType(t), Tag: tag.MsgType, Entry: -1, Reason: "not a market-data message"}
}

// Repeating-group templates: the delimiter first, then the fields in FIX order.
var (
	fixIncEntries = quickfix.GroupTemplate{
		quickfix.GroupElement(tag.MDUpdateAction),
		quickfix.GroupElement(tag.MDEntryType),
		quickfix.GroupElement(tag.MDEntryID),
		quickfix.GroupElement(tag.Symbol),
		quickfix.GroupElement(tag.MDEntryPx),
		quickfix.GroupElement(tag.MDEntrySize),
		quickfix.GroupElement(tag.NumberOfOrders),
		quickfix.GroupElement(tag.RptSeq),
	}
	fixSnapEntries = quickfix.GroupTemplate{
		quickfix.GroupElement(tag.MDEntryType),
		quickfix.GroupElement(tag.MDEntryID),
		quickfix.GroupElement(tag.MDEntryPx),
		quickfix.GroupElement(tag.MDEntrySize),
		quickfix.GroupElement(tag.NumberOfOrders),
	}
	fixEntryTypes = quickfix.GroupTemplate{
		quickfix.GroupElement(tag.MDEntryType),
	}
	// The Instrument component of NoRelatedSym: Symbol is read, the rest tolerated.
	fixRelatedSyms = quickfix.GroupTemplate{
		quickfix.GroupElement(tag.Symbol),
		quickfix.GroupElement(tag.SymbolSfx),
		quickfix.GroupElement(tag.SecurityID),
		quickfix.GroupElement(tag.SecurityIDSource),
		quickfix.GroupElement(tag.Product),
		quickfix.GroupElement(tag.SecurityType),
		quickfix.GroupElement(tag.SecurityExchange),
		quickfix.GroupElement(tag.SecurityGroup),
	}
)

// IncrementalToFIX builds a MarketDataIncrementalRefresh (X) from m. Every entry is
// written with MDUpdateAction, MDEntryType, Symbol, RptSeq, and MDEntryID, MDEntryPx,
// MDEntrySize and NumberOfOrders when present. String values must not contain SOH (0x01).
func IncrementalToFIX(m *Incremental, appl ApplFields) *quickfix.Message {
	msg := newFIXMessage(string(KindIncremental))
	fixWriteCommon(msg, m.Header, appl)
	if m.Continued {
		msg.Body.SetString(tag.LastFragment, "N")
	}
	g := quickfix.NewRepeatingGroup(tag.NoMDEntries, fixIncEntries)
	for i := range m.Entries {
		e := &m.Entries[i]
		ge := g.Add()
		ge.SetInt(tag.MDUpdateAction, int(e.Action))
		ge.SetString(tag.MDEntryType, fixChar(byte(e.Type)))
		fixSetBytes(&ge.FieldMap, tag.MDEntryID, e.ID)
		fixSetBytes(&ge.FieldMap, tag.Symbol, e.Symbol)
		fixSetDecimal(&ge.FieldMap, tag.MDEntryPx, e.Price)
		fixSetDecimal(&ge.FieldMap, tag.MDEntrySize, e.Size)
		if e.Orders != 0 {
			fixSetUint(&ge.FieldMap, tag.NumberOfOrders, uint64(e.Orders))
		}
		fixSetUint(&ge.FieldMap, tag.RptSeq, uint64(e.RptSeq))
	}
	msg.Body.SetGroup(g)
	return msg
}

// IncrementalFromFIX reads a MarketDataIncrementalRefresh (X) into dst, reusing
// dst.Entries' backing array, and returns its application fields. Each entry needs
// MDUpdateAction (0, 1 or 2), MDEntryType (0, 1 or 2), Symbol and RptSeq.
func IncrementalFromFIX(msg *quickfix.Message, dst *Incremental) (ApplFields, error) {
	r := newFIXReader(msg, KindIncremental)
	appl := r.common(&dst.Header)
	dst.Continued = r.continued()
	dst.Entries = dst.Entries[:0]
	g := r.group(tag.NoMDEntries, fixIncEntries, true)
	for i := 0; g != nil && i < g.Len() && r.err == nil; i++ {
		r.enter(&g.Get(i).FieldMap, i)
		var e Entry
		e.Action = r.action()
		e.Type = r.entryType()
		e.ID = r.bytes(tag.MDEntryID, false)
		e.Symbol = r.bytes(tag.Symbol, true)
		e.Price = r.decimal(tag.MDEntryPx)
		e.Size = r.decimal(tag.MDEntrySize)
		e.Orders = uint32(r.uint(tag.NumberOfOrders, false, 32))
		e.RptSeq = uint32(r.uint(tag.RptSeq, true, 32))
		dst.Entries = append(dst.Entries, e)
	}
	if r.err != nil {
		return ApplFields{}, r.err
	}
	return appl, nil
}

// SnapshotToFIX builds a MarketDataSnapshotFullRefresh (W) from m: Symbol, RptSeq,
// LastMsgSeqNumProcessed (369, a standard header field) and the entries with MDEntryType,
// MDEntryID, MDEntryPx, MDEntrySize and NumberOfOrders; the entries' Action, Symbol and
// RptSeq, meaningful only in incrementals, are not written.
func SnapshotToFIX(m *Snapshot, appl ApplFields) *quickfix.Message {
	msg := newFIXMessage(string(KindSnapshot))
	fixWriteCommon(msg, m.Header, appl)
	fixSetUint(&msg.Header.FieldMap, tag.LastMsgSeqNumProcessed, uint64(m.LastMsgSeqNumProcessed))
	fixSetBytes(&msg.Body.FieldMap, tag.Symbol, m.Symbol)
	fixSetUint(&msg.Body.FieldMap, tag.RptSeq, uint64(m.RptSeq))
	if m.Continued {
		msg.Body.SetString(tag.LastFragment, "N")
	}
	g := quickfix.NewRepeatingGroup(tag.NoMDEntries, fixSnapEntries)
	for i := range m.Entries {
		e := &m.Entries[i]
		ge := g.Add()
		ge.SetString(tag.MDEntryType, fixChar(byte(e.Type)))
		fixSetBytes(&ge.FieldMap, tag.MDEntryID, e.ID)
		fixSetDecimal(&ge.FieldMap, tag.MDEntryPx, e.Price)
		fixSetDecimal(&ge.FieldMap, tag.MDEntrySize, e.Size)
		if e.Orders != 0 {
			fixSetUint(&ge.FieldMap, tag.NumberOfOrders, uint64(e.Orders))
		}
	}
	msg.Body.SetGroup(g)
	return msg
}

// SnapshotFromFIX reads a MarketDataSnapshotFullRefresh (W) into dst, reusing
// dst.Entries' backing array. Symbol, RptSeq, LastMsgSeqNumProcessed and NoMDEntries
// (possibly 0: an empty book) are required.
func SnapshotFromFIX(msg *quickfix.Message, dst *Snapshot) (ApplFields, error) {
	r := newFIXReader(msg, KindSnapshot)
	appl := r.common(&dst.Header)
	r.enter(&msg.Header.FieldMap, -1)
	dst.LastMsgSeqNumProcessed = uint32(r.uint(tag.LastMsgSeqNumProcessed, true, 32))
	r.enter(&msg.Body.FieldMap, -1)
	dst.Symbol = r.bytes(tag.Symbol, true)
	dst.RptSeq = uint32(r.uint(tag.RptSeq, true, 32))
	dst.Continued = r.continued()
	dst.Entries = dst.Entries[:0]
	g := r.group(tag.NoMDEntries, fixSnapEntries, true)
	for i := 0; g != nil && i < g.Len() && r.err == nil; i++ {
		r.enter(&g.Get(i).FieldMap, i)
		var e Entry
		e.Type = r.entryType()
		e.ID = r.bytes(tag.MDEntryID, false)
		e.Price = r.decimal(tag.MDEntryPx)
		e.Size = r.decimal(tag.MDEntrySize)
		e.Orders = uint32(r.uint(tag.NumberOfOrders, false, 32))
		dst.Entries = append(dst.Entries, e)
	}
	if r.err != nil {
		return ApplFields{}, r.err
	}
	return appl, nil
}

// DefinitionToFIX builds a SecurityDefinition (d) from m. ApplID (1180) carries the
// instrument's channel, m.Channel, as in the FAST-era exchange feeds, so appl.ApplID is
// not written; SecurityIDSource (22) is written as 8 (exchange symbol) with SecurityID.
func DefinitionToFIX(m *Definition, appl ApplFields) *quickfix.Message {
	msg := newFIXMessage(string(KindDefinition))
	appl.ApplID = ""
	fixWriteCommon(msg, m.Header, appl)
	b := &msg.Body.FieldMap
	fixSetBytes(b, tag.Symbol, m.Symbol)
	if m.SecurityID != 0 {
		fixSetUint(b, tag.SecurityID, m.SecurityID)
		b.SetString(tag.SecurityIDSource, "8")
	}
	fixSetBytes(b, tag.SecurityType, m.SecurityType)
	fixSetBytes(b, tag.Currency, m.Currency)
	fixSetBytes(b, tag.SecurityDesc, m.Description)
	fixSetDecimal(b, tag.MinPriceIncrement, m.Tick)
	b.SetInt(TagPriceExponent, int(m.PriceExp))
	b.SetInt(TagSizeExponent, int(m.SizeExp))
	if m.BookType != 0 {
		fixSetUint(b, tag.MDBookType, uint64(m.BookType))
	}
	if m.MarketDepth != 0 {
		fixSetUint(b, tag.MarketDepth, uint64(m.MarketDepth))
	}
	fixSetBytes(b, tag.ApplID, m.Channel)
	if m.TotNumReports != 0 {
		fixSetUint(b, tag.TotNumReports, uint64(m.TotNumReports))
	}
	return msg
}

// DefinitionFromFIX reads a SecurityDefinition (d) into dst. Symbol and the custom
// exponent tags 20001 and 20002 are required; the returned ApplFields.ApplID is the
// instrument's channel, as dst.Channel.
func DefinitionFromFIX(msg *quickfix.Message, dst *Definition) (ApplFields, error) {
	r := newFIXReader(msg, KindDefinition)
	appl := r.common(&dst.Header)
	dst.Symbol = r.bytes(tag.Symbol, true)
	dst.SecurityID = r.uint(tag.SecurityID, false, 64)
	dst.SecurityType = r.bytes(tag.SecurityType, false)
	dst.Currency = r.bytes(tag.Currency, false)
	dst.Description = r.bytes(tag.SecurityDesc, false)
	dst.Tick = r.decimal(tag.MinPriceIncrement)
	dst.PriceExp = r.exponent(TagPriceExponent)
	dst.SizeExp = r.exponent(TagSizeExponent)
	dst.BookType = BookType(r.uint(tag.MDBookType, false, 8))
	if dst.BookType > OrderDepth {
		r.fail(tag.MDBookType, "unknown MDBookType %d", dst.BookType)
	}
	dst.MarketDepth = uint32(r.uint(tag.MarketDepth, false, 32))
	dst.Channel = r.bytes(tag.ApplID, false)
	dst.TotNumReports = uint32(r.uint(tag.TotNumReports, false, 32))
	if r.err != nil {
		return ApplFields{}, r.err
	}
	return appl, nil
}

// StatusToFIX builds a SecurityStatus (f) from m: Symbol, SecurityTradingStatus (326, if
// non-zero), TradingSessionID (336) and Text (58), each when present.
func StatusToFIX(m *Status, appl ApplFields) *quickfix.Message {
	msg := newFIXMessage(string(KindStatus))
	fixWriteCommon(msg, m.Header, appl)
	b := &msg.Body.FieldMap
	fixSetBytes(b, tag.Symbol, m.Symbol)
	if m.TradingStatus != 0 {
		fixSetUint(b, tag.SecurityTradingStatus, uint64(m.TradingStatus))
	}
	fixSetBytes(b, tag.TradingSessionID, m.SessionID)
	fixSetBytes(b, tag.Text, m.Text)
	return msg
}

// StatusFromFIX reads a SecurityStatus (f) into dst.
func StatusFromFIX(msg *quickfix.Message, dst *Status) (ApplFields, error) {
	r := newFIXReader(msg, KindStatus)
	appl := r.common(&dst.Header)
	dst.Symbol = r.bytes(tag.Symbol, false)
	dst.TradingStatus = uint32(r.uint(tag.SecurityTradingStatus, false, 32))
	dst.SessionID = r.bytes(tag.TradingSessionID, false)
	dst.Text = r.bytes(tag.Text, false)
	if r.err != nil {
		return ApplFields{}, r.err
	}
	return appl, nil
}

// SubscriptionRequestType (263) values.
const (
	SubscriptionSnapshot    byte = '0' // a snapshot, or a retransmission with ApplBegSeqNum
	SubscriptionSubscribe   byte = '1' // snapshot plus updates
	SubscriptionUnsubscribe byte = '2' // cancel the subscription MDReqID names
)

// MarketDataRequest is a MarketDataRequest (V): a snapshot, subscription or unsubscription
// for Symbols, or for a whole channel (ApplID), or a retransmission of a channel's range
// BegSeqNum..EndSeqNum.
type MarketDataRequest struct {
	MDReqID          string   // MDReqID (262), required
	SubscriptionType byte     // SubscriptionRequestType (263): SubscriptionSnapshot, ...
	ApplID           string   // ApplID (1180): the channel; empty if absent
	BegSeqNum        uint32   // ApplBegSeqNum (1182); 0 if absent
	EndSeqNum        uint32   // ApplEndSeqNum (1183); 0 if absent
	Symbols          []string // NoRelatedSym (146) / Symbol (55); a symbol may be a prefix pattern such as "SB*"
	MarketDepth      int      // MarketDepth (264); 0 is the full book
}

// ToFIX builds the request. MarketDepth (264) and NoMDEntryTypes (267), required by FIX,
// are always written, the latter with bid (0) and offer (1). A zero SubscriptionType is
// written as SubscriptionSnapshot.
func (r MarketDataRequest) ToFIX() *quickfix.Message {
	msg := newFIXMessage(MsgTypeMarketDataRequest)
	b := &msg.Body.FieldMap
	b.SetString(tag.MDReqID, r.MDReqID)
	b.SetString(tag.SubscriptionRequestType, fixChar(r.subscriptionType()))
	b.SetInt(tag.MarketDepth, r.MarketDepth)
	types := quickfix.NewRepeatingGroup(tag.NoMDEntryTypes, fixEntryTypes)
	types.Add().SetString(tag.MDEntryType, fixChar(byte(Bid)))
	types.Add().SetString(tag.MDEntryType, fixChar(byte(Offer)))
	b.SetGroup(types)
	if len(r.Symbols) > 0 {
		syms := quickfix.NewRepeatingGroup(tag.NoRelatedSym, fixRelatedSyms)
		for _, s := range r.Symbols {
			syms.Add().SetString(tag.Symbol, s)
		}
		b.SetGroup(syms)
	}
	if r.ApplID != "" {
		b.SetString(tag.ApplID, r.ApplID)
	}
	if r.BegSeqNum != 0 {
		fixSetUint(b, tag.ApplBegSeqNum, uint64(r.BegSeqNum))
	}
	if r.EndSeqNum != 0 {
		fixSetUint(b, tag.ApplEndSeqNum, uint64(r.EndSeqNum))
	}
	return msg
}

// MarketDataRequestFromFIX reads a MarketDataRequest (V). MDReqID, SubscriptionRequestType
// (0, 1 or 2) and MarketDepth (non-negative) are required; NoMDEntryTypes is checked when
// present but not kept.
func MarketDataRequestFromFIX(msg *quickfix.Message) (MarketDataRequest, error) {
	var req MarketDataRequest
	r := newFIXReaderType(msg, MsgTypeMarketDataRequest)
	req.MDReqID = r.string(tag.MDReqID, true)
	req.SubscriptionType = r.char(tag.SubscriptionRequestType, true)
	switch req.SubscriptionType {
	case SubscriptionSnapshot, SubscriptionSubscribe, SubscriptionUnsubscribe, 0:
	default:
		r.fail(tag.SubscriptionRequestType, "unknown SubscriptionRequestType %q", req.SubscriptionType)
	}
	req.MarketDepth = int(r.uint(tag.MarketDepth, true, 31))
	if g := r.group(tag.NoMDEntryTypes, fixEntryTypes, false); g != nil {
		for i := 0; i < g.Len() && r.err == nil; i++ {
			r.enter(&g.Get(i).FieldMap, i)
			r.char(tag.MDEntryType, true)
		}
		r.enter(&msg.Body.FieldMap, -1)
	}
	if g := r.group(tag.NoRelatedSym, fixRelatedSyms, false); g != nil {
		for i := 0; i < g.Len() && r.err == nil; i++ {
			r.enter(&g.Get(i).FieldMap, i)
			req.Symbols = append(req.Symbols, r.string(tag.Symbol, true))
		}
		r.enter(&msg.Body.FieldMap, -1)
	}
	req.ApplID = r.string(tag.ApplID, false)
	req.BegSeqNum = uint32(r.uint(tag.ApplBegSeqNum, false, 32))
	req.EndSeqNum = uint32(r.uint(tag.ApplEndSeqNum, false, 32))
	if r.err != nil {
		return MarketDataRequest{}, r.err
	}
	return req, nil
}

func (r MarketDataRequest) subscriptionType() byte {
	if r.SubscriptionType == 0 {
		return SubscriptionSnapshot
	}
	return r.SubscriptionType
}

// MDReqRejReason (281) values.
const (
	RejectUnknownSymbol                      byte = '0'
	RejectDuplicateMDReqID                   byte = '1'
	RejectInsufficientBandwidth              byte = '2'
	RejectInsufficientPermissions            byte = '3'
	RejectUnsupportedSubscriptionRequestType byte = '4'
	RejectUnsupportedMarketDepth             byte = '5'
	RejectUnsupportedMDUpdateType            byte = '6'
	RejectUnsupportedAggregatedBook          byte = '7'
	RejectUnsupportedMDEntryType             byte = '8'
	RejectUnsupportedTradingSessionID        byte = '9'
	RejectUnsupportedScope                   byte = 'A'
	RejectUnsupportedOpenCloseSettleFlag     byte = 'B'
	RejectUnsupportedMDImplicitDelete        byte = 'C'
	RejectInsufficientCredit                 byte = 'D'
)

// MarketDataReject is a MarketDataRequestReject (Y).
type MarketDataReject struct {
	MDReqID string // MDReqID (262) of the rejected request, required
	Reason  byte   // MDReqRejReason (281): RejectUnknownSymbol, ...; 0 if absent
	Text    string // Text (58); empty if absent
}

// ToFIX builds the reject.
func (r MarketDataReject) ToFIX() *quickfix.Message {
	msg := newFIXMessage(MsgTypeMarketDataRequestReject)
	msg.Body.SetString(tag.MDReqID, r.MDReqID)
	if r.Reason != 0 {
		msg.Body.SetString(tag.MDReqRejReason, fixChar(r.Reason))
	}
	if r.Text != "" {
		msg.Body.SetString(tag.Text, r.Text)
	}
	return msg
}

// MarketDataRejectFromFIX reads a MarketDataRequestReject (Y).
func MarketDataRejectFromFIX(msg *quickfix.Message) (MarketDataReject, error) {
	var rej MarketDataReject
	r := newFIXReaderType(msg, MsgTypeMarketDataRequestReject)
	rej.MDReqID = r.string(tag.MDReqID, true)
	rej.Reason = r.char(tag.MDReqRejReason, false)
	if c := rej.Reason; c != 0 && !('0' <= c && c <= '9' || 'A' <= c && c <= 'D') {
		r.fail(tag.MDReqRejReason, "unknown MDReqRejReason %q", c)
	}
	rej.Text = r.string(tag.Text, false)
	if r.err != nil {
		return MarketDataReject{}, r.err
	}
	return rej, nil
}

// Writing.

func newFIXMessage(msgType string) *quickfix.Message {
	msg := quickfix.NewMessage()
	msg.Header.SetString(tag.BeginString, quickfix.BeginStringFIXT11)
	msg.Header.SetString(tag.MsgType, msgType)
	return msg
}

// fixWriteCommon writes the header times and the application fields.
func fixWriteCommon(msg *quickfix.Message, h Header, appl ApplFields) {
	if h.SendingTime != 0 {
		ts := quickfix.FIXUTCTimestamp{Time: time.Unix(0, h.SendingTime).UTC(), Precision: quickfix.Nanos}
		msg.Header.SetField(tag.SendingTime, ts)
		if appl.ApplResendFlag {
			msg.Header.SetField(tag.OrigSendingTime, ts)
		}
	}
	b := &msg.Body.FieldMap
	if appl.MDReqID != "" {
		b.SetString(tag.MDReqID, appl.MDReqID)
	}
	if appl.ApplID != "" {
		b.SetString(tag.ApplID, appl.ApplID)
	}
	seq := appl.ApplSeqNum
	if seq == 0 {
		seq = h.SeqNum
	}
	if seq != 0 {
		fixSetUint(b, tag.ApplSeqNum, uint64(seq))
	}
	if appl.ApplResendFlag {
		b.SetString(tag.ApplResendFlag, "Y")
	}
}

// fixSetBytes sets t to a copy of v (the model's slices may alias a decoder's buffers) if v
// is not empty: FIX has no empty values.
func fixSetBytes(fm *quickfix.FieldMap, t quickfix.Tag, v []byte) {
	if len(v) > 0 {
		fm.SetString(t, string(v))
	}
}

func fixChar(c byte) string { return string([]byte{c}) }

func fixSetUint(fm *quickfix.FieldMap, t quickfix.Tag, v uint64) {
	fm.SetBytes(t, strconv.AppendUint(nil, v, 10))
}

func fixSetDecimal(fm *quickfix.FieldMap, t quickfix.Tag, d Decimal) {
	if d.Valid {
		fm.SetBytes(t, appendFIXDecimal(nil, d))
	}
}

// appendFIXDecimal appends d as a FIX Float in plain notation, keeping the exponent's
// fractional digits: Dec(10120, -2) is "101.20", Dec(5, 3) is "5000", Dec(-5, -1) "-0.5".
func appendFIXDecimal(dst []byte, d Decimal) []byte {
	u := uint64(d.Mantissa)
	if d.Mantissa < 0 {
		dst = append(dst, '-')
		u = uint64(-(d.Mantissa + 1)) + 1 // safe for math.MinInt64
	}
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], u, 10)
	if d.Exp >= 0 {
		dst = append(dst, digits...)
		for range int(d.Exp) {
			dst = append(dst, '0')
		}
		return dst
	}
	frac := -int(d.Exp)
	if frac >= len(digits) {
		dst = append(dst, '0', '.')
		for range frac - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-frac]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-frac:]...)
}
