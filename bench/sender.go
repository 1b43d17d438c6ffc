package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strconv"
	"time"

	"fastfeed/fast"
	"fastfeed/mcast"
	"fastfeed/publisher"
)

// source is the sending side of an end-to-end run: the paced publisher or the blast, in
// this process or in a child process (Config.Spawn).
type source struct {
	groups []netip.AddrPort // what the receiver joins
	// send sends until done or ctx ends; it calls started once, just before the data
	// starts (in a child: once the child is ready), unless it fails first.
	send func(ctx context.Context, started func()) error
	sent func() (datagrams, entries uint64) // after send returns
}

// senderJob is what a sender does: the arguments of RunSender.
type senderJob struct {
	rate        float64 // 0: the blast
	duration    time.Duration
	port        uint16
	instruments int
	blast       int
	spin        bool // Config.SpinPacing
}

func (j senderJob) args() []string {
	return []string{"-rate", strconv.FormatFloat(j.rate, 'g', -1, 64), "-duration", j.duration.String(),
		"-port", strconv.Itoa(int(j.port)), "-instruments", strconv.Itoa(j.instruments), "-blast", strconv.Itoa(j.blast),
		"-spin=" + strconv.FormatBool(j.spin)}
}

// spinWait is the publisher's SpinWait with Config.SpinPacing: every wait of a paced run
// from 500 msgs/s up (a sleep's millisecond of error matters less below).
const spinWait = 2 * time.Millisecond

func newSource(cfg *Config, rate float64, port uint16) (*source, error) {
	job := senderJob{rate: rate, duration: cfg.Duration, port: port, instruments: cfg.Instruments, blast: cfg.BlastDatagrams,
		spin: cfg.SpinPacing}
	if cfg.Spawn == nil {
		return localSource(cfg.Templates, job)
	}
	return childSource(cfg.Templates, job, cfg.Spawn)
}

// localSource sends from this process.
func localSource(ts *fast.Templates, job senderJob) (*source, error) {
	ins, err := publisher.GenerateInstruments(job.instruments)
	if err != nil {
		return nil, err
	}
	if job.rate > 0 {
		pub, err := newPublisher(ts, ins, job)
		if err != nil {
			return nil, err
		}
		src := &source{
			send: func(ctx context.Context, started func()) error { started(); return pub.Run(ctx) },
			sent: func() (uint64, uint64) { s := pub.Stats(); return s.Incrementals, s.Entries },
		}
		for _, c := range pub.Channels() {
			src.groups = append(src.groups, c.Group)
		}
		return src, nil
	}
	symbols := make([]string, len(ins))
	for i, in := range ins {
		symbols[i] = in.Symbol
	}
	st, err := newStream(ts, symbols, job.port, job.blast)
	if err != nil {
		return nil, err
	}
	return &source{
		groups: st.groups,
		send:   func(ctx context.Context, started func()) error { started(); return st.send(ctx) },
		sent:   func() (uint64, uint64) { return uint64(len(st.msgs)), uint64(len(st.msgs)) },
	}, nil
}

func newPublisher(ts *fast.Templates, ins []publisher.Instrument, job senderJob) (*publisher.Publisher, error) {
	cfg := publisher.Config{Instruments: ins, Templates: ts, Rate: job.rate,
		Duration: job.duration, Port: job.port, NoStatus: true, Seed: 1, SendBuffer: 4 << 20}
	if job.spin {
		cfg.SpinWait = spinWait
	}
	return publisher.New(cfg)
}

// childSource sends from a child process that runs RunSender.
func childSource(ts *fast.Templates, job senderJob, spawn func(context.Context, []string) (*exec.Cmd, error)) (*source, error) {
	ins, err := publisher.GenerateInstruments(job.instruments)
	if err != nil {
		return nil, err
	}
	src := &source{}
	if job.rate > 0 {
		// The groups the child publishes to: the same publisher, built here but never
		// run (New opens no socket).
		pub, err := newPublisher(ts, ins, job)
		if err != nil {
			return nil, err
		}
		for _, c := range pub.Channels() {
			src.groups = append(src.groups, c.Group)
		}
	} else {
		var m mcast.Mapping // as newStream
		for _, in := range ins {
			src.groups = append(src.groups, netip.AddrPortFrom(m.Group(in.Symbol), job.port))
		}
	}
	var datagrams, entries uint64
	src.sent = func() (uint64, uint64) { return datagrams, entries }
	src.send = func(ctx context.Context, started func()) error {
		cmd, err := spawn(ctx, job.args())
		if err != nil {
			return fmt.Errorf("sender process: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("sender process: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("sender process: %w", err)
		}
		err = readSender(out, started, &datagrams, &entries)
		if err != nil {
			_ = cmd.Process.Kill()
		}
		if werr := cmd.Wait(); werr != nil && err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("sender process: %w", err)
		}
		return nil
	}
	return src, nil
}

// parseSenderJob parses what senderJob.args wrote.
func parseSenderJob(args []string) (senderJob, error) {
	fs := flag.NewFlagSet("sender", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var job senderJob
	var port uint
	fs.Float64Var(&job.rate, "rate", 0, "")
	fs.DurationVar(&job.duration, "duration", 0, "")
	fs.UintVar(&port, "port", 0, "")
	fs.IntVar(&job.instruments, "instruments", 0, "")
	fs.IntVar(&job.blast, "blast", 0, "")
	fs.BoolVar(&job.spin, "spin", false, "")
	if err := fs.Parse(args); err != nil {
		return job, fmt.Errorf("bench: sender: %w", err)
	}
	if fs.NArg() > 0 || job.rate < 0 || job.duration <= 0 || port == 0 || port > 65535 || job.instruments <= 0 || job.blast <= 0 {
		return job, fmt.Errorf("bench: sender: bad arguments %q", args)
	}
	job.port = uint16(port)
	return job, nil
}

// readSender reads what RunSender writes, calling started on its "ready".
func readSender(r io.Reader, started func(), datagrams, entries *uint64) error {
	sc := bufio.NewScanner(r)
	ready, done := false, false
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == "ready" && !ready:
			ready = true
			started()
		case ready && !done:
			if _, err := fmt.Sscanf(line, "sent %d %d", datagrams, entries); err != nil {
				return fmt.Errorf("unexpected line %q", line)
			}
			done = true
		default:
			return fmt.Errorf("unexpected line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !done {
		return errors.New("exited without reporting what it sent")
	}
	return nil
}

// RunSender is the sender of an end-to-end run in a child process (see Config.Spawn):
// args are the ones Spawn was given. It writes "ready" to w, a line, just before it
// sends, and "sent <datagrams> <entries>" after. It opens a multicast socket on
// loopback: run it inside the parent's private network namespace.
func RunSender(ctx context.Context, ts *fast.Templates, args []string, w io.Writer) error {
	job, err := parseSenderJob(args)
	if err != nil {
		return err
	}
	src, err := localSource(ts, job)
	if err != nil {
		return fmt.Errorf("bench: sender: %w", err)
	}
	if err := src.send(ctx, func() { fmt.Fprintln(w, "ready") }); err != nil {
		return fmt.Errorf("bench: sender: %w", err)
	}
	d, e := src.sent()
	if _, err := fmt.Fprintf(w, "sent %d %d\n", d, e); err != nil {
		return fmt.Errorf("bench: sender: %w", err)
	}
	return nil
}
