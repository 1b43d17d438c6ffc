package moex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"fastfeed/book"
	"fastfeed/internal/decfmt"
	"fastfeed/internal/jsonstr"
	"fastfeed/replay"
)

// CaptureStats are the capture reader's counts beside the engine's.
type CaptureStats struct {
	Packets   uint64 // capture records read
	Skipped   uint64 // records that are not IPv4 UDP
	Malformed uint64 // records reported as malformed
}

// RunCapture feeds every IPv4 UDP datagram of r to e, in capture order with the capture
// time as the clock, then gives up the holes still waiting; it stops early when ctx ends. A malformed record is counted
// and skipped; a file that cannot be read further ends the run with its error. Do's
// functions run every 64 datagrams.
func RunCapture(ctx context.Context, r *replay.Reader, e *Engine) (CaptureStats, error) {
	var d replay.Datagram
	var err error
	e.startServing(nil)
	defer e.stopServing()
	for n := 0; ; n++ {
		if n&(opsBatch-1) == opsBatch-1 {
			e.serve()
		}
		if n&4095 == 4095 && ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		if err = r.Next(&d); err != nil {
			var pe *replay.PacketError
			if errors.As(err, &pe) {
				continue
			}
			break
		}
		e.Datagram(d.Src, d.Dst, d.Payload, d.Time)
	}
	e.Flush()
	st := r.Stats()
	cs := CaptureStats{Packets: st.Packets, Skipped: st.Skipped, Malformed: st.Malformed}
	if errors.Is(err, io.EOF) {
		return cs, nil
	}
	return cs, fmt.Errorf("moex: capture: %w", err)
}

// AppendTrade appends t as a --dump-trades JSON line (DESIGN.md), newline included:
// {"seq":91650,"symbol":"SBER","rptseq":812,"id":"1234","type":"z","action":0,"price":"101.25","size":"300"};
// a field absent on the wire is left out.
func AppendTrade(dst []byte, t *Trade) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, uint64(t.Seq), 10)
	dst = append(dst, `,"symbol":`...)
	dst = jsonstr.Append(dst, string(t.Symbol))
	if t.HasRptSeq {
		dst = append(dst, `,"rptseq":`...)
		dst = strconv.AppendInt(dst, int64(t.RptSeq), 10)
	}
	if t.ID != nil {
		dst = append(dst, `,"id":`...)
		dst = jsonstr.Append(dst, string(t.ID))
	}
	dst = append(dst, `,"type":`...)
	dst = jsonstr.Append(dst, string(t.Type))
	if t.HasAction {
		dst = append(dst, `,"action":`...)
		dst = strconv.AppendUint(dst, uint64(t.Action), 10)
	}
	if t.HasPx {
		dst = append(dst, `,"price":"`...)
		dst = decfmt.Append(dst, t.Px.Mantissa, int(t.Px.Exponent))
		dst = append(dst, '"')
	}
	if t.HasSize {
		dst = append(dst, `,"size":"`...)
		dst = decfmt.Append(dst, t.Size.Mantissa, int(t.Size.Exponent))
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...)
}

// WriteBooks writes the books of e's instruments as --dump-books JSON lines sorted by
// symbol (instruments without a book are left out).
func WriteBooks(w io.Writer, e *Engine) error {
	var named []book.Named
	for _, in := range e.Instruments() {
		if in.Book != nil {
			named = append(named, book.Named{Symbol: in.Symbol, Book: in.Book})
		}
	}
	return book.WriteDump(w, named)
}
