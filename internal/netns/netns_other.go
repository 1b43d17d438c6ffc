//go:build !linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

const EnvMarker = "FASTFEED_NETNS"

var ErrNotInside = errors.New("netns: not inside a private network namespace")

var errUnsupported = errors.New("netns: private network namespaces need Linux")

type Runner interface{ Run() int }

type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

func Inside() bool { return false }

func RunTests(m Runner) { os.Exit(Main(m)) }

func Main(m Runner) int {
	fmt.Fprintln(os.Stderr, "FAIL:", errUnsupported)
	return 1
}

func Reexec(ctx context.Context, args []string) (bool, int, error) {
	return false, 0, errUnsupported
}

func ReexecFiles(ctx context.Context, args []string, files []*os.File) (bool, int, error) {
	return false, 0, errUnsupported
}

func SetupLoopback() error { return errUnsupported }

func RaiseMemberships(int) error { return errUnsupported }

func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	return nil, fmt.Errorf("netns: command %s: %w", name, errUnsupported)
}

func Require(t TB) {
	t.Helper()
	t.Fatalf("%v", errUnsupported)
}
