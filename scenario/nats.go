package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"fastfeed/book"
	"fastfeed/bus/natsbus"
	"fastfeed/feed"
)

// natsServerBinary finds the official nats-server (scripts/deps.sh builds it into bin/):
// $FASTFEED_NATS_SERVER, bin/nats-server beside the fastfeed binary or in the repository,
// or nats-server on the PATH.
func natsServerBinary(env *Env) (string, error) {
	cands := []string{os.Getenv("FASTFEED_NATS_SERVER"), filepath.Join(filepath.Dir(env.bin), "nats-server"),
		filepath.Join("..", "bin", "nats-server"), filepath.Join("bin", "nats-server")}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return filepath.Abs(c)
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	return "", errors.New("no nats-server binary: run scripts/deps.sh (it builds bin/nats-server v2.15.3)")
}

// scenarioNATSCluster: three namespaced hosts on a bridge, a three-node cluster of the
// official nats-server (one node per host); the publisher and a handler publishing on
// NATS on host 1, a gateway with 20 FIX clients on host 2, 50 direct NATS subscribers
// on host 3 (49 in one process, one started late). The node on host 1 is killed mid-run
// and restarted. Every client's books, rebuilt only from what it received, must equal
// the publisher's ground truth, and the counters show the reconnections and the fresh
// snapshots.
func scenarioNATSCluster(ctx context.Context, env *Env, r *Result) error {
	server, err := natsServerBinary(env)
	if err != nil {
		return err
	}
	net, err := newHostNet(ctx, 3)
	if err != nil {
		return err
	}
	defer net.Close()
	var urls []string
	for i := range 3 {
		urls = append(urls, "nats://"+net.addr(i)+":4222")
	}
	all := strings.Join(urls, ",")
	startNode := func(i int, name string) (*proc, error) {
		conf := env.path(fmt.Sprintf("n%d.conf", i))
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats-route://"+net.addr(j)+":6222")
			}
		}
		body := fmt.Sprintf("server_name: n%d\nlisten: %s:4222\njetstream { store_dir: %q }\ncluster {\n name: fastfeed\n listen: %s:6222\n routes: [%s]\n}\n",
			i, net.addr(i), env.path(fmt.Sprintf("js%d", i)), net.addr(i), strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return nil, err
		}
		p, err := env.startCmd(ctx, name, net.prefix(i)[0], append(net.prefix(i)[1:], server, "-c", conf)...)
		if err != nil {
			return nil, err
		}
		return p, p.waitFor(ctx, "Server is ready")
	}
	nodes := make([]*proc, 3)
	for i := range nodes {
		if nodes[i], err = startNode(i, fmt.Sprintf("n%d", i)); err != nil {
			return err
		}
		defer nodes[i].kill()
	}
	busConfig := env.path("bus.json")
	if err := os.WriteFile(busConfig, []byte(`{"slow_limit": "1m", "users": [{"username": "demo", "password": "demo", "entitlements": ["*"]}]}`), 0o600); err != nil {
		return err
	}
	run := env.runtime(5 * time.Second)
	h, err := env.startOn(ctx, net, 0, "feed0", env.feedArgs(run+9*time.Second, env.path("feed0.jsonl"), env.path("feed0.json"),
		"--iface", net.addr(0), "--nats", all, "--nats-replicas", "3", "--nats-snapshot-every", "1s")...)
	if err != nil {
		return err
	}
	defer h.kill()
	if err := h.waitFor(ctx, "feed handler started"); err != nil {
		return err
	}
	gw, err := env.startOn(ctx, net, 1, "gateway", "gateway", "--nats", all, "--serve-fix", net.addr(1)+":9871",
		"--bus-config", busConfig, "--duration", (run + 8*time.Second).String(), "--dump-books", env.path("gateway.jsonl"))
	if err != nil {
		return err
	}
	defer gw.kill()
	if err := gw.waitFor(ctx, "gateway started"); err != nil {
		return err
	}
	clients := []*proc{gw}
	for i := range 20 {
		name := fmt.Sprintf("fix%02d", i)
		c, err := env.startOn(ctx, net, 1, name, "oms", "--connect", net.addr(1)+":9871", "--username", "demo", "--password", "demo",
			"--comp-id", "OMS"+name, "--subscribe", "*", "--interval", "0", "--duration", (run + 6*time.Second).String(),
			"--dump-books", env.path(name+".jsonl"), "--stats-out", env.path(name+".json"))
		if err != nil {
			return err
		}
		defer c.kill()
		clients = append(clients, c)
	}
	direct, err := env.startOn(ctx, net, 2, "direct", "oms", "--nats", all, "--clients", "49", "--interval", "0",
		"--duration", (run + 6*time.Second).String(), "--dump-books", env.path("direct.jsonl"), "--stats-out", env.path("direct.json"))
	if err != nil {
		return err
	}
	defer direct.kill()
	clients = append(clients, direct)
	for _, c := range clients[1:21] {
		if err := c.waitFor(ctx, "oms request sent"); err != nil {
			return err
		}
	}
	if err := direct.waitFor(ctx, "oms subscribed over NATS"); err != nil {
		return err
	}
	p, err := env.startOn(ctx, net, 0, "pub", env.publisher(1000, 5000, "--iface", net.addr(0))...)
	if err != nil {
		return err
	}
	if err := p.waitFor(ctx, "msg=publishing"); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	// Kill the node the handler publishes to.
	k := 0
	for i := range urls {
		if strings.Contains(h.log.String(), `connected to NATS" server=`+urls[i]) {
			k = i
		}
	}
	nodes[k].kill()
	<-nodes[k].done
	late, err := env.startOn(ctx, net, 2, "late", "oms", "--nats", all, "--interval", "0", "--duration", (run + 3*time.Second).String(),
		"--dump-books", env.path("late.jsonl"), "--stats-out", env.path("late.json"))
	if err != nil {
		return err
	}
	defer late.kill()
	clients = append(clients, late)
	time.Sleep(1500 * time.Millisecond)
	if nodes[k], err = startNode(k, fmt.Sprintf("n%d-restarted", k)); err != nil {
		return err
	}
	if err := waitAll(ctx, append([]*proc{p, h}, clients...)...); err != nil {
		return err
	}
	if _, err := env.compareFeeds(r, "feed0"); err != nil {
		return err
	}
	want, err := readDumpFile(env.path("pub.jsonl"))
	if err != nil {
		return err
	}
	for _, name := range []string{"gateway", "direct", "late"} {
		compareClient(r, env, want, name)
	}
	for i := range 20 {
		compareClient(r, env, want, fmt.Sprintf("fix%02d", i))
	}
	var fs struct {
		feed.Stats
		natsbus.PublisherStats
	}
	if err := readJSONFile(env.path("feed0.json"), &fs); err != nil {
		return err
	}
	var ds, ls struct {
		natsbus.ConsumerStats
		Differing int `json:"clients_differing"`
	}
	if err := readJSONFile(env.path("direct.json"), &ds); err != nil {
		return err
	}
	if err := readJSONFile(env.path("late.json"), &ls); err != nil {
		return err
	}
	if ds.Differing != 0 {
		r.failf("%d of the 49 direct subscribers ended with different books", ds.Differing)
	}
	// The late subscriber starts right after the kill: the cache may have no stream
	// leader for seconds, and it then converges from the fresh Ws it asks for.
	if fs.PublisherStats.Messages == 0 || ls.LVCReads+ls.SnapRequests == 0 {
		r.failf("counters: feed %+v, late subscriber %+v", fs.PublisherStats, ls.ConsumerStats)
	}
	if fs.PublisherStats.Reconnects == 0 || fs.PublisherStats.Resnapshots < uint64(len(scenarioSymbols)) {
		r.failf("the handler's node was killed: no reconnection and fresh snapshots: %+v", fs.PublisherStats)
	}
	r.Check = fmt.Sprintf("3 nats-server nodes, the handler's killed 1.5s: feed reconnects %d, fresh Ws %d, cache unavailable %d checks; 50 direct reconnects %d, resyncs %d; late joiner %d cache reads, %d W requests; gateway + 20 FIX",
		fs.PublisherStats.Reconnects, fs.PublisherStats.Resnapshots, fs.PublisherStats.StreamErrors, ds.Reconnects+ls.Reconnects, ds.Resyncs+ls.Resyncs, ls.LVCReads, ls.SnapRequests)
	return nil
}

// compareClient checks a client's dump (NAME.jsonl) against the ground truth.
func compareClient(r *Result, env *Env, want book.Dump, name string) {
	got, err := readDumpFile(env.path(name + ".jsonl"))
	if err != nil {
		r.BooksEqual = false
		r.failf("%s: %v", name, err)
		return
	}
	if d := book.DiffDumps(got, want); d != "" {
		r.BooksEqual = false
		r.failf("%s: books differ from the ground truth:\n%s", name, d)
	}
}
