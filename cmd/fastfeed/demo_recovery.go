package main

import (
	"context"

	"fastfeed/feed"
	"fastfeed/internal/localrecovery"
	"fastfeed/publisher"
)

// demoRecovery connects the demo's handler to its publisher's recovery hooks.
func demoRecovery(ctx context.Context, p *publisher.Publisher) (feed.Recovery, string, error) {
	return localrecovery.New(ctx, p), "in-process", nil
}
