package cpupin

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	allowed, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cpu  int
		want string // "" for no error
	}{
		{-1, ""},
		{allowed[0], ""},
		{-2, "CPU -2 is not one this process may run on"},
		{100000, "CPU 100000 is not one"},
		{runtime.NumCPU() + 64, "is not one this process may run on (allowed: "},
	} {
		err := Check(tc.cpu)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Check(%d) = %v, want %q", tc.cpu, err, tc.want)
		}
	}
}

func TestLockPinsAndRestores(t *testing.T) {
	before, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	cpu := before[len(before)-1]
	release, err := Lock(cpu)
	if err != nil {
		t.Fatal(err)
	}
	during, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	release()
	if !slices.Equal(during, []int{cpu}) {
		t.Errorf("pinned to %d, thread may run on %v", cpu, during)
	}
	// release ran on the same thread; LockOSThread again to read that thread's set.
	runtime.LockOSThread()
	after, err := Current()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, before) {
		t.Errorf("after release the thread may run on %v, before on %v", after, before)
	}
	if _, err := Lock(-5); err == nil {
		t.Error("Lock(-5) succeeded")
	}
}
