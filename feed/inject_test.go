package feed

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"fastfeed/gap"
)

// injectRun passes datagrams 1..n (each carrying its number) of line through the
// injector, one every microsecond, then flushes; it returns the numbers in the order
// they came out and the counters.
func injectRun(t *testing.T, cfg Inject, n int, line gap.Source) ([]uint32, Stats) {
	t.Helper()
	in := newInjector(cfg)
	var out []uint32
	var st Stats
	emit := func(_ int, b []byte) { out = append(out, binary.LittleEndian.Uint32(b)) }
	b := make([]byte, 4)
	now := int64(0)
	for i := 1; i <= n; i++ {
		binary.LittleEndian.PutUint32(b, uint32(i))
		now += int64(time.Microsecond)
		in.apply(1, line, b, now, &st, emit)
	}
	in.flush(now+int64(time.Hour), emit)
	return out, st
}

func TestInjector(t *testing.T) {
	seq := func(from, to int) []uint32 {
		var s []uint32
		for i := from; i <= to; i++ {
			s = append(s, uint32(i))
		}
		return s
	}
	tests := []struct {
		name  string
		cfg   Inject
		line  gap.Source
		check func(t *testing.T, out []uint32, st Stats)
	}{
		{"burst drops exactly its datagrams", Inject{Burst: 30, BurstAt: 50}, gap.LineA, func(t *testing.T, out []uint32, st Stats) {
			if want := append(seq(1, 50), seq(81, 200)...); !slices.Equal(out, want) {
				t.Errorf("got %v", out)
			}
			if st.InjectedLoss != 30 {
				t.Errorf("InjectedLoss %d, want 30", st.InjectedLoss)
			}
		}},
		{"faults on line A leave line B alone", Inject{Loss: 0.5, Burst: 10, Line: 'A'}, gap.LineB, func(t *testing.T, out []uint32, st Stats) {
			if !slices.Equal(out, seq(1, 200)) || st.InjectedLoss != 0 {
				t.Errorf("got %v, %+v", out, st)
			}
		}},
		{"faults on line B hit line B", Inject{Burst: 10, Line: 'B'}, gap.LineB, func(t *testing.T, out []uint32, st Stats) {
			if !slices.Equal(out, seq(11, 200)) || st.InjectedLoss != 10 {
				t.Errorf("got %v, %+v", out, st)
			}
		}},
		{"random loss", Inject{Loss: 0.1, Seed: 7}, gap.LineA, func(t *testing.T, out []uint32, st Stats) {
			if len(out)+int(st.InjectedLoss) != 200 || st.InjectedLoss == 0 || !slices.IsSorted(out) {
				t.Errorf("%d out, %d lost", len(out), st.InjectedLoss)
			}
		}},
		{"reordering within the window, nothing lost", Inject{Reorder: 0.2, Window: 5, Seed: 3}, gap.LineA, func(t *testing.T, out []uint32, st Stats) {
			sorted := slices.Clone(out)
			slices.Sort(sorted)
			if !slices.Equal(sorted, seq(1, 200)) || st.InjectedReord == 0 || slices.IsSorted(out) {
				t.Fatalf("got %v, %+v", out, st)
			}
			for i, v := range out {
				// a datagram comes out at most Window places after it went in (only
				// held datagrams move later; others move earlier)
				if int(v)+5 < i+1-5 {
					t.Errorf("datagram %d came out at %d", v, i+1)
				}
			}
		}},
		{"delay holds for the duration", Inject{Delay: 0.05, DelayBy: 20 * time.Microsecond, Seed: 5}, gap.LineA, func(t *testing.T, out []uint32, st Stats) {
			sorted := slices.Clone(out)
			slices.Sort(sorted)
			if !slices.Equal(sorted, seq(1, 200)) || st.InjectedDelay == 0 {
				t.Fatalf("got %v, %+v", out, st)
			}
			for i, v := range out {
				// one datagram per microsecond: a delayed one comes out about 20 places late
				if late := i + 1 - int(v); late > 21+int(st.InjectedDelay) {
					t.Errorf("datagram %d came out %d places late", v, late)
				}
			}
			moved := 0
			for i, v := range out {
				if int(v) != i+1 {
					moved++
				}
			}
			if moved == 0 {
				t.Error("no datagram delayed")
			}
		}},
		{"duplication", Inject{Dup: 0.1, Seed: 9}, gap.LineA, func(t *testing.T, out []uint32, st Stats) {
			if len(out) != 200+int(st.InjectedDup) || st.InjectedDup == 0 {
				t.Errorf("%d out, %d dups", len(out), st.InjectedDup)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			out, st := injectRun(t, tt.cfg, 200, tt.line)
			tt.check(t, out, st)
			again, _ := injectRun(t, tt.cfg, 200, tt.line)
			if !slices.Equal(out, again) {
				t.Error("same seed, different faults")
			}
		})
	}
}

func TestInjectValidate(t *testing.T) {
	for _, bad := range []Inject{
		{Loss: 1.5}, {Dup: -0.1}, {Window: heldSlots + 1}, {Delay: 0.1}, {DelayBy: -time.Second},
		{Burst: -1}, {Line: 'C'},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func BenchmarkInjectorPass(b *testing.B) {
	in := newInjector(Inject{Loss: 0.01, Reorder: 0.01, Window: 4, Dup: 0.01, Seed: 1})
	var st Stats
	d := make([]byte, 120)
	emit := func(int, []byte) {}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.apply(1, gap.LineA, d, int64(i), &st, emit)
	}
}
