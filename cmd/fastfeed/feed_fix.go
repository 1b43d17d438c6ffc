package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"fastfeed/fast"
	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
)

// newFIXRecovery connects the handler to the FIX recovery service at --fix-connect.
func newFIXRecovery(ctx context.Context, f feedFlags, ts *fast.Templates, log *slog.Logger) (*fixrecovery.Client, error) {
	compID := f.compID
	if compID == "" {
		compID = fmt.Sprintf("FFFEED-%d", os.Getpid())
	}
	return fixrecovery.New(fixrecovery.Config{Connect: f.fixConnect, SenderCompID: compID,
		Username: f.username, Password: f.password, Templates: ts, Logger: log})
}

var _ feed.Recovery = (*fixrecovery.Client)(nil)
