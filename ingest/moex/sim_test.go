package moex

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
	"fastfeed/internal/decfmt"
	"fastfeed/internal/jsonstr"
	"fastfeed/replay"
)

// exchange is a small MOEX FOND emulator for tests: it encodes messages with the ASTS
// templates, numbers them per connection, keeps the true orders and trades, and writes
// every datagram on lines A and B of a capture (with the losses a test asks for).
type exchange struct {
	t      testing.TB
	market *Market
	enc    *moexasts.Encoder
	w      *replay.Writer
	now    int64
	seq    map[string]uint32
	rpt    map[string]int32 // per "OLR/SBER", "TLR/SBER"
	orders map[string]map[string]simOrder
	trades []string // expected --dump-trades lines
	rng    *rand.Rand
	nextID int
	// drop decides, per connection, MsgSeqNum and line (0 A, 1 B), whether to leave the
	// datagram out of the capture.
	drop func(conn string, seq uint32, line int) bool
	// bLag delays line B's copies by this many datagrams, so that a datagram lost on A
	// leaves a hole until B's copy comes.
	bLag  int
	lateB []lateDatagram
}

type lateDatagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

type simOrder struct {
	side       byte
	px, size   int64 // px at 10^-2, size at 10^0
	id         string
	seqInLevel int
}

func newExchange(t testing.TB, market *Market, buf *bytes.Buffer, seed uint64) *exchange {
	w, err := replay.NewWriter(buf, replay.PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	return &exchange{t: t, market: market, enc: moexasts.NewEncoder(), w: w, now: 1e18,
		seq: map[string]uint32{}, rpt: map[string]int32{}, orders: map[string]map[string]simOrder{},
		rng: rand.New(rand.NewPCG(seed, 7)), drop: func(string, uint32, int) bool { return false }}
}

// send encodes m as the next datagram of connection conn and writes it on both lines.
func (x *exchange) send(conn string, m *moexasts.Message) uint32 {
	x.seq[conn]++
	seq := x.seq[conn]
	setSeq(m, seq)
	b := binary.LittleEndian.AppendUint32(nil, seq)
	x.enc.Reset()
	b, err := x.enc.Encode(b, m)
	if err != nil {
		x.t.Fatalf("encode %s %d: %v", conn, seq, err)
	}
	x.raw(conn, seq, b)
	return seq
}

// raw writes payload as datagram seq of conn on the lines the drop function keeps.
func (x *exchange) raw(conn string, seq uint32, payload []byte) {
	cn, ok := x.market.Connection(conn)
	if !ok {
		x.t.Fatalf("no connection %s", conn)
	}
	for li, l := range cn.Lines {
		if x.drop(conn, seq, li) {
			continue
		}
		src := netip.AddrPortFrom(l.Src, 40000)
		if li == 1 && x.bLag > 0 {
			x.lateB = append(x.lateB, lateDatagram{src, l.Group, payload})
			continue
		}
		x.write(src, l.Group, payload)
		if len(x.lateB) > x.bLag {
			d := x.lateB[0]
			x.lateB = x.lateB[1:]
			x.write(d.src, d.dst, d.payload)
		}
	}
}

func (x *exchange) write(src, dst netip.AddrPort, payload []byte) {
	x.now += 1000
	if err := x.w.WriteUDP(x.now, src, dst, payload); err != nil {
		x.t.Fatal(err)
	}
}

func setSeq(m *moexasts.Message, seq uint32) {
	switch m.ID {
	case moexasts.IDXOLRFOND:
		m.XOLRFOND.MsgSeqNum = seq
	case moexasts.IDXOLRCURR:
		m.XOLRCURR.MsgSeqNum = seq
	case moexasts.IDXTLRFOND:
		m.XTLRFOND.MsgSeqNum = seq
	case moexasts.IDXMSRFOND:
		m.XMSRFOND.MsgSeqNum = seq
	case moexasts.IDWOLSFOND:
		m.WOLSFOND.MsgSeqNum = seq
	case moexasts.IDD:
		m.D.MsgSeqNum = seq
	case moexasts.IDF:
		m.F.MsgSeqNum = seq
	case moexasts.IDH:
		m.H.MsgSeqNum = seq
	case moexasts.IDX0:
		m.X0.MsgSeqNum = seq
	}
}

func dec(m int64, e int32) fastrt.Decimal { return fastrt.Decimal{Mantissa: m, Exponent: e} }

// orderStep sends one OLR message of n random entries over the symbols.
func (x *exchange) orderStep(symbols []string, n int) uint32 {
	m := &moexasts.Message{ID: moexasts.IDXOLRFOND}
	for range n {
		sym := symbols[x.rng.IntN(len(symbols))]
		book := x.orders[sym]
		if book == nil {
			book = map[string]simOrder{}
			x.orders[sym] = book
		}
		x.rpt["OLR/"+sym]++
		g := moexasts.XOLRFONDGroupMDEntries{
			HasMDUpdateAction: true, HasMDEntryType: true, HasMDEntryID: true, HasSymbol: true,
			Symbol: []byte(sym), RptSeq: x.rpt["OLR/"+sym], HasRptSeq: true,
		}
		var ids []string
		for id := range book {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		switch r := x.rng.IntN(10); {
		case len(ids) == 0 || r < 5:
			x.nextID++
			o := simOrder{side: byte('0' + x.rng.IntN(2)), px: 10000 + int64(x.rng.IntN(20))*5, size: int64(1 + x.rng.IntN(50)), id: fmt.Sprint(x.nextID)}
			book[o.id] = o
			g.MDUpdateAction, g.MDEntryType, g.MDEntryID = 0, []byte{o.side}, []byte(o.id)
			g.MDEntryPx, g.HasMDEntryPx, g.MDEntrySize, g.HasMDEntrySize = dec(o.px, -2), true, dec(o.size, 0), true
		case r < 7:
			o := book[ids[x.rng.IntN(len(ids))]]
			o.size = int64(1 + x.rng.IntN(50))
			book[o.id] = o
			g.MDUpdateAction, g.MDEntryType, g.MDEntryID = 1, []byte{o.side}, []byte(o.id)
			g.MDEntryPx, g.HasMDEntryPx, g.MDEntrySize, g.HasMDEntrySize = dec(o.px, -2), true, dec(o.size, 0), true
		default:
			o := book[ids[x.rng.IntN(len(ids))]]
			delete(book, o.id)
			g.MDUpdateAction, g.MDEntryType, g.MDEntryID = 2, []byte{o.side}, []byte(o.id)
		}
		m.XOLRFOND.GroupMDEntries = append(m.XOLRFOND.GroupMDEntries, g)
	}
	return x.send("OLR", m)
}

// trade sends one TLR message with one trade and records its expected dump line.
func (x *exchange) trade(sym string, px, size int64) uint32 {
	x.rpt["TLR/"+sym]++
	x.nextID++
	g := moexasts.XTLRFONDGroupMDEntries{
		MDUpdateAction: 0, HasMDUpdateAction: true, MDEntryType: []byte("z"),
		MDEntryID: []byte(fmt.Sprint(x.nextID)), HasMDEntryID: true, Symbol: []byte(sym), HasSymbol: true,
		RptSeq: x.rpt["TLR/"+sym], HasRptSeq: true, MDEntryPx: dec(px, -2), HasMDEntryPx: true,
		MDEntrySize: dec(size, 0), HasMDEntrySize: true,
	}
	m := &moexasts.Message{ID: moexasts.IDXTLRFOND}
	m.XTLRFOND.GroupMDEntries = []moexasts.XTLRFONDGroupMDEntries{g}
	seq := x.send("TLR", m)
	x.trades = append(x.trades, fmt.Sprintf(`{"seq":%d,"symbol":%q,"rptseq":%d,"id":"%d","type":"z","action":0,"price":"%s","size":"%d"}`,
		seq, sym, g.RptSeq, x.nextID, decfmt.Append(nil, px, -2), size))
	return seq
}

// snapshot sends the OLS snapshot of sym's true book in fragments of per entries.
func (x *exchange) snapshot(sym string, per int) {
	var ids []string
	for id := range x.orders[sym] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	frags := max(1, (len(ids)+per-1)/per)
	for f := range frags {
		w := moexasts.WOLSFOND{Symbol: []byte(sym), RptSeq: x.rpt["OLR/"+sym],
			LastMsgSeqNumProcessed: x.seq["OLR"], HasLastMsgSeqNumProcessed: true,
			LastFragment: 0, HasLastFragment: true}
		if f == 0 {
			w.RouteFirst, w.HasRouteFirst = 1, true
		}
		if f == frags-1 {
			w.LastFragment = 1
		}
		end := min(len(ids), (f+1)*per)
		for _, id := range ids[min(len(ids), f*per):end] {
			o := x.orders[sym][id]
			w.GroupMDEntries = append(w.GroupMDEntries, moexasts.WOLSFONDGroupMDEntries{
				MDEntryType: []byte{o.side}, HasMDEntryType: true, MDEntryID: []byte(id), HasMDEntryID: true,
				MDEntryPx: dec(o.px, -2), HasMDEntryPx: true, MDEntrySize: dec(o.size, 0), HasMDEntrySize: true})
		}
		if len(ids) == 0 {
			w.GroupMDEntries = append(w.GroupMDEntries, moexasts.WOLSFONDGroupMDEntries{MDEntryType: []byte("J"), HasMDEntryType: true})
		}
		x.send("OLS", &moexasts.Message{ID: moexasts.IDWOLSFOND, WOLSFOND: w})
	}
}

// wantBooks is the --dump-books text of the true books, written independently of package
// book: levels aggregated here, best first.
func (x *exchange) wantBooks() string {
	var syms []string
	for s := range x.orders {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	var out strings.Builder
	for _, s := range syms {
		type lv struct{ px, size, n int64 }
		levels := [2]map[int64]*lv{{}, {}}
		for _, o := range x.orders[s] {
			side := o.side - '0'
			l := levels[side][o.px]
			if l == nil {
				l = &lv{px: o.px}
				levels[side][o.px] = l
			}
			l.size += o.size
			l.n++
		}
		fmt.Fprintf(&out, `{"symbol":%s,"rptseq":%d,"stale":false`, jsonstr.Append(nil, s), x.rpt["OLR/"+s])
		for side, name := range []string{"bids", "asks"} {
			var ls []*lv
			for _, l := range levels[side] {
				ls = append(ls, l)
			}
			slices.SortFunc(ls, func(a, b *lv) int {
				if side == 0 {
					return int(b.px - a.px)
				}
				return int(a.px - b.px)
			})
			fmt.Fprintf(&out, `,%q:[`, name)
			for i, l := range ls {
				if i > 0 {
					out.WriteByte(',')
				}
				fmt.Fprintf(&out, `["%s","%d",%d]`, decfmt.Append(nil, l.px, -2), l.size, l.n)
			}
			out.WriteByte(']')
		}
		out.WriteString("}\n")
	}
	return out.String()
}

func (x *exchange) close() {
	for _, d := range x.lateB {
		x.write(d.src, d.dst, d.payload)
	}
	if err := x.w.Close(); err != nil {
		x.t.Fatal(err)
	}
}
