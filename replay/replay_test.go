package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"fastfeed/book"
	"fastfeed/fast"
	"fastfeed/feed"
)

// The fixture: a capture of the simulator taken by tcpdump, and the publisher's books.
var (
	fixtureCapture = filepath.Join("..", "fixtures", "feed.pcap")
	fixtureBooks   = filepath.Join("..", "fixtures", "feed.books.jsonl")
)

func loadTemplates(t testing.TB) *fast.Templates {
	t.Helper()
	ts, err := fast.LoadFile(filepath.Join("..", "fixtures", "templates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// detached returns an engine that follows every instrument the capture defines.
func detached(t testing.TB, ts *fast.Templates) *feed.Engine {
	t.Helper()
	h, err := feed.NewEngine(feed.Config{All: true, Templates: ts})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtureCapture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureDump(t testing.TB) book.Dump {
	t.Helper()
	f, err := os.Open(fixtureBooks)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := book.ReadDump(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fixtureDatagrams reads every datagram of the fixture, payloads copied.
func fixtureDatagrams(t testing.TB) []Datagram {
	t.Helper()
	r := mustReader(t, readFixture(t), nil)
	var out []Datagram
	var d Datagram
	for {
		err := r.Next(&d)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Payload = append([]byte(nil), d.Payload...)
		out = append(out, d)
	}
}

// TestPlayFixture replays the tcpdump capture of the simulator as fast as possible into
// a handler: its books must be the publisher's.
func TestPlayFixture(t *testing.T) {
	h := detached(t, loadTemplates(t))
	r, err := Open(fixtureCapture, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var progress []Progress
	sum, err := Play(context.Background(), r, PlayConfig{Engine: h, Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if d := book.DiffDumps(h.Dump(), fixtureDump(t)); d != "" {
		t.Fatalf("books differ from the publisher's:\n%s", d)
	}
	st := h.Stats()
	if st.Gaps != 0 || st.DecodeErrors != 0 || st.StaleBooks != 0 || st.Instruments != 4 || st.Messages < 1500 {
		t.Errorf("handler counters %+v", st)
	}
	// The 4 SequenceResets at startup went to channels not yet joined.
	if sum.Reader.Packets != 1519 || sum.Delivered != 1515 || sum.NotJoined != 4 || sum.Reader.Skipped != 0 || sum.FileError != nil {
		t.Errorf("summary %+v", sum)
	}
	if len(sum.Channels) != 5 || sum.Span < 500*time.Millisecond {
		t.Errorf("channels %+v, span %v", sum.Channels, sum.Span)
	}
	for _, c := range sum.Channels {
		if c.Holes != 0 {
			t.Errorf("capture hole reported: %+v", c)
		}
	}
	if n := len(progress); n == 0 || !progress[n-1].Done || progress[n-1].Datagrams != sum.Delivered {
		t.Errorf("progress %+v", progress)
	}
}

// TestPlayReportsDamage: a capture with lost datagrams, a non-UDP record, a malformed
// record, an undecodable payload and a truncated end is replayed to its damage, with
// each problem reported by packet number and counted.
func TestPlayReportsDamage(t *testing.T) {
	ds := fixtureDatagrams(t)
	var recs []rec
	lost := map[int]bool{}
	var lostDst netip.AddrPort
	for i, d := range ds {
		// Drop two consecutive datagrams of the busiest channel mid-way.
		if i > 600 && len(lost) < 2 && d.Dst == ds[700].Dst {
			lost[i] = true
			lostDst = d.Dst
			continue
		}
		recs = append(recs, rec{ts: d.Time, data: eth(etherTypeIPv4, ipv4(ipHdr{src: d.Src.Addr().String(), dst: d.Dst.Addr().String()}, udp(d.Src.Port(), d.Dst.Port(), d.Payload)))})
		switch i {
		case 100: // ARP: skipped
			recs = append(recs, rec{ts: d.Time, data: eth(0x0806, make([]byte, 28))})
		case 200: // IPv4 header with IHL 3: malformed
			recs = append(recs, rec{ts: d.Time, data: eth(etherTypeIPv4, ipv4(ipHdr{ihl: 3}, udp(1, 30001, []byte{1, 2, 3, 4})))})
		case 300: // a payload that is no FAST message, on a joined channel
			// The sequence number of the datagram before it: not a hole.
			junk := binary.LittleEndian.AppendUint32(nil, binary.LittleEndian.Uint32(d.Payload))
			junk = append(junk, 0xff, 0xff, 0xff)
			recs = append(recs, rec{ts: d.Time, data: eth(etherTypeIPv4, ipv4(ipHdr{dst: d.Dst.Addr().String()}, udp(1, d.Dst.Port(), junk)))})
		}
	}
	file := pcapFile(binary.LittleEndian, true, layers.LinkTypeEthernet, recs...)
	file = file[:len(file)-10] // the last record is cut

	h := detached(t, loadTemplates(t))
	var packetErrs []int
	var malformed []int
	sum, err := Play(context.Background(), mustReader(t, file, nil), PlayConfig{Engine: h,
		PacketError: func(pe *PacketError) { packetErrs = append(packetErrs, pe.PacketNum) },
		Malformed:   func(d *Datagram) { malformed = append(malformed, d.PacketNum) }})
	if err != nil {
		t.Fatal(err)
	}
	// Records: datagram i is record i+1 until the first insertion after datagram 100.
	if len(packetErrs) != 1 || packetErrs[0] != 203 {
		t.Errorf("packet errors at %v, want [203]", packetErrs)
	}
	if len(malformed) != 1 || malformed[0] != 304 {
		t.Errorf("malformed payloads at %v, want [304]", malformed)
	}
	var fe *FileError
	if !errors.As(sum.FileError, &fe) || fe.PacketNum != len(recs) {
		t.Errorf("file error %v, want one at record %d", sum.FileError, len(recs))
	}
	if sum.Reader.Skipped != 1 || sum.Reader.Malformed != 1 || sum.Malformed != 1 || sum.Reader.Packets != uint64(len(recs)-1) {
		t.Errorf("summary %+v", sum)
	}
	var holes uint64
	for _, c := range sum.Channels {
		holes += c.Holes
		if c.Dst == lostDst && (c.Holes != 1 || c.Missing != 2) {
			t.Errorf("channel with the lost datagrams: %+v", c)
		}
	}
	if holes != 1 {
		t.Errorf("%d holes in the capture, want 1: %+v", holes, sum.Channels)
	}
	st := h.Stats()
	if st.Gaps != 1 || st.Missing != 2 || st.DecodeErrors != 1 || st.StaleBooks == 0 {
		t.Errorf("handler counters %+v", st)
	}
}

// TestPlayPacing replays, at the recorded pace and at twice it, a capture whose
// datagrams are spaced 0 to 12 ms apart, and checks the replayer's own handover times
// (the Sent hook, not the wall clock around Play). Always: no datagram is handed over
// before its time. Tolerance: the median error of the gaps between handovers, against
// the capture's gaps scaled by the speed, is at most 1 ms (typically tens of
// microseconds). The median ignores the scheduler's hiccups, which on a loaded machine
// (2 noisy cores, -race, other tests) delay a few handovers by tens of milliseconds;
// lateness never accumulates, as every datagram is due at an offset from the start. A
// run that misses the tolerance is tried again, up to three times.
func TestPlayPacing(t *testing.T) {
	ds := fixtureDatagrams(t)[:120]
	var recs []rec
	gaps := []time.Duration{0, 300 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 12 * time.Millisecond}
	ts := ds[0].Time
	for i, d := range ds {
		ts += int64(gaps[i%len(gaps)])
		recs = append(recs, rec{ts: ts, data: eth(etherTypeIPv4, ipv4(ipHdr{src: d.Src.Addr().String(), dst: d.Dst.Addr().String()}, udp(d.Src.Port(), d.Dst.Port(), d.Payload)))})
	}
	file := pcapFile(binary.LittleEndian, true, layers.LinkTypeEthernet, recs...)
	ts0 := loadTemplates(t)
	for _, speed := range []float64{1, 2} {
		var report string
		ok := false
		for try := 0; try < 3 && !ok; try++ {
			var capture []int64
			var sent []time.Duration
			h := detached(t, ts0)
			_, err := Play(context.Background(), mustReader(t, file, nil), PlayConfig{Engine: h, Speed: speed,
				Sent: func(d *Datagram, at time.Duration) {
					capture = append(capture, d.Time)
					sent = append(sent, at)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != len(recs) {
				t.Fatalf("speed %v: %d handovers of %d datagrams", speed, len(sent), len(recs))
			}
			var errs []time.Duration
			for i := range sent {
				due := time.Duration(float64(capture[i]-capture[0]) / speed)
				if sent[i] < due {
					t.Fatalf("speed %v: datagram %d handed over at %v, before it was due at %v", speed, i, sent[i], due)
				}
				if i == 0 {
					continue
				}
				want := time.Duration(float64(capture[i]-capture[i-1]) / speed)
				errs = append(errs, (sent[i] - sent[i-1] - want).Abs())
			}
			slices.Sort(errs)
			median, p90, worst := errs[len(errs)/2], errs[len(errs)*9/10], errs[len(errs)-1]
			ok = median <= time.Millisecond
			report = fmt.Sprintf("speed %v, try %d: inter-packet gap error over %d gaps: median %v, p90 %v, worst %v",
				speed, try+1, len(errs), median, p90, worst)
			t.Log(report)
		}
		if !ok {
			t.Errorf("pacing outside the tolerance three times; last: %s", report)
		}
	}
}

// TestPlayConfig: Play wants exactly one target.
func TestPlayConfig(t *testing.T) {
	r := mustReader(t, readFixture(t), nil)
	if _, err := Play(context.Background(), r, PlayConfig{}); err == nil {
		t.Error("Play without a target succeeded")
	}
}

// TestPlayCancel: a cancelled context stops a slow replay.
func TestPlayCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := detached(t, loadTemplates(t))
	n := 0
	_, err := Play(ctx, mustReader(t, readFixture(t), nil), PlayConfig{Engine: h, Speed: 0.01,
		Sent: func(*Datagram, time.Duration) {
			if n++; n == 3 {
				cancel()
			}
		}})
	// The capture's first datagrams share a timestamp; it stops at the first wait.
	if !errors.Is(err, context.Canceled) || n > 100 {
		t.Errorf("Play after cancel: %v after %d datagrams", err, n)
	}
}

// FuzzPlay: whatever the file, replaying it into a handler ends without a panic, and
// every capture record is accounted for.
func FuzzPlay(f *testing.F) {
	fix := readFixture(f)
	f.Add(fix[:4096])
	f.Add(fix[:24])
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	ts := loadTemplates(f)
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := NewReader(bytes.NewReader(file), nil)
		if err != nil {
			return
		}
		h := detached(t, ts)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sum, err := Play(ctx, r, PlayConfig{Engine: h, Drain: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Delivered+sum.NotJoined != sum.Reader.Datagrams {
			t.Fatalf("%d delivered + %d not joined, of %d datagrams", sum.Delivered, sum.NotJoined, sum.Reader.Datagrams)
		}
		if st := h.Stats(); st.Datagrams != sum.Delivered {
			t.Fatalf("handler saw %d datagrams, %d delivered", st.Datagrams, sum.Delivered)
		}
		checkInvariant(t, sum.Reader)
	})
}

// BenchmarkPlayMax replays the fixture capture from memory as fast as possible into a
// handler (pcap parsing, FAST decode, sequencing, book updates), and reports datagrams
// and UDP payload megabytes per second.
func BenchmarkPlayMax(b *testing.B) {
	file := readFixture(b)
	ts := loadTemplates(b)
	var datagrams, bytes_ uint64
	var elapsed time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		h := detached(b, ts)
		r := mustReader(b, file, nil)
		b.StartTimer()
		start := time.Now()
		sum, err := Play(context.Background(), r, PlayConfig{Engine: h})
		elapsed += time.Since(start)
		if err != nil || sum.Delivered != 1515 {
			b.Fatalf("%v, %d datagrams", err, sum.Delivered)
		}
		datagrams += sum.Delivered
		bytes_ += sum.Bytes
	}
	b.ReportMetric(float64(datagrams)/elapsed.Seconds(), "datagrams/s")
	b.ReportMetric(float64(bytes_)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(datagrams), "ns/datagram")
}

// writeCapture writes datagrams to an in-memory pcapng capture with the Writer.
func writeCapture(t testing.TB, ds []Datagram) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		if err := w.WriteDatagram(&ds[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
