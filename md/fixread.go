package md

// Reading FIX tag-value messages into the model (fix.go has the mapping's rules).

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/quickfixgo/quickfix"
	"github.com/quickfixgo/tag"

	"fastfeed/internal/decfmt"
)

// Reading.

// parseFIXDecimal parses a FIX Float: an optional '-', digits with at most one '.', no
// exponent notation. The exponent is minus the number of fractional digits, so trailing
// zeros are kept ("101.20" is 10120e-2), except that trailing zeros beyond 18 digits move
// into the exponent ("1" followed by 20 zeros is 1e20). More than 18 significant digits,
// or an exponent outside -63..63, is an error.
func parseFIXDecimal(b []byte) (Decimal, string) {
	d, err := decfmt.Scan(b, decfmt.Rules{MaxDigits: maxFIXDecimalDigits})
	if err != nil {
		return Decimal{}, err.Error()
	}
	if d.Exp < -63 || d.Exp > 63 {
		return Decimal{}, fmt.Sprintf("exponent %d out of range -63..63", d.Exp)
	}
	m, _ := d.Int64() // 18 digits always fit
	return Dec(m, int8(d.Exp)), ""
}

// fixReader reads fields of one message with a sticky error: after the first problem every
// read returns a zero value and r.err keeps the problem.
type fixReader struct {
	msg     *quickfix.Message
	msgType string
	fm      *quickfix.FieldMap // the body, or a group entry
	entry   int                // -1 outside a group
	err     error
}

func newFIXReader(msg *quickfix.Message, k Kind) *fixReader {
	return newFIXReaderType(msg, string(k))
}

func newFIXReaderType(msg *quickfix.Message, msgType string) *fixReader {
	r := &fixReader{msg: msg, msgType: msgType, fm: &msg.Body.FieldMap, entry: -1}
	t, err := msg.Header.GetBytes(tag.MsgType)
	switch {
	case err != nil:
		r.err = &FIXError{Tag: tag.MsgType, Entry: -1, Reason: "missing required tag"}
	case string(t) != msgType:
		r.err = &FIXError{MsgType: fixMsgType(t), Tag: tag.MsgType, Entry: -1, Reason: "want MsgType " + msgType}
	}
	return r
}

func (r *fixReader) enter(fm *quickfix.FieldMap, entry int) {
	r.fm, r.entry = fm, entry
}

func (r *fixReader) fail(t quickfix.Tag, format string, args ...any) {
	if r.err == nil {
		r.err = &FIXError{MsgType: r.msgType, Tag: t, Entry: r.entry, Reason: fmt.Sprintf(format, args...)}
	}
}

// raw returns t's value, nil if absent. An empty value is an error.
func (r *fixReader) raw(t quickfix.Tag, required bool) []byte {
	if r.err != nil {
		return nil
	}
	if !r.fm.Has(t) {
		if required {
			r.fail(t, "missing required tag")
		}
		return nil
	}
	v, _ := r.fm.GetBytes(t)
	if len(v) == 0 {
		r.fail(t, "empty value")
		return nil
	}
	return v
}

func (r *fixReader) bytes(t quickfix.Tag, required bool) []byte {
	return bytes.Clone(r.raw(t, required))
}

func (r *fixReader) string(t quickfix.Tag, required bool) string {
	return string(r.raw(t, required))
}

func (r *fixReader) char(t quickfix.Tag, required bool) byte {
	v := r.raw(t, required)
	if v == nil {
		return 0
	}
	if len(v) != 1 {
		r.fail(t, "want one character, got %s", fixQuote(v))
		return 0
	}
	return v[0]
}

func (r *fixReader) uint(t quickfix.Tag, required bool, bits int) uint64 {
	v := r.raw(t, required)
	if v == nil {
		return 0
	}
	n, err := strconv.ParseUint(string(v), 10, bits)
	if err != nil {
		r.fail(t, "bad number %s: want an unsigned %d-bit integer", fixQuote(v), bits)
		return 0
	}
	return n
}

// exponent reads a required exponent in -63..63.
func (r *fixReader) exponent(t quickfix.Tag) int8 {
	v := r.raw(t, true)
	if v == nil {
		return 0
	}
	n, err := strconv.ParseInt(string(v), 10, 8)
	if err != nil || n < -63 || n > 63 {
		r.fail(t, "bad exponent %s: want an integer in -63..63", fixQuote(v))
		return 0
	}
	return int8(n)
}

// decimal reads an optional decimal: Valid is false if t is absent.
func (r *fixReader) decimal(t quickfix.Tag) Decimal {
	v := r.raw(t, false)
	if v == nil {
		return Decimal{}
	}
	d, problem := parseFIXDecimal(v)
	if problem != "" {
		r.fail(t, "bad decimal %s: %s", fixQuote(v), problem)
	}
	return d
}

func (r *fixReader) flag(t quickfix.Tag) bool {
	switch c := r.char(t, false); c {
	case 0, 'N':
		return false
	case 'Y':
		return true
	default:
		r.fail(t, "want Y or N, got %q", c)
		return false
	}
}

var (
	minFIXTime = time.Unix(0, math.MinInt64)
	maxFIXTime = time.Unix(0, math.MaxInt64)
)

// timestamp reads a UTCTimestamp of the header as nanoseconds since the Unix epoch.
func (r *fixReader) timestamp(t quickfix.Tag) (int64, bool) {
	v := r.raw(t, false)
	if v == nil {
		return 0, false
	}
	var ts quickfix.FIXUTCTimestamp
	if err := ts.Read(v); err != nil {
		r.fail(t, "bad UTCTimestamp %s", fixQuote(v))
		return 0, false
	}
	if ts.Time.Before(minFIXTime) || ts.Time.After(maxFIXTime) {
		r.fail(t, "UTCTimestamp %s out of range", fixQuote(v))
		return 0, false
	}
	return ts.Time.UnixNano(), true
}

// common reads the header times and the application fields of a market-data message.
func (r *fixReader) common(h *Header) ApplFields {
	var appl ApplFields
	appl.MDReqID = r.string(tag.MDReqID, false)
	appl.ApplID = r.string(tag.ApplID, false)
	appl.ApplSeqNum = uint32(r.uint(tag.ApplSeqNum, false, 32))
	appl.ApplResendFlag = r.flag(tag.ApplResendFlag)
	r.enter(&r.msg.Header.FieldMap, -1)
	h.SeqNum = appl.ApplSeqNum
	h.SendingTime, _ = r.timestamp(tag.SendingTime)
	if orig, ok := r.timestamp(tag.OrigSendingTime); ok && appl.ApplResendFlag {
		h.SendingTime = orig
	}
	r.enter(&r.msg.Body.FieldMap, -1)
	return appl
}

// continued reads LastFragment (893): N means more parts follow.
func (r *fixReader) continued() bool {
	switch c := r.char(tag.LastFragment, false); c {
	case 0, 'Y':
		return false
	case 'N':
		return true
	default:
		r.fail(tag.LastFragment, "want Y or N, got %q", c)
		return false
	}
}

func (r *fixReader) action() Action {
	switch c := r.char(tag.MDUpdateAction, true); c {
	case '0', '1', '2':
		return Action(c - '0')
	case 0:
		return 0
	default:
		r.fail(tag.MDUpdateAction, "unknown MDUpdateAction %q", c)
		return 0
	}
}

func (r *fixReader) entryType() EntryType {
	switch c := EntryType(r.char(tag.MDEntryType, true)); c {
	case Bid, Offer, Trade:
		return c
	case 0:
		return 0
	default:
		r.fail(tag.MDEntryType, "unknown MDEntryType %q", byte(c))
		return 0
	}
}

// group reads repeating group t. A count that does not match the entries found is an
// error; so is a missing group when required. It returns nil when absent or on error.
func (r *fixReader) group(t quickfix.Tag, tmpl quickfix.GroupTemplate, required bool) *quickfix.RepeatingGroup {
	count := r.uint(t, required, 31)
	if r.err != nil || !r.fm.Has(t) {
		return nil
	}
	if count == 0 && r.fm.Has(tmpl[0].Tag()) {
		r.fail(t, "count 0 but entries follow")
		return nil
	}
	g := quickfix.NewRepeatingGroup(t, tmpl)
	if err := r.fm.GetGroup(g); err != nil || g.Len() != int(count) {
		r.fail(t, "count %d does not match the %d entries found (each entry must start with tag %d and hold only known tags)",
			count, g.Len(), tmpl[0].Tag())
		return nil
	}
	return g
}

// fixMsgType returns a received MsgType for an error message, cut to a readable length.
func fixMsgType(t []byte) string {
	const max = 8
	if len(t) > max {
		return string(t[:max]) + "..."
	}
	return string(t)
}

// fixQuote quotes a value for an error message, cut to a readable length.
func fixQuote(v []byte) string {
	const max = 40
	if len(v) > max {
		return strconv.Quote(string(v[:max])) + "..."
	}
	return strconv.Quote(string(v))
}
