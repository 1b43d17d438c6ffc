package replay_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/netip"

	"fastfeed/replay"
)

// A recorder writes datagrams with their receive timestamps; a replayer
// reads them back, nanoseconds intact.
func Example() {
	var file bytes.Buffer
	w, err := replay.NewWriter(&file, replay.PcapNG)
	if err != nil {
		log.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	group := netip.MustParseAddrPort("239.0.0.1:5000")
	for i, msg := range []string{"seq 1", "seq 2", "seq 3"} {
		ts := int64(1_700_000_000_000_000_001) + int64(i)*250 // from SO_TIMESTAMPNS, say
		if err := w.WriteUDP(ts, src, group, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	r, err := replay.NewReader(&file, nil)
	if err != nil {
		log.Fatal(err)
	}
	var d replay.Datagram
	for {
		err := r.Next(&d)
		if err == io.EOF {
			break
		}
		var pe *replay.PacketError
		if errors.As(err, &pe) {
			log.Print(pe) // one bad packet: go on
			continue
		}
		if err != nil {
			log.Fatal(err) // the file is damaged
		}
		fmt.Printf("#%d %d %v -> %v %q\n", d.PacketNum, d.Time, d.Src, d.Dst, d.Payload)
	}
	st := r.Stats()
	fmt.Printf("%s: %d packets, %d datagrams, %d skipped\n", r.Format(), st.Packets, st.Datagrams, st.Skipped)
	// Output:
	// #1 1700000000000000001 127.0.0.1:40000 -> 239.0.0.1:5000 "seq 1"
	// #2 1700000000000000251 127.0.0.1:40000 -> 239.0.0.1:5000 "seq 2"
	// #3 1700000000000000501 127.0.0.1:40000 -> 239.0.0.1:5000 "seq 3"
	// pcapng: 3 packets, 3 datagrams, 0 skipped
}
