//go:build !linux

package feed

import (
	"context"
	"fmt"

	"fastfeed/mcast"
)

// New returns mcast.ErrNeedsLinux: the receiver reads multicast with epoll and recvmmsg.
// An Engine (NewEngine) works here: it decodes and replays captures on any system.
func New(cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("feed: %w", mcast.ErrNeedsLinux)
}

// Run returns mcast.ErrNeedsLinux.
func (h *Handler) Run(context.Context) error { return fmt.Errorf("feed: %w", mcast.ErrNeedsLinux) }

// Close does nothing.
func (h *Handler) Close() {}
