package roles

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"fastfeed/bench"
	"fastfeed/internal/netns"
)

// benchTimeout bounds a whole "fastfeed bench", whatever the flags; fanoutTimeout a
// whole "fastfeed bench --fanout" (its rows at the feed's rate take about 2-3 minutes,
// the capacity steps about 15 s each).
const (
	benchTimeout  = 5 * time.Minute
	fanoutTimeout = 8 * time.Minute
)

// Bench is fastfeed bench: the benchmark suite (package bench) in a private network
// namespace, writing bench/results/REPORT.md and its plot.
func Bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr, "usage: fastfeed bench [--quick] [--out DIR] [--rates R,R,max] [--duration D] ...")
	quick := fs.Bool("quick", false, "short runs (1 s each, microbenchmarks 50 ms): well under a minute, for tests")
	out := fs.String("out", "bench/results", "`directory` for "+bench.ReportFile+" and "+bench.PlotFile)
	duration := fs.Duration("duration", 0, "data phase of each end-to-end run (default 5s, 1s with --quick)")
	rates := fs.String("rates", "10000,100000,max", "end-to-end publishing `rates`, incremental datagrams per second (max: as fast as possible)")
	instruments := fs.Int("instruments", 256, "simulated instruments, one multicast group each")
	benchtime := fs.Duration("benchtime", 0, "time of each microbenchmark (default 1s, 50ms with --quick)")
	blast := fs.Int("blast", 0, "datagrams of the maximum-rate run (default 300000, 100000 with --quick)")
	noMicro := fs.Bool("no-micro", false, "skip the microbenchmarks")
	templates := fs.String("templates", DefaultTemplates, "FAST template XML `file`")
	procs := fs.Int("gomaxprocs", 2*runtime.NumCPU(), "GOMAXPROCS of the receiving process (with --one-process, the publisher shares it, and with\n"+
		"as many Ps as CPUs a busy publisher goroutine keeps the receiver waiting for a P after each syscall;\n"+
		"more Ps leave the arbitration to the kernel, as between two processes)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file`")
	oneProcess := fs.Bool("one-process", false, "run the senders in the bench's process, sharing its Go scheduler with the receiver\n"+
		"(default: each run's sender is a child process, as a publisher is deployed)")
	busyPoll := fs.Bool("busy-poll", false, "receive in busy-poll mode, handler and baseline alike: spin on recvmmsg on a locked OS thread, no epoll sleep\n"+
		"(SO_BUSY_POLL where the kernel permits); it keeps a CPU busy")
	cpu := fs.Int("cpu", -1, "pin the receiving thread (handler and baseline) to CPU `N` (default: not pinned)")
	rounds := fs.Int("rounds", 1, "measure each rate `N` times through each receiver, handler and baseline alternating, and merge them")
	shared := fs.Bool("shared-sockets", false, "join the groups on one shared socket, handler and baseline alike (feed --shared-sockets;\n"+
		"the bench raises net.ipv4.igmp_max_memberships in its private namespace to fit them)")
	pacing := fs.String("pacing", "", "how the paced publisher waits between sends: spin (each datagram sent when due; keeps the\n"+
		"sender's CPU busy) or sleep (Go's timers wake up to a millisecond late, so a millisecond's datagrams go at once)\n"+
		"(default: spin with --busy-poll, sleep otherwise)")
	noWarm := fs.Bool("no-warm", false, "with --busy-poll, turn off the handler's cache warming between datagrams (feed.Config.NoWarm),\n"+
		"to measure what it gives")
	stageEvery := fs.Int("stage-every", 0, "time the handler's stages for one message in `N` of each channel's (feed --stage-every;\n"+
		"default 8, 1: every message); tick-to-handler is every message's")
	senderRole := fs.Bool("sender", false, "internal: be the sender child of a run (its arguments follow --)")
	var fan fanoutFlags
	fan.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *senderRole {
		return benchSender(ctx, args, *templates, fs.Args(), stdout)
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	pin, err := CPUFlag(*cpu)
	if err != nil {
		return err
	}
	cfg := bench.Config{Instruments: *instruments, NoMicro: *noMicro, Duration: *duration, BlastDatagrams: *blast,
		BusyPoll: *busyPoll, PinCPU: pin, CPU: *cpu, SharedSockets: *shared, Rounds: *rounds, NoWarm: *noWarm,
		StageEvery: *stageEvery}
	if *stageEvery < 0 {
		return &UsageError{fmt.Sprintf("--stage-every %d: want 1 or more (0: the default)", *stageEvery)}
	}
	switch *pacing {
	case "":
		cfg.SpinPacing = *busyPoll
	case "spin", "sleep":
		cfg.SpinPacing = *pacing == "spin"
	default:
		return &UsageError{fmt.Sprintf("--pacing: %q is neither spin nor sleep", *pacing)}
	}
	if *noWarm && !*busyPoll {
		return &UsageError{"--no-warm: the handler warms its caches only with --busy-poll"}
	}
	if *quick && cfg.Duration == 0 {
		cfg.Duration = time.Second
	}
	if *quick && cfg.BlastDatagrams == 0 {
		cfg.BlastDatagrams = 100000
	}
	if *benchtime == 0 {
		*benchtime = time.Second
		if *quick {
			*benchtime = 50 * time.Millisecond
		}
	}
	if cfg.Duration < 0 || cfg.Duration > 30*time.Second || *benchtime < 0 || *benchtime > 5*time.Second || *instruments <= 0 || *instruments > 1000 ||
		*blast < 0 || *blast > 2000000 || *procs < 1 || *procs > 256 || *rounds < 1 || *rounds > 10 {
		return &UsageError{"need 0 < --duration <= 30s, 0 < --benchtime <= 5s, 0 < --instruments <= 1000, 0 < --blast <= 2000000, 1 <= --gomaxprocs <= 256, 1 <= --rounds <= 10"}
	}
	for _, r := range strings.Split(*rates, ",") {
		r = strings.TrimSpace(r)
		if r == "max" {
			cfg.Rates = append(cfg.Rates, 0)
			continue
		}
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || v <= 0 || v > 10e6 {
			return &UsageError{fmt.Sprintf("--rates: %q is not a rate in 1..10000000 or max", r)}
		}
		cfg.Rates = append(cfg.Rates, v)
	}
	if len(cfg.Rates) > 6 {
		return &UsageError{"--rates: at most 6 rates"}
	}

	// Outside a namespace this runs the command again inside one; inside, it brings lo up.
	handled, code, err := netns.Reexec(ctx, append([]string{"bench"}, args...))
	if err != nil {
		return fmt.Errorf("no private network namespace, so no benchmark (it sends multicast): %w", err)
	}
	if handled {
		if code != 0 {
			return fmt.Errorf("bench exited with status %d", code)
		}
		return nil
	}

	if cfg.Templates, err = LoadTemplates(*templates, *templates != DefaultTemplates); err != nil {
		return err
	}
	if cfg.SharedSockets {
		// Room for every group (and the definitions channel) on one socket, in the
		// bench's own namespace.
		if err := netns.RaiseMemberships(cfg.Instruments + 1); err != nil {
			return fmt.Errorf("--shared-sockets: %w", err)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if fan.on {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		ctx, cancel := context.WithTimeout(ctx, fanoutTimeout)
		defer cancel()
		return runFanout(ctx, fan, cfg.Templates, *out, strings.Join(append([]string{"fastfeed", "bench"}, args...), " "), stdout, stderr)
	}
	cfg.Benchtime = *benchtime
	cfg.Progress = progressLine(stderr)
	if !*oneProcess {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("sender process: %w", err)
		}
		prefix := []string{"bench", "--sender"}
		if *templates != DefaultTemplates {
			prefix = append(prefix, "--templates", *templates)
		}
		cfg.Spawn = func(ctx context.Context, args []string) (*exec.Cmd, error) {
			cmd, err := netns.Command(ctx, exe, append(append(prefix, "--"), args...)...)
			if err != nil {
				return nil, err
			}
			cmd.Stderr = stderr
			return cmd, nil
		}
	}
	runtime.GOMAXPROCS(*procs)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, cancel := context.WithTimeout(ctx, benchTimeout)
	defer cancel()
	res, err := bench.Run(ctx, cfg)
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	command := strings.Join(append([]string{"fastfeed", "bench"}, args...), " ")
	if err := bench.WriteReport(*out, res, command); err != nil {
		return err
	}
	for _, t := range bench.Targets(res) {
		fmt.Fprintf(stdout, "%s: %s\n", t.Name, t.Verdict())
	}
	fmt.Fprintf(stdout, "wrote %s/%s and %s/%s in %s\n", *out, bench.ReportFile, *out, bench.PlotFile, res.Took.Round(time.Second))
	return nil
}

// benchSender is "fastfeed bench --sender -- args": the sender child of a run
// (bench.RunSender), inside the parent's network namespace.
func benchSender(ctx context.Context, all []string, templates string, args []string, stdout io.Writer) error {
	handled, code, err := netns.Reexec(ctx, append([]string{"bench"}, all...))
	if err != nil {
		return fmt.Errorf("no private network namespace, so no sender (it sends multicast): %w", err)
	}
	if handled {
		if code != 0 {
			return fmt.Errorf("sender exited with status %d", code)
		}
		return nil
	}
	ts, err := LoadTemplates(templates, templates != DefaultTemplates)
	if err != nil {
		return err
	}
	return bench.RunSender(ctx, ts, args, stdout)
}

// progressLine returns a Progress that rewrites one line on a terminal and prints a line
// per step otherwise.
func progressLine(w io.Writer) func(string) {
	tty := isTerminal(w)
	return func(step string) {
		if tty {
			fmt.Fprintf(w, "\r\033[Kbench %s", step)
			return
		}
		fmt.Fprintf(w, "bench %s\n", step)
	}
}
