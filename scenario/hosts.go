package scenario

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"fastfeed/internal/netns"
)

// hostNet is a small network of hosts for the multi-host scenario, built inside the
// private network namespace the caller is in: each host is a network namespace of its
// own, held open by a sleeping process, with one interface (eth0) whose peer is a port of
// a bridge in the caller's namespace. Addresses are link-local (169.254.77.0/24): nothing
// of it is routed anywhere, and none of it exists outside the private namespace.
type hostNet struct {
	holders []*exec.Cmd
	ports   []string // the bridge-side end of each host's link
}

// hostNetPrefix is the hosts' subnet; host i has address hostNetPrefix + (i+1).
const hostNetPrefix = "169.254.77."

func (n *hostNet) addr(i int) string { return hostNetPrefix + strconv.Itoa(i+1) }

// newHostNet builds n hosts on a bridge. It refuses to run outside a private network
// namespace.
func newHostNet(ctx context.Context, hosts int) (*hostNet, error) {
	if !netns.Inside() {
		return nil, netns.ErrNotInside
	}
	net := &hostNet{}
	ok := false
	defer func() {
		if !ok {
			net.Close()
		}
	}()
	if err := ip(ctx, "link", "add", "ffbr0", "type", "bridge", "mcast_snooping", "0"); err != nil {
		return nil, err
	}
	if err := ip(ctx, "link", "set", "ffbr0", "up"); err != nil {
		return nil, err
	}
	for i := 0; i < hosts; i++ {
		holder, err := netns.Command(ctx, "unshare", "--net", "--", "sleep", "3600")
		if err != nil {
			return nil, err
		}
		if err := holder.Start(); err != nil {
			return nil, fmt.Errorf("host %d: unshare: %w", i, err)
		}
		net.holders = append(net.holders, holder)
		pid := strconv.Itoa(holder.Process.Pid)
		if err := waitNewNetNS(ctx, holder.Process.Pid); err != nil {
			return nil, fmt.Errorf("host %d: %w", i, err)
		}
		port := fmt.Sprintf("ffh%d", i)
		net.ports = append(net.ports, port)
		if err := ip(ctx, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", pid); err != nil {
			return nil, err
		}
		if err := ip(ctx, "link", "set", port, "master", "ffbr0", "up"); err != nil {
			return nil, err
		}
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", net.addr(i) + "/24", "dev", "eth0"},
			{"link", "set", "eth0", "up", "multicast", "on"},
		} {
			if err := ip(ctx, append([]string{"-n", pid}, args...)...); err != nil {
				return nil, fmt.Errorf("host %d: %w", i, err)
			}
		}
	}
	ok = true
	return net, nil
}

// waitNewNetNS waits until process pid is in a network namespace other than ours
// (unshare has run).
func waitNewNetNS(ctx context.Context, pid int) error {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	for {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && ns != self {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d never entered its own network namespace: %w", pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ip runs ip(8) with args. "-n PID" as the first arguments runs it in that process's
// network namespace (through nsenter).
func ip(ctx context.Context, args ...string) error {
	name, full := "ip", args
	if len(args) > 1 && args[0] == "-n" {
		name, full = "nsenter", append([]string{"-t", args[1], "-n", "--", "ip"}, args[2:]...)
	}
	cmd, err := netns.Command(ctx, name, full...)
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setLink brings host i's link up or down at the bridge, as pulling its cable would.
func (n *hostNet) setLink(ctx context.Context, i int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ip(ctx, "link", "set", n.ports[i], state)
}

// prefix returns the command prefix that runs a program on host i.
func (n *hostNet) prefix(i int) []string {
	return []string{"nsenter", "-t", strconv.Itoa(n.holders[i].Process.Pid), "-n", "--"}
}

// Close removes the hosts and the bridge.
func (n *hostNet) Close() {
	for _, h := range n.holders {
		_ = h.Process.Kill()
		_ = h.Wait()
	}
	n.holders = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range n.ports {
		_ = ip(ctx, "link", "del", p) // usually gone with its namespace already
	}
	_ = ip(ctx, "link", "del", "ffbr0")
}

// startOn runs the fastfeed binary on host i of net.
func (env *Env) startOn(ctx context.Context, net *hostNet, i int, name string, args ...string) (*proc, error) {
	full := append(net.prefix(i)[1:], append([]string{env.bin}, args...)...)
	return env.startCmd(ctx, name, net.prefix(i)[0], full...)
}

// scenarioMultiHost runs the publisher on one host and a handler on each of two others,
// joined by a bridge; the second handler's link is cut for a second and restored. Both
// must end with the publisher's books, the second by recovering over FIX across the
// bridge.
func scenarioMultiHost(ctx context.Context, env *Env, r *Result) error {
	net, err := newHostNet(ctx, 3)
	if err != nil {
		return err
	}
	defer net.Close()
	fix := net.addr(0) + ":9870"
	var hs []*proc
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("feed%d", i-1)
		h, err := env.startOn(ctx, net, i, name, env.feedArgs(env.runtime(4*time.Second)+5*time.Second,
			env.path(name+".jsonl"), env.path(name+".json"), "--iface", net.addr(i), "--fix-connect", fix)...)
		if err != nil {
			return err
		}
		defer h.kill()
		hs = append(hs, h)
	}
	for _, h := range hs {
		if err := h.waitFor(ctx, "feed handler started"); err != nil {
			return err
		}
	}
	p, err := env.startOn(ctx, net, 0, "pub", env.publisher(2000, 8000, "--iface", net.addr(0), "--fix-listen", fix, "--linger", "4s")...)
	if err != nil {
		return err
	}
	if err := p.waitFor(ctx, "msg=publishing"); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond * time.Duration(env.scale))
	const cut = time.Second
	if err := net.setLink(ctx, 2, false); err != nil {
		return err
	}
	time.Sleep(cut)
	if err := net.setLink(ctx, 2, true); err != nil {
		return err
	}
	if err := waitAll(ctx, append([]*proc{p}, hs...)...); err != nil {
		return err
	}
	sts, err := env.compareFeeds(r, "feed0", "feed1")
	if err != nil {
		return err
	}
	kept, cutOff := sts[0], sts[1]
	r.Injected += cutOff.Missing // what the cut cost it
	if kept.Gaps != 0 {
		r.failf("feed0 (link never cut) saw %d gaps", kept.Gaps)
	}
	if cutOff.Gaps == 0 || cutOff.RecoveredFIX+cutOff.SnapshotsDone == 0 {
		r.failf("feed1 (link cut for %v) saw no gap or recovered nothing: %+v", cut, cutOff)
	}
	r.Check = fmt.Sprintf("3 hosts on a bridge; link cut %v", cut)
	return nil
}
