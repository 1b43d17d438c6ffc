package main

import (
	"context"
	"errors"
	"log/slog"

	"fastfeed/feed"
)

// newFIXRecovery connects the handler to the FIX recovery service.
func newFIXRecovery(ctx context.Context, f feedFlags, log *slog.Logger) (feed.Recovery, error) {
	return nil, errors.New("--fix-connect: the FIX recovery client is not built in yet")
}
