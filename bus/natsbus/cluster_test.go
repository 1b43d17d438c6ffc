package natsbus

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fastfeed/bus"
	"fastfeed/feed"
	"fastfeed/internal/netns"
)

// clusterNode is one official nats-server process of a three-node cluster.
type clusterNode struct {
	name, conf, client string
	cmd                *exec.Cmd
}

func (n *clusterNode) start(t *testing.T, bin string) {
	t.Helper()
	cmd, err := netns.Command(context.Background(), bin, "-c", n.conf)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.client, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not listening on %s", n.name, n.client)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *clusterNode) kill() {
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// startCluster starts three nats-server processes (bin/nats-server, built by
// scripts/deps.sh) clustered with JetStream, on loopback in the test's namespace.
func startCluster(t *testing.T) []*clusterNode {
	t.Helper()
	bin, err := filepath.Abs("../../bin/nats-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the cluster test runs the official server: %v (scripts/deps.sh builds it)", err)
	}
	dir := t.TempDir()
	var client, route []string
	for range 3 {
		client = append(client, freePort(t))
		route = append(route, freePort(t))
	}
	nodes := make([]*clusterNode, 3)
	for i := range nodes {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, "nats-route://"+route[j])
			}
		}
		n := &clusterNode{name: fmt.Sprintf("n%d", i+1), client: client[i], conf: filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))}
		conf := fmt.Sprintf("server_name: %s\nlisten: %s\njetstream { store_dir: %q }\ncluster {\n name: fastfeed\n listen: %s\n routes: [%s]\n}\n",
			n.name, n.client, filepath.Join(dir, n.name), route[i], strings.Join(routes, ", "))
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	for _, n := range nodes {
		n.start(t, bin)
		t.Cleanup(n.kill)
	}
	return nodes
}

// TestCluster: a three-node cluster of the official nats-server; the handler publishes
// on it with the last-value cache replicated three times; a gateway serves 10 FIX
// clients; 20 consumers subscribe directly, one of them late (the full-size run, 20 FIX
// clients and 50 subscribers on three namespaced hosts, is the scenario of package
// scenario); the node the publisher is
// connected to is killed mid-run and restarted. Every client's books, rebuilt only from
// what it received, equal the publisher's ground truth, and the counters show the
// reconnections and the fresh snapshots.
func TestCluster(t *testing.T) {
	nodes := startCluster(t)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "nats://" + n.client
	}
	all := strings.Join(urls, ",")
	rotated := strings.Join(append(urls[1:], urls[0]), ",")
	sc := DefaultStreamConfig(3, false)
	c := startChainOn(t, chainConfig{instruments: 8, rate: 500, count: 2500, conn: ConnConfig{URL: all, Ordered: true}}, &sc)
	t0 := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }
	// The replicated stream needs the cluster's JetStream leader: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for EnsureStream(c.ctx, c.nc, sc) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no replicated stream after 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	step("replicated stream ready")
	gwSrc := c.consumer(t, ConsumerConfig{}, ConnConfig{URL: rotated})
	gw, err := bus.NewFromSource(gwSrc, bus.Config{Listen: "127.0.0.1:0", ChannelOf: gwSrc.ChannelOf, SlowLimit: time.Minute, // no eviction on a starved machine
		Users: []bus.User{{Username: "oms", Password: "oms-pw", Entitlements: []feed.Pattern{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(c.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	fix := make([]*bus.Client, 10)
	errs := make(chan error, len(fix))
	for i := range fix {
		cl, err := bus.NewClient(bus.ClientConfig{Connect: gw.Addr(), SenderCompID: fmt.Sprintf("OMS%02d", i), Username: "oms", Password: "oms-pw"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		fix[i] = cl
		go func() { errs <- cl.Start(c.ctx) }() // logons in parallel
	}
	var direct []*Consumer
	for i := range 19 {
		u := urls[i%3] + "," + all
		direct = append(direct, c.consumer(t, ConsumerConfig{}, ConnConfig{URL: u, Ordered: true}))
	}
	step("19 NATS consumers started")
	for range fix {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	step("10 FIX clients logged on")
	// Subscriptions once the gateway knows the instruments (from the cache).
	for gwSrc.Stats().Instruments < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("gateway: %+v", gwSrc.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, cl := range fix {
		if err := cl.Subscribe(fmt.Sprintf("r%d", i), "*"); err != nil {
			t.Fatal(err)
		}
	}
	step("clients started")
	c.publish()
	time.Sleep(1500 * time.Millisecond)
	step("killing n1")
	nodes[0].kill() // the publisher's server
	late := c.consumer(t, ConsumerConfig{}, ConnConfig{URL: rotated})
	time.Sleep(1500 * time.Millisecond)
	nodes[0].start(t, filepath.Join("..", "..", "bin", "nats-server"))
	step("n1 restarted")
	c.waitData(t)
	step("data done")
	truth := c.truth(t, nil)
	var wg sync.WaitGroup
	for i, cons := range append(direct, late, gwSrc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			waitBooks(t, fmt.Sprintf("consumer %d", i), cons, truth)
		}()
	}
	wg.Wait()
	step("21 NATS consumers equal the ground truth")
	for i, cl := range fix {
		waitClientBooks(t, fmt.Sprintf("FIX client %d via the gateway", i), cl, truth, 45*time.Second)
	}
	step("10 FIX clients equal the ground truth")
	ps := c.pub.Stats()
	t.Logf("publisher %+v", ps)
	if ps.Reconnects == 0 || ps.Resnapshots < 8 {
		t.Errorf("publisher: no reconnection and fresh snapshots after its node died: %+v", ps)
	}
	var reconnected, resynced int
	for _, cons := range append(direct, late, gwSrc) {
		st := cons.Stats()
		if st.Reconnects > 0 {
			reconnected++
		}
		if st.Resyncs > 8 {
			resynced++
		}
	}
	t.Logf("consumers: %d of 21 reconnected, %d resynchronised from fresh snapshots; late joiner %+v", reconnected, resynced, late.Stats())
	if reconnected == 0 || resynced == 0 || late.Stats().LVCReads == 0 {
		t.Errorf("consumers: %d reconnected, %d resynchronised, late joiner %+v", reconnected, resynced, late.Stats())
	}
}
