package fixrecovery_test

import (
	"context"
	"log"
	"time"

	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
)

// A handler that recovers lost datagrams and late joins from the publisher's recovery
// service on its default address, 127.0.0.1:9870.
func Example() {
	ts, err := fast.LoadFile("fixtures/templates.xml")
	if err != nil {
		log.Fatal(err)
	}
	rec, err := fixrecovery.New(fixrecovery.Config{
		SenderCompID: "FFFEED-1",
		Username:     "demo",
		Password:     "demo",
		Templates:    ts,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close() // after the handler is done

	h, err := feed.New(feed.Config{Topics: []string{"SBER", "GAZP"}, Templates: ts, Recovery: rec})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
