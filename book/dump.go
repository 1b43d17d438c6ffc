package book

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"fastfeed/internal/jsonstr"
)

// Named is a book with its instrument's symbol, for WriteDump.
type Named struct {
	Symbol string
	Book   View
}

// WriteDump writes the books to w as JSON lines sorted by symbol, one line
// per book, in the --dump-books format of DESIGN.md. It fails if a symbol is
// empty or given twice, or has a nil book.
func WriteDump(w io.Writer, books []Named) error {
	sorted := slices.Clone(books)
	slices.SortFunc(sorted, func(a, b Named) int { return strings.Compare(a.Symbol, b.Symbol) })
	var line []byte
	var levels []Level
	for i, nb := range sorted {
		if nb.Symbol == "" {
			return errors.New("book: write dump: empty symbol")
		}
		if nb.Book == nil {
			return fmt.Errorf("book: write dump: symbol %q has no book", nb.Symbol)
		}
		if i > 0 && sorted[i-1].Symbol == nb.Symbol {
			return fmt.Errorf("book: write dump: symbol %q given twice", nb.Symbol)
		}
		line, levels = appendDumpLine(line[:0], levels, nb.Symbol, nb.Book)
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("book: write dump: %w", err)
		}
	}
	return nil
}

// AppendDumpLine appends the dump line of one book, newline included, to dst.
func AppendDumpLine(dst []byte, symbol string, v View) []byte {
	dst, _ = appendDumpLine(dst, nil, symbol, v)
	return dst
}

func appendDumpLine(dst []byte, levels []Level, symbol string, v View) ([]byte, []Level) {
	dst = append(dst, `{"symbol":`...)
	dst = jsonstr.Append(dst, symbol)
	dst = append(dst, `,"rptseq":`...)
	dst = strconv.AppendInt(dst, v.RptSeq(), 10)
	dst = append(dst, `,"stale":`...)
	dst = strconv.AppendBool(dst, v.Stale())
	pe, se := v.PriceExp(), v.SizeExp()
	for _, side := range [2]Side{Bid, Ask} {
		if side == Bid {
			dst = append(dst, `,"bids":[`...)
		} else {
			dst = append(dst, `,"asks":[`...)
		}
		levels = v.AppendLevels(levels[:0], side)
		for i, l := range levels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `["`...)
			dst = FormatDecimal(dst, l.Price, pe)
			dst = append(dst, `","`...)
			dst = FormatDecimal(dst, l.Size, se)
			dst = append(dst, `",`...)
			dst = strconv.AppendInt(dst, l.Orders, 10)
			dst = append(dst, ']')
		}
		dst = append(dst, ']')
	}
	return append(dst, "}\n"...), levels
}

// Dump is a parsed book dump: books in symbol order, comparable with
// DiffDumps (or reflect.DeepEqual).
type Dump []DumpBook

// DumpBook is one line of a dump.
type DumpBook struct {
	Symbol string
	RptSeq int64
	Stale  bool
	Bids   []DumpLevel // best first
	Asks   []DumpLevel // best first
}

// DumpLevel is a level of a dump: price and size as canonical decimal
// strings, so that equal values have equal strings.
type DumpLevel struct {
	Price  string
	Size   string
	Orders int64
}

func (l DumpLevel) String() string {
	return fmt.Sprintf("[%q,%q,%d]", l.Price, l.Size, l.Orders)
}

// DumpOf returns the dump form of one book, as ReadDump would parse its line.
func DumpOf(symbol string, v View) DumpBook {
	d := DumpBook{Symbol: symbol, RptSeq: v.RptSeq(), Stale: v.Stale()}
	var levels []Level
	var buf []byte
	for _, side := range [2]Side{Bid, Ask} {
		levels = v.AppendLevels(levels[:0], side)
		out := make([]DumpLevel, 0, len(levels))
		for _, l := range levels {
			buf = FormatDecimal(buf[:0], l.Price, v.PriceExp())
			p := string(buf)
			buf = FormatDecimal(buf[:0], l.Size, v.SizeExp())
			out = append(out, DumpLevel{Price: p, Size: string(buf), Orders: l.Orders})
		}
		if side == Bid {
			d.Bids = out
		} else {
			d.Asks = out
		}
	}
	return d
}

// Lookup returns the book with the given symbol, if the dump has it.
func (d Dump) Lookup(symbol string) (DumpBook, bool) {
	i, ok := slices.BinarySearchFunc(d, symbol, func(b DumpBook, s string) int { return strings.Compare(b.Symbol, s) })
	if !ok {
		return DumpBook{}, false
	}
	return d[i], true
}

// WriteTo writes the dump in the format of WriteDump; for a valid dump (one
// ReadDump accepts) the output is the same bytes WriteDump writes for the
// same books.
func (d Dump) WriteTo(w io.Writer) (int64, error) {
	var total int64
	var line []byte
	for _, b := range d {
		line = b.appendLine(line[:0])
		n, err := w.Write(line)
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("book: write dump: %w", err)
		}
	}
	return total, nil
}

func (b DumpBook) appendLine(dst []byte) []byte {
	dst = append(dst, `{"symbol":`...)
	dst = jsonstr.Append(dst, b.Symbol)
	dst = append(dst, `,"rptseq":`...)
	dst = strconv.AppendInt(dst, b.RptSeq, 10)
	dst = append(dst, `,"stale":`...)
	dst = strconv.AppendBool(dst, b.Stale)
	for _, side := range [2]Side{Bid, Ask} {
		levels := b.Bids
		if side == Bid {
			dst = append(dst, `,"bids":[`...)
		} else {
			levels = b.Asks
			dst = append(dst, `,"asks":[`...)
		}
		for i, l := range levels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '[')
			dst = jsonstr.Append(dst, l.Price)
			dst = append(dst, ',')
			dst = jsonstr.Append(dst, l.Size)
			dst = append(dst, ',')
			dst = strconv.AppendInt(dst, l.Orders, 10)
			dst = append(dst, ']')
		}
		dst = append(dst, ']')
	}
	return append(dst, "}\n"...)
}

// MaxDumpLine is the longest line ReadDump accepts.
const MaxDumpLine = 16 << 20

// ReadDump parses a book dump. Every line must be one JSON object with
// exactly the keys symbol (non-empty), rptseq (non-negative), stale, bids and
// asks; every level must be [price, size, orders] with price and size
// canonical decimal strings (as FormatDecimal writes them) and orders a
// non-negative integer; bids must be in strictly descending and asks in
// strictly ascending price order; symbols must be in strictly ascending
// order. Whitespace between JSON tokens is allowed. The first malformed line
// stops parsing with an error naming its line number.
func ReadDump(r io.Reader) (Dump, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxDumpLine)
	var d Dump
	n := 0
	for sc.Scan() {
		n++
		b, err := parseDumpLine(sc.Bytes())
		if err == nil && len(d) > 0 && b.Symbol <= d[len(d)-1].Symbol {
			err = fmt.Errorf("symbol %q not after %q: lines must be sorted by symbol, each once", b.Symbol, d[len(d)-1].Symbol)
		}
		if err != nil {
			return nil, fmt.Errorf("book: read dump: line %d: %w", n, err)
		}
		d = append(d, b)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("book: read dump: line %d: longer than %d bytes", n+1, MaxDumpLine)
		}
		return nil, fmt.Errorf("book: read dump: after line %d: %w", n, err)
	}
	return d, nil
}

func parseDumpLine(line []byte) (DumpBook, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return DumpBook{}, errors.New("not a JSON object")
	}
	var b DumpBook
	var bids, asks []json.RawMessage
	var seen [5]bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return DumpBook{}, err
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return DumpBook{}, fmt.Errorf("value of %q: %w", key, err)
		}
		k := slices.Index(dumpKeys[:], key)
		switch {
		case k < 0:
			return DumpBook{}, fmt.Errorf("unknown key %q", key)
		case seen[k]:
			return DumpBook{}, fmt.Errorf("key %q given twice", key)
		case string(raw) == "null":
			return DumpBook{}, fmt.Errorf("%q is null", key)
		}
		seen[k] = true
		switch k {
		case 0:
			err = json.Unmarshal(raw, &b.Symbol)
			if err == nil && b.Symbol == "" {
				err = errors.New("empty")
			}
		case 1:
			err = json.Unmarshal(raw, &b.RptSeq)
			if err == nil && b.RptSeq < 0 {
				err = errors.New("negative")
			}
		case 2:
			err = json.Unmarshal(raw, &b.Stale)
		case 3:
			err = json.Unmarshal(raw, &bids)
		case 4:
			err = json.Unmarshal(raw, &asks)
		}
		if err != nil {
			return DumpBook{}, fmt.Errorf("%q: %s: %w", key, truncate(raw, 64), err)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return DumpBook{}, errors.New("JSON object not closed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return DumpBook{}, errors.New("data after the JSON object")
	}
	for k, ok := range seen {
		if !ok {
			return DumpBook{}, fmt.Errorf("missing %q", dumpKeys[k])
		}
	}
	var err error
	if b.Bids, err = parseDumpLevels(bids, Bid); err != nil {
		return DumpBook{}, err
	}
	if b.Asks, err = parseDumpLevels(asks, Ask); err != nil {
		return DumpBook{}, err
	}
	return b, nil
}

var dumpKeys = [5]string{"symbol", "rptseq", "stale", "bids", "asks"}

func parseDumpLevels(raw []json.RawMessage, side Side) ([]DumpLevel, error) {
	name := "bids"
	if side == Ask {
		name = "asks"
	}
	out := make([]DumpLevel, 0, len(raw))
	for i, r := range raw {
		l, err := parseDumpLevel(r)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		if i > 0 {
			c := compareDecimal(l.Price, out[i-1].Price)
			if (side == Bid && c >= 0) || (side == Ask && c <= 0) {
				order := "descending"
				if side == Ask {
					order = "ascending"
				}
				return nil, fmt.Errorf("%s[%d]: price %s after %s: %s must be in strictly %s price order",
					name, i, l.Price, out[i-1].Price, name, order)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func parseDumpLevel(r json.RawMessage) (DumpLevel, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(r, &parts); err != nil || len(parts) != 3 {
		return DumpLevel{}, fmt.Errorf("level %s is not [price, size, orders]", truncate(r, 64))
	}
	for _, p := range parts {
		if string(p) == "null" {
			return DumpLevel{}, fmt.Errorf("level %s has a null", truncate(r, 64))
		}
	}
	var l DumpLevel
	if err := json.Unmarshal(parts[0], &l.Price); err != nil || !isCanonicalDecimal(l.Price) {
		return DumpLevel{}, fmt.Errorf("price %s is not a canonical decimal string", truncate(parts[0], 64))
	}
	if err := json.Unmarshal(parts[1], &l.Size); err != nil || !isCanonicalDecimal(l.Size) {
		return DumpLevel{}, fmt.Errorf("size %s is not a canonical decimal string", truncate(parts[1], 64))
	}
	if err := json.Unmarshal(parts[2], &l.Orders); err != nil || l.Orders < 0 {
		return DumpLevel{}, fmt.Errorf("orders %s is not a non-negative integer", truncate(parts[2], 64))
	}
	return l, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// maxDiffs is how many differences DiffDumps describes.
const maxDiffs = 10

// DiffDumps describes how dump a differs from dump b, or returns "" if they
// are equal: a summary line, then one line per differing symbol (the first
// ten, in symbol order) naming the first field or level that differs, e.g.
//
//	1 of 2 symbols differ (a: 2 books, b: 2 books)
//	SBER: bids[1] (0 = best): a ["101.2","300",3], b ["101.2","200",3]
func DiffDumps(a, b Dump) string {
	ia := indexDump(a)
	ib := indexDump(b)
	var symbols []string
	for s := range ia {
		symbols = append(symbols, s)
	}
	for s := range ib {
		if _, ok := ia[s]; !ok {
			symbols = append(symbols, s)
		}
	}
	slices.Sort(symbols)
	var lines []string
	differ := 0
	for _, s := range symbols {
		x, inA := ia[s]
		y, inB := ib[s]
		var d string
		switch {
		case !inB:
			d = "only in a"
		case !inA:
			d = "only in b"
		default:
			d = diffBook(x, y)
		}
		if d == "" {
			continue
		}
		differ++
		if len(lines) < maxDiffs {
			lines = append(lines, fmt.Sprintf("%s: %s", s, d))
		}
	}
	if differ == 0 && len(a) == len(b) {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d of %d symbols differ (a: %d books, b: %d books)", differ, len(symbols), len(a), len(b))
	if len(ia) != len(a) || len(ib) != len(b) {
		sb.WriteString("; a symbol appears twice")
	}
	for _, l := range lines {
		sb.WriteString("\n")
		sb.WriteString(l)
	}
	if differ > len(lines) {
		fmt.Fprintf(&sb, "\n... and %d more", differ-len(lines))
	}
	return sb.String()
}

func indexDump(d Dump) map[string]DumpBook {
	m := make(map[string]DumpBook, len(d))
	for _, b := range d {
		if _, ok := m[b.Symbol]; !ok {
			m[b.Symbol] = b
		}
	}
	return m
}

func diffBook(a, b DumpBook) string {
	if a.RptSeq != b.RptSeq {
		return fmt.Sprintf("rptseq: a %d, b %d", a.RptSeq, b.RptSeq)
	}
	if a.Stale != b.Stale {
		return fmt.Sprintf("stale: a %t, b %t", a.Stale, b.Stale)
	}
	if d := diffLevels("bids", a.Bids, b.Bids); d != "" {
		return d
	}
	return diffLevels("asks", a.Asks, b.Asks)
}

func diffLevels(name string, a, b []DumpLevel) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return fmt.Sprintf("%s[%d] (0 = best): a has %d levels, b has %d; b %s", name, i, len(a), len(b), b[i])
		case i >= len(b):
			return fmt.Sprintf("%s[%d] (0 = best): a has %d levels, b has %d; a %s", name, i, len(a), len(b), a[i])
		case a[i] != b[i]:
			return fmt.Sprintf("%s[%d] (0 = best): a %s, b %s", name, i, a[i], b[i])
		}
	}
	return ""
}

// DumpDepth is DumpOf cut to depth levels a side (0: all), the levels cut before they are
// formatted: a page showing the top of a deep book pays only for its top.
func DumpDepth(symbol string, v View, depth int) DumpBook {
	if depth <= 0 {
		return DumpOf(symbol, v)
	}
	b := DumpBook{Symbol: symbol, RptSeq: v.RptSeq(), Stale: v.Stale()}
	var levels []Level
	for _, side := range [2]Side{Bid, Ask} {
		levels = v.AppendLevels(levels[:0], side)
		levels = levels[:min(depth, len(levels))]
		out := make([]DumpLevel, len(levels))
		for i, l := range levels {
			out[i] = DumpLevel{Price: string(FormatDecimal(nil, l.Price, v.PriceExp())),
				Size: string(FormatDecimal(nil, l.Size, v.SizeExp())), Orders: l.Orders}
		}
		if side == Bid {
			b.Bids = out
		} else {
			b.Asks = out
		}
	}
	return b
}
