package main

import (
	"context"
	"log/slog"

	"fastfeed/feed"
	"fastfeed/feed/fixrecovery"
	"fastfeed/internal/fixsession"
	"fastfeed/publisher"
)

// demoRecovery starts the publisher's FIX recovery service on a free loopback port and
// connects the handler to it over a real FIX session, as separate processes would.
// ready reports when the session has logged on.
func demoRecovery(ctx context.Context, p *publisher.Publisher) (rec feed.Recovery, ready func() bool, how string, err error) {
	svc, err := publisher.NewRecoveryService(p, publisher.RecoveryOptions{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, "", err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, nil, "", err
	}
	go func() { <-ctx.Done(); svc.Stop() }()
	c, err := fixrecovery.New(fixrecovery.Config{Connect: svc.Addr(), SenderCompID: "FFDEMO",
		Username: fixsession.DemoUsername, Password: fixsession.DemoPassword, Templates: p.Templates()})
	if err != nil {
		return nil, nil, "", err
	}
	go func() { <-ctx.Done(); c.Close() }()
	return c, c.LoggedOn, "FIX session to " + svc.Addr(), nil
}
