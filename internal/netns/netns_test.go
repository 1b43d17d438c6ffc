//go:build linux

package netns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"fastfeed/internal/netns"

	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode of the test binary, run as a child process.
const helperEnv = "NETNS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	netns.RunTests(m)
}

// helper is the child side of the tests below. It prints one line, "inside
// <netns> <inside> <lo flags>", from the process that does the job.
func helper(mode string) int {
	switch mode {
	case "print":
		report()
		return 0
	case "reexec", "reexec-kill":
		handled, code, err := netns.Reexec(context.Background(), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		if handled {
			return code
		}
		report()
		if mode == "reexec-kill" {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(10 * time.Second)
		}
		return 7
	case "setup":
		err := netns.SetupLoopback()
		fmt.Println("setup:", errors.Is(err, netns.ErrNotInside))
		return 0
	case "require":
		var tb fakeTB
		netns.Require(&tb)
		fmt.Println("require-failed:", tb.failed)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func report() {
	id, _ := os.Readlink("/proc/self/ns/net")
	flags, err := loFlags()
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Printf("inside %s %v %#x\n", id, netns.Inside(), flags)
}

type fakeTB struct{ failed bool }

func (*fakeTB) Helper()                 {}
func (t *fakeTB) Fatalf(string, ...any) { t.failed = true }

func loFlags() (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, err
	}
	return ifr.Uint16(), nil
}

func ownNetNS(t *testing.T) string {
	t.Helper()
	id, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// child runs the test binary in a helper mode, inside the test's namespace,
// with the marker removed when stripMarker is set (so the child believes it
// is outside), and returns its stdout, stderr and exit status.
func child(t *testing.T, mode string, stripMarker bool) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, err := netns.Command(ctx, os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), helperEnv+"="+mode)
	if stripMarker {
		kept := env[:0]
		for _, kv := range env {
			if !strings.HasPrefix(kv, netns.EnvMarker+"=") {
				kept = append(kept, kv)
			}
		}
		env = kept
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run helper %s: %v", mode, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func TestInside(t *testing.T) {
	if !netns.Inside() {
		t.Fatal("Inside() = false in a test run by RunTests")
	}
	from := os.Getenv(netns.EnvMarker)
	if from == "" || from == ownNetNS(t) {
		t.Fatalf("marker %q, own namespace %q: want a marker naming another namespace", from, ownNetNS(t))
	}
	netns.Require(t)
}

func TestLoopbackUpWithMulticast(t *testing.T) {
	flags, err := loFlags()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		bit  uint16
	}{{"IFF_UP", unix.IFF_UP}, {"IFF_MULTICAST", unix.IFF_MULTICAST}, {"IFF_LOOPBACK", unix.IFF_LOOPBACK}} {
		if flags&f.bit == 0 {
			t.Errorf("lo flags %#x lack %s", flags, f.name)
		}
	}
	if err := netns.SetupLoopback(); err != nil {
		t.Errorf("SetupLoopback again: %v (want idempotent)", err)
	}
}

// TestOnlyLoopback proves isolation: the namespace has no interface but lo.
func TestOnlyLoopback(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ifi := range ifs {
		names = append(names, ifi.Name)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("interfaces %v, want only [lo]", names)
	}
}

// TestLoopbackMulticast sends a multicast datagram on lo and receives it.
func TestLoopbackMulticast(t *testing.T) {
	group := [4]byte{239, 9, 8, 7}
	rfd := socket(t)
	if err := unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(rfd, &unix.SockaddrInet4{Addr: group}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(rfd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	mreq := &unix.IPMreqn{Multiaddr: group, Address: [4]byte{127, 0, 0, 1}}
	if err := unix.SetsockoptIPMreqn(rfd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
		t.Fatalf("IP_ADD_MEMBERSHIP on lo: %v", err)
	}
	if err := unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		t.Fatal(err)
	}

	sfd := socket(t)
	if err := unix.SetsockoptInet4Addr(sfd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, [4]byte{127, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendto(sfd, []byte("hello"), 0, &unix.SockaddrInet4{Addr: group, Port: port}); err != nil {
		t.Fatalf("send to 239.9.8.7 on lo: %v", err)
	}
	buf := make([]byte, 64)
	n, from, err := unix.Recvfrom(rfd, buf, 0)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if got := string(buf[:n]); got != "hello" {
		t.Errorf("received %q, want hello", got)
	}
	if src := from.(*unix.SockaddrInet4).Addr; src != [4]byte{127, 0, 0, 1} {
		t.Errorf("source %v, want 127.0.0.1", src)
	}
}

func socket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestCommandInheritsNamespace: a child started with Command shares the
// test's namespace and knows it is inside.
func TestCommandInheritsNamespace(t *testing.T) {
	out, errs, code := child(t, "print", false)
	want := fmt.Sprintf("inside %s true ", ownNetNS(t))
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("child: status %d, stdout %q, stderr %q; want stdout starting %q", code, out, errs, want)
	}
}

// TestReexecFromOutside runs the whole outside path: a child without the
// marker calls Reexec, which runs the job in a new namespace (nested in the
// test's) and returns the job's exit status.
func TestReexecFromOutside(t *testing.T) {
	out, errs, code := child(t, "reexec", true)
	if code != 7 {
		t.Fatalf("status %d, want 7 (the job's); stdout %q, stderr %q", code, out, errs)
	}
	var id string
	var inside bool
	var flags uint16
	if _, err := fmt.Sscanf(out, "inside %s %t %v", &id, &inside, &flags); err != nil {
		t.Fatalf("job output %q: %v", out, err)
	}
	if id == ownNetNS(t) || !strings.HasPrefix(id, "net:[") {
		t.Errorf("job ran in namespace %q, want a new one (test's is %q)", id, ownNetNS(t))
	}
	if !inside {
		t.Error("job: Inside() = false")
	}
	if flags&(unix.IFF_UP|unix.IFF_MULTICAST) != unix.IFF_UP|unix.IFF_MULTICAST {
		t.Errorf("job: lo flags %#x, want IFF_UP|IFF_MULTICAST", flags)
	}
}

func TestReexecSignalStatus(t *testing.T) {
	out, errs, code := child(t, "reexec-kill", true)
	if code != 128+int(syscall.SIGKILL) {
		t.Fatalf("status %d, want %d for a job killed by SIGKILL; stdout %q, stderr %q", code, 128+int(syscall.SIGKILL), out, errs)
	}
}

// TestReexecFailsLoudly forbids new user namespaces and checks that Reexec
// reports it and that the job does not run.
func TestReexecFailsLoudly(t *testing.T) {
	const knob = "/proc/sys/user/max_user_namespaces"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knob, []byte("0"), 0o644); err != nil {
		t.Fatalf("forbid user namespaces in the test's namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(knob, old, 0o644); err != nil {
			t.Errorf("restore %s: %v", knob, err)
		}
	})
	out, errs, code := child(t, "reexec", true)
	if code != 3 {
		t.Errorf("status %d, want 3 (Reexec returned an error)", code)
	}
	if out != "" {
		t.Errorf("the job ran (stdout %q); it must not run without a namespace", out)
	}
	if !strings.Contains(errs, "cannot create a private user and network namespace") ||
		!strings.Contains(errs, "user.max_user_namespaces") {
		t.Errorf("stderr %q does not explain the failure", errs)
	}
}

func TestOutsideRefuses(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"setup", "setup: true\n"},
		{"require", "require-failed: true\n"},
	} {
		out, errs, code := child(t, tc.mode, true)
		if code != 0 || out != tc.want {
			t.Errorf("%s without marker: status %d, stdout %q, stderr %q; want %q", tc.mode, code, out, errs, tc.want)
		}
	}
}

func TestCommandRefusesOutside(t *testing.T) {
	t.Setenv(netns.EnvMarker, "")
	if _, err := netns.Command(context.Background(), "true"); !errors.Is(err, netns.ErrNotInside) {
		t.Fatalf("Command outside: err %v, want ErrNotInside", err)
	}
}
