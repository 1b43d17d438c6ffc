package roles

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"fastfeed/demo"
	"fastfeed/internal/netns"
)

// Demo is fastfeed demo: package demo's publisher and handler in one process for a
// bounded time, in a private network namespace when it can have one, so nothing reaches
// a real interface, and on plain loopback (IP_MULTICAST_IF 127.0.0.1) otherwise.
func Demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr, "usage: fastfeed demo [--duration D] [--instruments N] [--rate R] [--loss P] [--show N] [--no-netns] [--http ADDR] [--nats-listen ADDR|--no-nats]")
	duration := fs.Duration("duration", 15*time.Second, "how long the market runs")
	instruments := fs.Int("instruments", 12, "instruments to simulate")
	rate := fs.Float64("rate", 5000, "incremental datagrams per second")
	loss := fs.Float64("loss", 0.01, "receive-path loss injected in the handler, to show recovery")
	show := fs.Int("show", 6, "instruments shown")
	templates := fs.String("templates", DefaultTemplates, "FAST template XML `file`")
	hostLoopback := fs.Bool("no-netns", false, "run on the host's loopback instead of a private network namespace")
	httpAddr := fs.String("http", "127.0.0.1:8080", "serve the live page, /metrics and /api on `address` (\"\": none)")
	httpFD := fs.Int("http-fd", 0, "internal: serve --http on this inherited listening `descriptor`")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "address of the embedded NATS server the books are published on")
	noNATS := fs.Bool("no-nats", false, "do not publish the books on NATS")
	if _, err := parse(fs, args, parseOpts{}); err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour || *instruments <= 0 || *rate < 0 || *loss < 0 || *loss > 0.5 || *show < 1 {
		return usagef("need 0 < --duration <= 1h, --instruments > 0, --rate >= 0, 0 <= --loss <= 0.5, --show > 0")
	}
	// The HTTP listener is opened here, in the host's namespace, and handed to the demo
	// re-run inside the private one: the page is reachable, the multicast stays inside.
	ln, err := demoListener(*httpAddr, *httpFD)
	if err != nil {
		return err
	}
	if ln != nil {
		defer ln.Close()
	}
	if !*hostLoopback {
		// Outside a namespace this runs the demo again inside one; inside, it brings lo up.
		reArgs, files := append([]string{"demo"}, args...), []*os.File(nil)
		if ln != nil && *httpFD == 0 {
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				return err
			}
			defer f.Close()
			reArgs, files = append(reArgs, "--http-fd=3"), []*os.File{f}
		}
		handled, code, err := netns.ReexecFiles(ctx, reArgs, files)
		switch {
		case err == nil && handled:
			if code != 0 {
				return fmt.Errorf("demo exited with status %d", code)
			}
			return nil
		case err != nil:
			fmt.Fprintf(stderr, "fastfeed demo: no private network namespace (%v); using the host's loopback\n", err)
		}
	}
	ts, err := LoadTemplates(*templates, *templates != DefaultTemplates)
	if err != nil {
		return err
	}
	return demo.Run(ctx, demo.Options{Templates: ts, Duration: *duration, Instruments: *instruments, Rate: *rate,
		Loss: *loss, Show: *show, Out: stdout, HTTP: ln, NATSListen: *natsListen, NoNATS: *noNATS})
}

// demoListener opens the demo's --http listener, or takes the one inherited as descriptor
// fd; none for an empty address.
func demoListener(addr string, fd int) (net.Listener, error) {
	if fd > 0 {
		f := os.NewFile(uintptr(fd), "http-listener")
		defer f.Close()
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("--http-fd %d: %w", fd, err)
		}
		return ln, nil
	}
	if addr == "" {
		return nil, nil
	}
	if err := checkHTTPAddr(addr); err != nil {
		return nil, &UsageError{err.Error()}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w (give another with --http ADDR, or --http '' for none)", addr, err)
	}
	return ln, nil
}
