package natsbus

import (
	"errors"
	"fmt"
	"strconv"

	"fastfeed/md"
)

// Payload tags beyond the standard ones.
const (
	TagPublishTime = 20010 // publish time, ns since the Unix epoch (every message)
	TagPriceExp    = 20001 // W: the book's price exponent
	TagSizeExp     = 20002 // W: the book's size exponent
)

// Trading statuses of f messages (DESIGN.md).
const (
	StatusStale = 20 // SecurityTradingStatus (326) with Text "stale"
	StatusReady = 17 // with Text "ready": the book is whole again, a W follows
	TextStale   = "stale"
	TextReady   = "ready"
)

const soh = 0x01

// Message is one parsed payload. Symbol, Text and the entries' Symbol and ID alias the
// parsed bytes; Entries is reused by ParsePayload.
type Message struct {
	Kind          md.Kind // X, W or f
	Symbol        []byte
	PublishTime   int64  // 20010; 0 if absent
	RptSeq        uint32 // W: RptSeq (83) the snapshot is valid at
	LastSeq       uint32 // W: LastMsgSeqNumProcessed (369)
	PriceExp      int8   // W: 20001
	SizeExp       int8   // W: 20002
	HasExp        bool   // W: 20001 and 20002 were present
	TradingStatus uint32 // f: SecurityTradingStatus (326)
	Text          []byte // f: Text (58)
	Entries       []md.Entry
}

func appendTag(dst []byte, tag int, v uint64) []byte {
	dst = strconv.AppendInt(dst, int64(tag), 10)
	dst = append(dst, '=')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, soh)
}

func appendTagInt(dst []byte, tag int, v int64) []byte {
	dst = strconv.AppendInt(dst, int64(tag), 10)
	dst = append(dst, '=')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, soh)
}

func appendTagString(dst []byte, tag int, v string) []byte {
	dst = strconv.AppendInt(dst, int64(tag), 10)
	dst = append(dst, '=')
	dst = append(dst, v...)
	return append(dst, soh)
}

func appendTagBytes(dst []byte, tag int, v []byte) []byte {
	dst = strconv.AppendInt(dst, int64(tag), 10)
	dst = append(dst, '=')
	dst = append(dst, v...)
	return append(dst, soh)
}

func appendTagDecimal(dst []byte, tag int, d md.Decimal) []byte {
	dst = strconv.AppendInt(dst, int64(tag), 10)
	dst = append(dst, '=')
	dst = md.AppendFIXDecimal(dst, d)
	return append(dst, soh)
}

// AppendX appends a MarketDataIncrementalRefresh (X) of one instrument's entries: each
// entry with MDUpdateAction (279), MDEntryType (269), MDEntryID (278) if any, Symbol
// (55, symbol: the entries' own Symbol is not read), MDEntryPx (270), MDEntrySize (271)
// and NumberOfOrders (346) when present, and RptSeq (83). It allocates nothing beyond
// dst's growth. String values must not contain SOH.
func AppendX(dst []byte, symbol string, entries []md.Entry, publishTime int64) []byte {
	dst = append(dst, "35=X\x01"...)
	dst = appendTagInt(dst, TagPublishTime, publishTime)
	dst = appendTag(dst, 268, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		dst = append(dst, "279="...)
		dst = append(dst, '0'+byte(e.Action), soh)
		dst = append(dst, "269="...)
		dst = append(dst, byte(e.Type), soh)
		if len(e.ID) > 0 {
			dst = appendTagBytes(dst, 278, e.ID)
		}
		dst = appendTagString(dst, 55, symbol)
		if e.Price.Valid {
			dst = appendTagDecimal(dst, 270, e.Price)
		}
		if e.Size.Valid {
			dst = appendTagDecimal(dst, 271, e.Size)
		}
		if e.Orders != 0 {
			dst = appendTag(dst, 346, uint64(e.Orders))
		}
		dst = appendTag(dst, 83, uint64(e.RptSeq))
	}
	return dst
}

// AppendW appends a MarketDataSnapshotFullRefresh (W) of s with the book's exponents:
// LastMsgSeqNumProcessed (369), Symbol (55), RptSeq (83), the publish time, the price
// and size exponents (20001, 20002), then NoMDEntries (268) and each entry's MDEntryType
// (269), MDEntryID (278) if any, MDEntryPx (270), MDEntrySize (271) and NumberOfOrders
// (346) when present.
func AppendW(dst []byte, s *md.Snapshot, priceExp, sizeExp int8, publishTime int64) []byte {
	dst = append(dst, "35=W\x01"...)
	dst = appendTag(dst, 369, uint64(s.LastMsgSeqNumProcessed))
	dst = appendTagBytes(dst, 55, s.Symbol)
	dst = appendTag(dst, 83, uint64(s.RptSeq))
	dst = appendTagInt(dst, TagPublishTime, publishTime)
	dst = appendTagInt(dst, TagPriceExp, int64(priceExp))
	dst = appendTagInt(dst, TagSizeExp, int64(sizeExp))
	dst = appendTag(dst, 268, uint64(len(s.Entries)))
	for i := range s.Entries {
		e := &s.Entries[i]
		dst = append(dst, "269="...)
		dst = append(dst, byte(e.Type), soh)
		if len(e.ID) > 0 {
			dst = appendTagBytes(dst, 278, e.ID)
		}
		if e.Price.Valid {
			dst = appendTagDecimal(dst, 270, e.Price)
		}
		if e.Size.Valid {
			dst = appendTagDecimal(dst, 271, e.Size)
		}
		if e.Orders != 0 {
			dst = appendTag(dst, 346, uint64(e.Orders))
		}
	}
	return dst
}

// AppendF appends a SecurityStatus (f): Symbol (55), SecurityTradingStatus (326), Text
// (58) if not empty, and the publish time.
func AppendF(dst []byte, symbol string, tradingStatus uint32, text string, publishTime int64) []byte {
	dst = append(dst, "35=f\x01"...)
	dst = appendTagString(dst, 55, symbol)
	dst = appendTag(dst, 326, uint64(tradingStatus))
	if text != "" {
		dst = appendTagString(dst, 58, text)
	}
	return appendTagInt(dst, TagPublishTime, publishTime)
}

// PayloadError reports a payload that is not a message of the contract.
type PayloadError struct {
	Offset int // byte offset of the offending field
	Tag    int // its tag; 0 if the problem is not one tag's
	Reason string
}

func (e *PayloadError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("natsbus: payload: tag %d at byte %d: %s", e.Tag, e.Offset, e.Reason)
	}
	return fmt.Sprintf("natsbus: payload: byte %d: %s", e.Offset, e.Reason)
}

func perr(off, tag int, reason string) error {
	return &PayloadError{Offset: off, Tag: tag, Reason: reason}
}

// errNotPayload is returned for payloads that do not start with 35=X, 35=W or 35=f.
var errNotPayload = errors.New("natsbus: payload: does not start with 35=X, 35=W or 35=f")

// Entry field bits, for required and duplicate checks.
const (
	hasAction = 1 << iota
	hasType
	hasID
	hasSymbol
	hasPrice
	hasSize
	hasOrders
	hasRptSeq
)

// ParsePayload parses one payload into m, reusing m.Entries. It checks the contract:
// the message type, every field tag=value with a non-empty value, the known fields'
// values, the entries' count (268) and required fields (X: 279, 269, 55, 83; W: 269),
// one instrument per message. Unknown tags before the entries are skipped.
func ParsePayload(b []byte, m *Message) error {
	if len(b) < 5 || b[0] != '3' || b[1] != '5' || b[2] != '=' || b[4] != soh {
		return errNotPayload
	}
	*m = Message{Kind: md.Kind(b[3]), Entries: m.Entries[:0]}
	switch m.Kind {
	case md.KindIncremental, md.KindSnapshot, md.KindStatus:
	default:
		return errNotPayload
	}
	var (
		count            = -1
		have             int // fields of the current entry
		e                *md.Entry
		expP, expS       bool
		gotRpt, gotLast  bool
		gotSym, gotState bool
	)
	delim := 279
	if m.Kind == md.KindSnapshot {
		delim = 269
	}
	finish := func(off int) error {
		if e == nil {
			return nil
		}
		need := hasAction | hasType | hasSymbol | hasRptSeq
		if m.Kind == md.KindSnapshot {
			need = hasType
		}
		if have&need != need {
			return perr(off, 0, fmt.Sprintf("entry %d lacks a required field (X: 279, 269, 55, 83; W: 269)", len(m.Entries)-1))
		}
		return nil
	}
	for off := 5; off < len(b); {
		start := off
		tag := 0
		for off < len(b) && b[off] >= '0' && b[off] <= '9' {
			if tag > 1e8 {
				return perr(start, 0, "tag too long")
			}
			tag = tag*10 + int(b[off]-'0')
			off++
		}
		if off == start || off >= len(b) || b[off] != '=' || tag == 0 {
			return perr(start, 0, "want tag=value")
		}
		off++
		vs := off
		for off < len(b) && b[off] != soh {
			off++
		}
		if off >= len(b) {
			return perr(start, tag, "field not ended by SOH")
		}
		v := b[vs:off]
		off++
		if len(v) == 0 {
			return perr(start, tag, "empty value")
		}
		if count >= 0 {
			// In the entries.
			if tag == delim {
				if err := finish(start); err != nil {
					return err
				}
				if len(m.Entries) == count {
					return perr(start, tag, fmt.Sprintf("more entries than NoMDEntries (268) %d", count))
				}
				m.Entries = append(m.Entries, md.Entry{})
				e, have = &m.Entries[len(m.Entries)-1], 0
			} else if e == nil {
				return perr(start, tag, fmt.Sprintf("entry field before the first entry's %d", delim))
			}
			bit, err := entryField(m.Kind, e, tag, v)
			if err != nil {
				return perr(start, tag, err.Error())
			}
			if have&bit != 0 {
				return perr(start, tag, "repeated in one entry")
			}
			have |= bit
			if bit == hasSymbol {
				switch {
				case m.Symbol == nil:
					m.Symbol = v
				case string(m.Symbol) != string(v):
					return perr(start, tag, "a second instrument in one message")
				}
			}
			continue
		}
		switch tag {
		case 268:
			n, ok := parseUint(v, 1<<16)
			if !ok {
				return perr(start, tag, "NoMDEntries not a count 0..65536")
			}
			if m.Kind == md.KindStatus {
				return perr(start, tag, "entries in a SecurityStatus")
			}
			count = int(n)
		case TagPublishTime:
			n, ok := parseUint(v, 1<<63-1)
			if !ok {
				return perr(start, tag, "publish time not a count of nanoseconds")
			}
			m.PublishTime = int64(n)
		case 55:
			if gotSym {
				return perr(start, tag, "repeated")
			}
			if m.Kind == md.KindIncremental {
				return perr(start, tag, "Symbol outside an entry of an X")
			}
			m.Symbol, gotSym = v, true
		case 83, 369:
			n, ok := parseUint(v, 1<<32-1)
			if !ok || m.Kind != md.KindSnapshot {
				return perr(start, tag, "not a uint32 of a W")
			}
			if tag == 83 {
				m.RptSeq, gotRpt = uint32(n), true
			} else {
				m.LastSeq, gotLast = uint32(n), true
			}
		case TagPriceExp, TagSizeExp:
			x, ok := parseExp(v)
			if !ok || m.Kind != md.KindSnapshot {
				return perr(start, tag, "not an exponent -63..63 of a W")
			}
			if tag == TagPriceExp {
				m.PriceExp, expP = x, true
			} else {
				m.SizeExp, expS = x, true
			}
		case 326:
			n, ok := parseUint(v, 1<<32-1)
			if !ok || m.Kind != md.KindStatus {
				return perr(start, tag, "not a uint32 of an f")
			}
			m.TradingStatus, gotState = uint32(n), true
		case 58:
			m.Text = v
		}
	}
	if err := finish(len(b)); err != nil {
		return err
	}
	switch m.Kind {
	case md.KindIncremental:
		if count < 0 {
			return perr(len(b), 268, "missing NoMDEntries")
		}
	case md.KindSnapshot:
		if count < 0 || !gotSym || !gotRpt || !gotLast {
			return perr(len(b), 0, "a W needs LastMsgSeqNumProcessed (369), Symbol (55), RptSeq (83) and NoMDEntries (268)")
		}
		m.HasExp = expP && expS
	case md.KindStatus:
		if !gotSym || !gotState {
			return perr(len(b), 0, "an f needs Symbol (55) and SecurityTradingStatus (326)")
		}
	}
	if count >= 0 && len(m.Entries) != count {
		return perr(len(b), 268, fmt.Sprintf("NoMDEntries %d, %d entries", count, len(m.Entries)))
	}
	return nil
}

// entryField sets one field of an entry and returns its bit.
func entryField(k md.Kind, e *md.Entry, tag int, v []byte) (int, error) {
	switch tag {
	case 279:
		if k != md.KindIncremental || len(v) != 1 || v[0] < '0' || v[0] > '2' {
			return 0, errors.New("MDUpdateAction not 0, 1 or 2 of an X")
		}
		e.Action = md.Action(v[0] - '0')
		return hasAction, nil
	case 269:
		if len(v) != 1 || v[0] < '0' || v[0] > '2' {
			return 0, errors.New("MDEntryType not 0, 1 or 2")
		}
		e.Type = md.EntryType(v[0])
		return hasType, nil
	case 278:
		e.ID = v
		return hasID, nil
	case 55:
		if k != md.KindIncremental {
			return 0, errors.New("Symbol in a W entry")
		}
		e.Symbol = v
		return hasSymbol, nil
	case 270, 271:
		d, err := md.ParseFIXDecimal(v)
		if err != nil {
			return 0, err
		}
		if tag == 270 {
			e.Price = d
			return hasPrice, nil
		}
		e.Size = d
		return hasSize, nil
	case 346:
		n, ok := parseUint(v, 1<<32-1)
		if !ok {
			return 0, errors.New("NumberOfOrders not a uint32")
		}
		e.Orders = uint32(n)
		return hasOrders, nil
	case 83:
		n, ok := parseUint(v, 1<<32-1)
		if !ok || k != md.KindIncremental {
			return 0, errors.New("RptSeq not a uint32 of an X entry")
		}
		e.RptSeq = uint32(n)
		return hasRptSeq, nil
	}
	return 0, errors.New("not a field of an entry")
}

func parseUint(v []byte, max uint64) (uint64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= max
}

func parseExp(v []byte) (int8, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	n, ok := parseUint(v, 63)
	if !ok {
		return 0, false
	}
	if neg {
		return -int8(n), true
	}
	return int8(n), true
}
