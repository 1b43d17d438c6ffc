//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EnvMarker is the environment variable that marks a process as running in a
// private network namespace made by this package. Its value is the identity
// of the network namespace the namespace was made from, as
// /proc/self/ns/net shows it (for example "net:[4026531840]").
const EnvMarker = "FASTFEED_NETNS"

// ErrNotInside is returned by operations that are only safe inside a private
// network namespace when the process is not in one.
var ErrNotInside = errors.New("netns: not inside a private network namespace")

// Runner is what RunTests needs of a *testing.M.
type Runner interface{ Run() int }

// TB is the part of testing.TB that Require uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Inside reports whether the process runs inside a private network namespace
// made by this package (by itself or by an ancestor process).
func Inside() bool {
	from := os.Getenv(EnvMarker)
	if from == "" {
		return false
	}
	cur, err := currentNetNS()
	if err != nil || cur == from {
		return false
	}
	return !inInitialUserNS()
}

// RunTests is a TestMain for a package whose tests open sockets: outside a
// private namespace it re-executes the test binary, with the same arguments,
// in a new one, passes its output through and exits with its status; inside,
// it brings lo up and runs the tests. It never returns. Failure to create the
// namespace is fatal (exit status 1, with the reason on stderr).
func RunTests(m Runner) {
	os.Exit(Main(m))
}

// Main is RunTests without the exit: it returns the exit status for the
// caller to pass to os.Exit (after any cleanup of its own).
func Main(m Runner) int {
	handled, code, err := Reexec(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	if handled {
		return code
	}
	return m.Run()
}

// Reexec makes sure the job of the running program happens inside a private
// network namespace.
//
// Outside one, it runs the program's own executable again with args (argv[0]
// kept) in a new user and network namespace, with stdin, stdout and stderr
// passed through, waits for it and returns handled=true and its exit status
// (128+n if killed by signal n): the caller should exit with that status and
// do nothing else. While the child runs, SIGINT and SIGQUIT are ignored by the
// parent (the terminal delivers them to the child too) and SIGTERM and SIGHUP
// are forwarded; cancelling ctx sends the child SIGTERM and, ten seconds
// later, SIGKILL. The child is killed if the parent dies.
//
// Inside one, it brings lo up (see SetupLoopback) and returns handled=false:
// the caller goes on with its job.
//
// A non-nil error means the job did not run; the caller must not run it in
// the host namespace.
func Reexec(ctx context.Context, args []string) (handled bool, code int, err error) {
	return ReexecFiles(ctx, args, nil)
}

// ReexecFiles is Reexec handing the child files as its descriptors 3, 4, ... (exec.Cmd's
// ExtraFiles). A socket keeps the namespace it was made in: a listener opened on the
// host and handed over stays reachable from the host while the child's multicast stays
// inside.
func ReexecFiles(ctx context.Context, args []string, files []*os.File) (handled bool, code int, err error) {
	if Inside() {
		return false, 0, SetupLoopback()
	}
	from, err := currentNetNS()
	if err != nil {
		return false, 0, err
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = append([]string{os.Args[0]}, args...)
	cmd.Env = append(withoutMarker(os.Environ()), EnvMarker+"="+from)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = isolatedAttr()
	cmd.ExtraFiles = files
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second

	ignored := make(chan os.Signal, 4)
	signal.Notify(ignored, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(ignored)
	forward := make(chan os.Signal, 4)
	signal.Notify(forward, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(forward)

	if err := cmd.Start(); err != nil {
		return false, 0, namespaceError(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case <-ignored:
		case s := <-forward:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			return true, exitStatus(cmd, err), nil
		}
	}
}

// SetupLoopback brings the loopback interface of the current network
// namespace up with IFF_MULTICAST set, using ioctls (no ip binary). It is
// idempotent. It refuses, with ErrNotInside, to touch the host's loopback.
func SetupLoopback() error {
	if !Inside() {
		return fmt.Errorf("netns: bring lo up: %w", ErrNotInside)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: bring lo up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("netns: bring lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("netns: bring lo up: SIOCGIFFLAGS: %w", err)
	}
	flags := ifr.Uint16()
	want := flags | unix.IFF_UP | unix.IFF_MULTICAST
	if want == flags {
		return nil
	}
	ifr.SetUint16(want)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("netns: bring lo up: SIOCSIFFLAGS %#x: %w", want, err)
	}
	return nil
}

// RaiseMemberships sets net.ipv4.igmp_max_memberships, the groups one socket may join,
// to at least n in the current network namespace (the knob is per namespace), for shared
// sockets (mcast.PollerConfig.Shared) joined to every group of a benchmark. It refuses,
// with ErrNotInside, to touch the host's.
func RaiseMemberships(n int) error {
	const knob = "/proc/sys/net/ipv4/igmp_max_memberships"
	if !Inside() {
		return fmt.Errorf("netns: raise %s: %w", knob, ErrNotInside)
	}
	b, err := os.ReadFile(knob)
	if err != nil {
		return fmt.Errorf("netns: raise igmp_max_memberships: %w", err)
	}
	if cur, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && cur >= n {
		return nil
	}
	if err := os.WriteFile(knob, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return fmt.Errorf("netns: raise igmp_max_memberships to %d: %w", n, err)
	}
	return nil
}

// Command returns an exec.Cmd that runs name with args in the caller's
// private network namespace, for tests that start child processes (for
// example a fastfeed binary built by the test). The child inherits the
// namespace and the marker, so its own netns.Reexec runs its job in place.
// Cancelling ctx sends the child SIGTERM, then SIGKILL five seconds later;
// the child is killed if the test process dies. Stdio is left to the caller.
// Command returns ErrNotInside if the caller is not inside a private
// namespace.
func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	if !Inside() {
		return nil, fmt.Errorf("netns: command %s: %w (run the test under netns.RunTests)", name, ErrNotInside)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// Require fails the test at once unless it runs inside a private network
// namespace: a guard for tests that send traffic.
func Require(t TB) {
	t.Helper()
	if !Inside() {
		t.Fatalf("netns: this test sends network traffic and must run inside a private network namespace: add `func TestMain(m *testing.M) { netns.RunTests(m) }` to the package")
	}
}

func isolatedAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		// Writing a gid map as an unprivileged user requires setgroups to
		// be denied; as root it does no harm.
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
}

func namespaceError(err error) error {
	return fmt.Errorf("netns: cannot create a private user and network namespace "+
		"(clone with CLONE_NEWUSER|CLONE_NEWNET: %w). Network tests and benchmarks refuse to run in "+
		"the host namespace. Check that user namespaces are allowed: sysctl user.max_user_namespaces "+
		"must be > 0, kernel.unprivileged_userns_clone=1 (Debian, Ubuntu), "+
		"kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 23.10+), and a container's seccomp "+
		"profile must allow clone/unshare of namespaces (docker: --security-opt seccomp=unconfined)", err)
}

func exitStatus(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState != nil {
		if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			if st.Signaled() {
				return 128 + int(st.Signal())
			}
			return st.ExitStatus()
		}
	}
	if err != nil {
		return 1
	}
	return 0
}

func withoutMarker(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvMarker+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// currentNetNS returns the identity of the network namespace of the process.
func currentNetNS() (string, error) {
	id, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return "", fmt.Errorf("netns: identify network namespace: %w", err)
	}
	return id, nil
}

// inInitialUserNS reports whether the process is in the initial user
// namespace, whose uid map is the identity over the whole range.
func inInitialUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}
