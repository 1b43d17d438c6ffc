package bus

// Snapshots of books and of dump lines, as W messages' model values.

import (
	"fastfeed/book"
	"fastfeed/internal/decfmt"
	"fastfeed/md"
	"fastfeed/mdbook"
)

// snapshotOf copies v into a snapshot.
func snapshotOf(symbol string, v book.View, rptSeq uint32) *md.Snapshot {
	s := &md.Snapshot{Symbol: []byte(symbol), RptSeq: rptSeq}
	s.Entries, _ = mdbook.Entries(nil, v, nil)
	return s
}

// snapshotOfDump converts a dump line into a snapshot.
func snapshotOfDump(d *book.DumpBook) *md.Snapshot {
	s := &md.Snapshot{Symbol: []byte(d.Symbol), RptSeq: uint32(d.RptSeq)}
	for _, side := range []struct {
		t      md.EntryType
		levels []book.DumpLevel
	}{{md.Bid, d.Bids}, {md.Offer, d.Asks}} {
		for _, l := range side.levels {
			s.Entries = append(s.Entries, md.Entry{Type: side.t, Price: parseDec(l.Price), Size: parseDec(l.Size), Orders: uint32(l.Orders)})
		}
	}
	return s
}

// parseDec parses a dump's canonical decimal ("-101.25") into a Decimal at the exponent
// of its fractional digits. Dump strings are exact and short, so it cannot fail on them.
func parseDec(s string) md.Decimal {
	d, err := decfmt.Scan(s, decfmt.Rules{MaxDigits: 18})
	m, ok := d.Int64()
	if err != nil || !ok || d.Exp < -63 || d.Exp > 63 {
		return md.Decimal{}
	}
	return md.Dec(m, int8(d.Exp))
}
