package replay

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
)

const benchDatagrams = 100_000

// benchFile writes benchDatagrams datagrams of a typical incremental-refresh
// size (150 to 249 bytes) to a file in memory, spread over 16 groups.
func benchFile(b *testing.B, format Format) (file []byte, payloadBytes int) {
	b.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, format)
	if err != nil {
		b.Fatal(err)
	}
	src := netip.MustParseAddrPort("192.0.2.1:40000")
	payload := make([]byte, 250)
	for i := range benchDatagrams {
		payload[0] = byte(i)
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 1, 0, byte(i % 16)}), 5000)
		if err := w.WriteUDP(ts0+int64(i)*10_000, src, dst, payload[:150+i%100]); err != nil {
			b.Fatal(err)
		}
		payloadBytes += 150 + i%100
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), payloadBytes
}

// BenchmarkReader reads a 100k-datagram capture from memory; one op is one
// datagram (Next call). MB/s counts file bytes; the reader is reopened at
// the end of the file with the timer stopped.
func BenchmarkReader(b *testing.B) {
	for _, format := range []Format{Pcap, PcapNG} {
		b.Run(format.String(), func(b *testing.B) {
			file, _ := benchFile(b, format)
			open := func() *Reader {
				r, err := NewReader(bytes.NewReader(file), nil)
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
			r := open()
			var d Datagram
			b.SetBytes(int64(len(file) / benchDatagrams))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				err := r.Next(&d)
				if err == io.EOF {
					b.StopTimer()
					r = open()
					b.StartTimer()
					err = r.Next(&d)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}

// BenchmarkReadFile reads the whole 100k-datagram capture per op, opening
// included.
func BenchmarkReadFile(b *testing.B) {
	for _, format := range []Format{Pcap, PcapNG} {
		b.Run(format.String(), func(b *testing.B) {
			file, _ := benchFile(b, format)
			b.SetBytes(int64(len(file)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := NewReader(bytes.NewReader(file), nil)
				if err != nil {
					b.Fatal(err)
				}
				var d Datagram
				n := 0
				for r.Next(&d) == nil {
					n++
				}
				if n != benchDatagrams {
					b.Fatalf("read %d datagrams", n)
				}
			}
			b.ReportMetric(float64(b.N*benchDatagrams)/b.Elapsed().Seconds(), "datagrams/s")
		})
	}
}

// BenchmarkWriter writes 200-byte datagrams; one op is one datagram.
func BenchmarkWriter(b *testing.B) {
	for _, format := range []Format{Pcap, PcapNG} {
		b.Run(format.String(), func(b *testing.B) {
			w, err := NewWriter(io.Discard, format)
			if err != nil {
				b.Fatal(err)
			}
			src := netip.MustParseAddrPort("192.0.2.1:40000")
			dst := netip.MustParseAddrPort("239.1.0.1:5000")
			payload := make([]byte, 200)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := range b.N {
				if err := w.WriteUDP(ts0+int64(i), src, dst, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
