package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"fastfeed/ingest/moex"
	"fastfeed/ingest/moexsim"
	"fastfeed/internal/netns"
)

// MoexSim is fastfeed moex-sim: the exchange's side of a MOEX ASTS market for tests and
// demos (package ingest/moexsim).
func MoexSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("moex-sim", stderr,
		"usage: fastfeed moex-sim --moex-config FILE --market FOND|CURR [--map FROM=TO,...] [--steps N] [--rate R]",
		"                         [--loss-a N] [--loss-both N] [--loss-conns OLR,TLR,MSR] [--loss-burst EVERY:LEN[@FIRST]]",
		"                         [--loss-burst-conns OLR,TLR,MSR] [--tls-trades N]",
		"                         [--replay-listen ADDR] [--replay-delay D] [--new-day-after N]",
		"                         [--dump-books FILE] [--dump-trades FILE] [--stats-out FILE]",
		"\nEmulates the Moscow Exchange's side of a market of config.xml, driven by fastfeed's simulator: OLR, TLR,",
		"MSR incrementals, IDF definitions, ISF statuses, OLS/TLS/MSS snapshot cycles on lines A and B, and the TCP",
		"historical replay service. The config's own addresses are used only inside a private network namespace",
		"(internal/netns); elsewhere --map must move every one of them onto loopback or administratively scoped groups.")
	var (
		cfgFile, market, mapAddrs, replayListen, dumpBooks, dumpTrades, statsOut, lossConns, burst, burstConns string
		user, pass, logLevel                                                                                   string
		instruments, steps, rate, cycleEvery, defsEvery, lossA, lossBoth, fragment, blag, retention, tlsTrades int
		seed                                                                                                   uint64
		linger, replayDelay                                                                                    time.Duration
		newDayAfter                                                                                            int
	)
	fs.StringVar(&cfgFile, "moex-config", "", "MOEX channel configuration `file` (config.xml; required)")
	fs.StringVar(&market, "market", "FOND", "the config's market (channel id): FOND or CURR")
	fs.StringVar(&mapAddrs, "map", "", "replace the config's addresses (groups, src-ip, the replay service's): `FROM=TO[,FROM=TO]`")
	fs.IntVar(&instruments, "instruments", 8, "instruments simulated")
	fs.Uint64Var(&seed, "seed", 1, "simulator seed")
	fs.IntVar(&steps, "steps", 10000, "simulator events to send")
	fs.IntVar(&rate, "rate", 5000, "events per second")
	fs.IntVar(&cycleEvery, "snapshot-every", 1000, "a snapshot cycle (OLS, TLS, MSS) every `N` events")
	fs.IntVar(&defsEvery, "definitions-every", 1000, "an IDF definitions cycle every `N` events")
	fs.IntVar(&fragment, "fragment-entries", 8, "entries per snapshot fragment")
	fs.IntVar(&blag, "b-lag", 1, "line B's copies sent `N` datagrams after line A's")
	fs.IntVar(&retention, "retention", 100000, "messages kept per incremental connection for the replay service")
	fs.IntVar(&lossA, "loss-a", 0, "lose every `N`th datagram of the loss connections on line A only (0: none)")
	fs.IntVar(&lossBoth, "loss-both", 0, "lose every `N`th datagram of the loss connections on both lines (0: none)")
	fs.StringVar(&lossConns, "loss-conns", "OLR,TLR,MSR", "the connections --loss-a and --loss-both apply to")
	fs.StringVar(&burst, "loss-burst", "", "lose `EVERY:LEN[@FIRST]`: LEN datagrams of the burst connections on both lines every EVERY, from MsgSeqNum FIRST")
	fs.StringVar(&burstConns, "loss-burst-conns", "OLR", "the connections --loss-burst applies to (TLR, MSR: holes for the TLS and MSS snapshot feeds)")
	fs.IntVar(&tlsTrades, "tls-trades", 16, "an instrument's latest `N` trades in its TLS snapshot")
	fs.StringVar(&replayListen, "replay-listen", "", "historical replay service `address` (default: the config's H address, mapped; \"off\": none)")
	fs.StringVar(&user, "replay-user", "", "username the replay service wants (default: any)")
	fs.StringVar(&pass, "replay-password", "", "password the replay service wants")
	fs.DurationVar(&linger, "linger", time.Second, "after the last event: heartbeats, snapshot cycles and the replay service for `D`")
	fs.IntVar(&newDayAfter, "new-day-after", 0, "start a new trading day every `N` events: every feed's MsgSeqNum, the RptSeqs and the books start again (0: never)")
	fs.DurationVar(&replayDelay, "replay-delay", 0, "the replay service answers each request `D` late (a slow service; at most 4s)")
	fs.StringVar(&dumpBooks, "dump-books", "", "write the ground-truth books to `file` (JSON lines by symbol)")
	fs.StringVar(&dumpTrades, "dump-trades", "", "write the trade list to `file` (ingest --dump-trades lines)")
	fs.StringVar(&statsOut, "stats-out", "", "write the counters to `file` at the end")
	fs.StringVar(&logLevel, "log-level", "info", "log `level`")
	if _, err := parse(fs, args, parseOpts{}); err != nil {
		return err
	}
	if cfgFile == "" {
		return usagef("--moex-config is required")
	}
	if steps <= 0 || rate <= 0 || cycleEvery <= 0 || defsEvery <= 0 || fragment <= 0 || instruments <= 0 || tlsTrades <= 0 || lossA < 0 || lossBoth < 0 {
		return usagef("--steps, --rate, --snapshot-every, --definitions-every, --fragment-entries, --tls-trades and --instruments must be positive, losses not negative")
	}
	if newDayAfter < 0 || replayDelay < 0 || replayDelay > 4*time.Second {
		return usagef("--new-day-after must not be negative, --replay-delay must be 0..4s")
	}
	log, err := (&Common{LogLevel: logLevel}).Logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := moex.LoadConfig(cfgFile)
	if err != nil {
		return err
	}
	orig, ok := cfg.Market(market)
	if !ok {
		return usagef("--market %q: not in %s", market, cfgFile)
	}
	m := orig
	if mapAddrs != "" {
		to, err := moex.ParseAddressMap(mapAddrs)
		if err != nil {
			return usagef("--map: %v", err)
		}
		m = orig.MapAddresses(to)
	}
	if err := moexsim.CheckAddresses(orig, m, netns.Inside()); err != nil {
		return err
	}
	loss := moexsim.Loss{EveryA: lossA, EveryBoth: lossBoth}
	for _, c := range strings.Split(lossConns, ",") {
		if c = strings.TrimSpace(c); c != "" {
			loss.Conns = append(loss.Conns, c)
		}
	}
	for _, c := range strings.Split(burstConns, ",") {
		if c = strings.TrimSpace(c); c != "" {
			loss.BurstConns = append(loss.BurstConns, c)
		}
	}
	if burst != "" {
		every, rest, ok1 := strings.Cut(burst, ":")
		length, first, _ := strings.Cut(rest, "@")
		var err1, err2, err3 error
		loss.BurstEvery, err1 = strconv.Atoi(every)
		loss.BurstLen, err2 = strconv.Atoi(length)
		if first != "" {
			loss.BurstFirst, err3 = strconv.Atoi(first)
		}
		if !ok1 || err1 != nil || err2 != nil || err3 != nil || loss.BurstEvery <= 0 || loss.BurstLen <= 0 || loss.BurstLen >= loss.BurstEvery {
			return usagef("--loss-burst %q: want EVERY:LEN[@FIRST], 0 < LEN < EVERY", burst)
		}
	}
	out, err := moexsim.NewMulticastOutput(m)
	if err != nil {
		return err
	}
	defer out.Close()
	x, err := moexsim.New(moexsim.Config{Market: m, Instruments: instruments, Seed: seed, FragmentEntries: fragment, TLSTrades: tlsTrades,
		Retention: retention, Loss: loss, BLag: blag, Username: user, Password: pass, ReplayDelay: replayDelay}, out)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	if replayListen != "off" {
		addr := replayListen
		if addr == "" {
			h, ok := m.Connection("H")
			if !ok || !h.Addr.IsValid() {
				return usagef("the market has no H (historical replay) address: give --replay-listen ADDR or off")
			}
			addr = h.Addr.String()
		} else if ap, err := netip.ParseAddrPort(addr); err != nil || (!ap.Addr().IsLoopback() && !netns.Inside()) {
			return usagef("--replay-listen %q: want a loopback IPv4 address and port (any address only inside a private network namespace)", addr)
		}
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			return fmt.Errorf("moex-sim: replay service: %w", err)
		}
		log.Info("moex-sim replay service", "addr", ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveErr = x.ServeReplay(sctx, ln)
		}()
	}
	log.Info("moex-sim sending", "market", m.ID, "instruments", instruments, "steps", steps, "rate", rate)
	start := time.Now()
	runErr := x.Run(sctx, moexsim.RunConfig{Steps: steps, Rate: rate, CycleEvery: cycleEvery, DefinitionsEvery: defsEvery, Linger: linger,
		NewDayAfter: newDayAfter})
	cancel()
	wg.Wait()
	st := x.Stats()
	log.Info("moex-sim done", "steps", st.Steps, "trades", st.Trades, "replay_requests", st.Replays, "new_days", st.NewDays, "elapsed", time.Since(start).Round(time.Millisecond))
	errs := []error{runErr, serveErr}
	if dumpBooks != "" {
		errs = append(errs, writeFile(dumpBooks, x.WriteBooks))
	}
	if dumpTrades != "" {
		errs = append(errs, os.WriteFile(dumpTrades, x.Trades(), 0o644))
	}
	if statsOut != "" {
		errs = append(errs, writeFile(statsOut, func(w io.Writer) error { return json.NewEncoder(w).Encode(st) }))
	}
	return errors.Join(errs...)
}
