//go:build linux

package fdtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Child reports whether the calling test, a top-level one, is to run its body here: in
// the child process that the parent starts for it, with the soft limit of open files
// lowered to limit. In the parent it runs the test binary again for this test alone,
// waits for it and reports false, having failed t if the child failed.
func Child(t *testing.T, limit uint64) bool {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			t.Fatal(err)
		}
		r.Cur = min(limit, r.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			t.Fatalf("lowering RLIMIT_NOFILE to %d: %v", limit, err)
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("child process with RLIMIT_NOFILE %d:\n%s", limit, out)
	if err != nil {
		t.Fatalf("child process: %v", err)
	}
	return false
}

// Open returns the number of files the process has open.
func Open(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es) - 1 // the directory being read
}

// Exhaust opens /dev/null until the process is out of file descriptors, then closes
// spare of them; it returns a function that closes the rest.
func Exhaust(t testing.TB, spare int) (release func()) {
	t.Helper()
	var fs []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("exhausting file descriptors: %v", err)
			}
			break
		}
		fs = append(fs, f)
		if len(fs) > 1<<20 {
			t.Fatal("exhausting file descriptors: over a million open, is the limit lowered?")
		}
	}
	for range min(spare, len(fs)) {
		fs[len(fs)-1].Close()
		fs = fs[:len(fs)-1]
	}
	return func() {
		for _, f := range fs {
			f.Close()
		}
		fs = nil
	}
}

// List returns what the process's open files are, one per line, for a failure report;
// a socket with its line of /proc/net/{tcp,udp}.
func List() string {
	sockets := map[string]string{}
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, _ := os.ReadFile("/proc/self/net/" + f)
		for _, line := range strings.Split(string(b), "\n") {
			if fs := strings.Fields(line); len(fs) > 9 {
				sockets[fs[9]] = f + " " + strings.Join(fs[1:4], " ")
			}
		}
	}
	es, _ := os.ReadDir("/proc/self/fd")
	var b []byte
	for _, e := range es {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			l += " " + sockets[strings.TrimSuffix(ino, "]")]
		}
		b = append(b, e.Name()+" "+l+"\n"...)
	}
	return string(b)
}
