package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// fuzzSeeds are whole capture files: every link type in every file variant,
// fragments in and out of order, malformed packets, and truncations.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, ff := range fileFormats {
		for _, lf := range linkFrames(dgram("seed")) {
			seeds = append(seeds, ff.build(t, lf.link, rec{ts: ts0, data: lf.frame}))
		}
	}
	p := udp(4000, 5000, make([]byte, 600))
	f := fragment(ipHdr{id: 5}, p, 200, 400)
	frags := []rec{
		{ts: ts0, data: eth(etherTypeIPv4, f[2])},
		{ts: ts0 + 1, data: eth(etherTypeIPv4, f[0])},
		{ts: ts0 + 2, data: eth(etherTypeIPv4, dgram("between"), etherTypeQinQ, etherTypeVLAN)},
		{ts: ts0 + 3, data: eth(etherTypeIPv4, f[1])},
		{ts: ts0 + 4, data: eth(etherTypeIPv4, fragPiece(5, 192, true, make([]byte, 16)))},
	}
	seeds = append(seeds,
		pcapFile(binary.LittleEndian, true, linkEthernet, frags...),
		pcapngFile(t, []layers.LinkType{linkEthernet, linkSLL2, linkRaw}, append(frags,
			rec{iface: 1, ts: ts0, data: sll2(etherTypeIPv4, dgram("sll2"))},
			rec{iface: 2, ts: ts0, data: ipv4(ipHdr{ihl: 4}, nil)},
			rec{iface: 2, ts: ts0, data: dgram("cut")[:25], orig: 40},
		)...),
	)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, PcapNG)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range roundTripData()[:5] {
		if err := w.WriteDatagram(&d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	seeds = append(seeds, whole, whole[:len(whole)-7])
	return seeds
}

// FuzzReader reads arbitrary bytes as a capture file and checks that the
// Reader never panics, always ends, keeps its counters consistent, and
// allocates no more than a fixed bound plus a multiple of the input size.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, file []byte, filter bool) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)

		var opts *Options
		if filter {
			opts = &Options{MaxReassemblies: 4, MaxFragments: 8, Dst: []netip.AddrPort{
				netip.MustParseAddrPort("239.1.2.3:0"), netip.AddrPortFrom(netip.Addr{}, 5000)}}
		}
		r, err := NewReader(bytes.NewReader(file), opts)
		if err != nil {
			return
		}
		// Every record takes at least 12 bytes of the file, so a Reader
		// that returns more often than this is looping.
		limit := len(file)/12 + 2
		var d Datagram
		last := 0
		for calls := 0; ; calls++ {
			if calls > limit {
				t.Fatalf("Next returned %d times for a %d-byte file", calls, len(file))
			}
			err := r.Next(&d)
			if err == io.EOF {
				break
			}
			var pe *PacketError
			var fe *FileError
			switch {
			case err == nil:
				if d.PacketNum <= last || uint64(d.PacketNum) > r.Stats().Packets || len(d.Payload) > maxIPv4Payload {
					t.Fatalf("datagram %d after %d, %d packets, %d bytes", d.PacketNum, last, r.Stats().Packets, len(d.Payload))
				}
				if !d.Src.Addr().Is4() || !d.Dst.Addr().Is4() {
					t.Fatalf("addresses %v %v", d.Src, d.Dst)
				}
				last = d.PacketNum
			case errors.As(err, &pe):
				if pe.PacketNum <= last || !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrBadFragment) {
					t.Fatalf("packet error %v after %d", err, last)
				}
				last = pe.PacketNum
			case errors.As(err, &fe):
				if err := r.Next(&d); err != io.EOF {
					t.Fatalf("Next after %v = %v, want io.EOF", fe, err)
				}
			default:
				t.Fatalf("untyped error %v", err)
			}
		}
		checkInvariant(t, r.Stats())

		runtime.ReadMemStats(&after)
		// Fixed: the read buffer, pcapgo's packet buffer (at most 256 KiB),
		// and with the default limits 64 reassembly buffers of 64 KiB.
		const fixed = 8 << 20
		if got := after.TotalAlloc - before.TotalAlloc; got > fixed+64*uint64(len(file)) {
			t.Fatalf("allocated %d bytes reading a %d-byte file", got, len(file))
		}
	})
}
