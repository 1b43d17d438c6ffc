package natsbus

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"

	"fastfeed/md"
)

// TestConsumerLatencyClamped: an X published longer ago than the latency histogram holds
// is recorded at the histogram's top, not dropped (a consumer far behind must not look
// like one that received nothing).
func TestConsumerLatencyClamped(t *testing.T) {
	lat := hdrhistogram.New(1, int64(time.Millisecond), 3)
	c, err := NewConsumer(ConsumerConfig{Conn: &nats.Conn{}, Latency: lat})
	if err != nil {
		t.Fatal(err)
	}
	s := md.Snapshot{Symbol: []byte("SBER")}
	c.handle(&nats.Msg{Subject: "snap.G239-1-2-3-30001.SBER", Data: AppendW(nil, &s, -2, 0, 1)})
	e := []md.Entry{{Action: md.New, Type: md.Bid, RptSeq: 1, Price: md.Dec(10000, -2), Size: md.Dec(7, 0), Orders: 1}}
	c.handle(&nats.Msg{Subject: "md.G239-1-2-3-30001.SBER", Data: AppendX(nil, "SBER", e, time.Now().Add(-time.Hour).UnixNano())})
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
	if lat.TotalCount() != 1 || lat.Max() < lat.HighestTrackableValue() {
		t.Errorf("histogram: %d values, max %d (top %d)", lat.TotalCount(), lat.Max(), lat.HighestTrackableValue())
	}
}
