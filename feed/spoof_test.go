package feed

import (
	"net/netip"
	"testing"

	"fastfeed/mcast"
	"fastfeed/md"
)

// TestSpoofedSource runs a handler whose joins are source-specific (Config.Source
// 127.0.0.1) in this private network namespace, and sends to its group from 127.0.0.2
// (loopback owns 127/8) between the publisher's datagrams: a bogus incremental with the
// next sequence number, which would corrupt the book if taken, one far ahead, and
// garbage. None may reach the handler: the kernel filters them, so the handler counts
// only the real datagrams, no decode error, no gap, and its book equals the ground
// truth.
func TestSpoofedSource(t *testing.T) {
	s := newScript(t)
	h, stop := startHandler(t, Config{Topics: []string{"SBER"}, Source: netip.MustParseAddr("127.0.0.1")})
	spoof, err := mcast.NewSender(mcast.SenderConfig{Interface: netip.MustParseAddr("127.0.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	const n = 20
	for i := range n {
		seq := s.update("SBER", md.New, md.Bid, int64(10000+i), 10)
		s.send("SBER", seq, false)
		for _, d := range [][]byte{s.bogus(t, "SBER", seq+1), s.bogus(t, "SBER", seq+100000), []byte("garbage")} {
			if err := spoof.WriteTo(d, channelOf("SBER")); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, h, "the publisher's datagrams", func() bool { return h.stats.Messages == n })
	dumpEqual(t, h, s.truthDump("SBER"))
	st := stop()
	if st.Datagrams != n || st.DecodeErrors != 0 || st.Gaps != 0 || st.Dropped != 0 || st.Duplicates != 0 || st.BookErrors != 0 {
		t.Errorf("stats %+v: want %d datagrams and nothing else", st, n)
	}
}
