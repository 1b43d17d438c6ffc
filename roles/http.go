package roles

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"fastfeed/bus"
	"fastfeed/opshttp"
)

// checkHTTPAddr checks an --http address: host:port, the host optional (all interfaces).
func checkHTTPAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http %q: want HOST:PORT such as 127.0.0.1:8080", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--http %q: port %q: want 0..65535", addr, port)
	}
	return nil
}

// startHTTP starts the operator's HTTP view (--http) on addr, or on ln when it is given;
// it stops with ctx. With neither it starts nothing and returns nil.
func startHTTP(ctx context.Context, addr string, ln net.Listener, cfg opshttp.Config, log *slog.Logger) (*opshttp.Server, error) {
	if addr == "" && ln == nil {
		return nil, nil
	}
	cfg.Logger = log
	s, err := opshttp.New(cfg)
	if err != nil {
		return nil, err
	}
	if ln != nil {
		s.Serve(ctx, ln)
	} else if err := s.Start(ctx, addr); err != nil {
		return nil, err
	}
	log.Info("operator HTTP view: live page, /metrics, /healthz, /api/books", "url", s.URL())
	return s, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sumOf adds counts; nil for none.
func sumOf(fns []func() int) func() int {
	if len(fns) == 0 {
		return nil
	}
	return func() int {
		n := 0
		for _, f := range fns {
			n += f()
		}
		return n
	}
}

// connectedClients counts the OMS sessions connected now.
func connectedClients(b *bus.Bus) int {
	n := 0
	for _, c := range b.Clients() {
		if c.Connected {
			n++
		}
	}
	return n
}
