package spsc

import (
	"sync"
	"testing"
)

func TestRingOrderAndBound(t *testing.T) {
	tests := []struct{ size, cap int }{{0, 1}, {1, 1}, {3, 4}, {8, 8}, {9, 16}}
	for _, tt := range tests {
		r := New[int](tt.size)
		if r.Cap() != tt.cap {
			t.Fatalf("New(%d).Cap() = %d, want %d", tt.size, r.Cap(), tt.cap)
		}
		for i := range tt.cap {
			p := r.Reserve()
			if p == nil {
				t.Fatalf("size %d: full after %d", tt.size, i)
			}
			*p = i + 1
			r.Commit()
		}
		if r.Reserve() != nil {
			t.Fatalf("size %d: reserve past capacity", tt.size)
		}
		for i := range tt.cap {
			if got := *r.At(i); got != i+1 {
				t.Fatalf("At(%d) = %d", i, got)
			}
		}
		r.Pop(1)
		if r.Len() != tt.cap-1 || r.Reserve() == nil {
			t.Fatalf("size %d: after Pop(1): len %d", tt.size, r.Len())
		}
		if n := r.Discard(); n != tt.cap-1 || r.Len() != 0 {
			t.Fatalf("Discard = %d, len %d", n, r.Len())
		}
	}
}

func TestRingPopZeroes(t *testing.T) {
	r := New[*int](2)
	v := 7
	*r.Reserve() = &v
	r.Commit()
	r.Pop(1)
	if r.items[0] != nil {
		t.Fatal("popped slot still holds its pointer")
	}
}

func TestRingConcurrent(t *testing.T) {
	const n = 100000
	r := New[int](64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; {
			if p := r.Reserve(); p != nil {
				*p = i
				r.Commit()
				i++
			}
		}
	}()
	for want := 0; want < n; {
		if r.Len() == 0 {
			continue
		}
		if got := *r.At(0); got != want {
			t.Fatalf("got %d, want %d", got, want)
		}
		r.Pop(1)
		want++
	}
	wg.Wait()
}

func TestRingNoAllocs(t *testing.T) {
	r := New[[64]byte](16)
	if a := testing.AllocsPerRun(1000, func() {
		p := r.Reserve()
		p[0] = 1
		r.Commit()
		_ = r.At(0)
		r.Pop(1)
	}); a != 0 {
		t.Fatalf("%v allocs per reserve/commit/pop", a)
	}
}

func TestRingPositions(t *testing.T) {
	r := New[int](4)
	for range 3 {
		r.Reserve()
		r.Commit()
	}
	r.Pop(2)
	if r.Committed() != 3 || r.Popped() != 2 {
		t.Fatalf("Committed %d Popped %d, want 3 and 2", r.Committed(), r.Popped())
	}
	r.Discard()
	if r.Popped() != 3 {
		t.Fatalf("Popped after Discard = %d, want 3", r.Popped())
	}
}
