package feed

import (
	"context"
	"errors"
	"testing"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
	"fastfeed/md"
)

// TestCommandQueueBound: the queue holds QueueSize commands; beyond that a sender waits
// (Do until its context ends, a recovery answer until the engine drains), and one DoWork
// runs CommandsPerCycle of them, in order.
func TestCommandQueueBound(t *testing.T) {
	e, err := NewEngine(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	var ran []int
	for i := range QueueSize {
		if !e.queue.tryPost(command{op: cmdDo, fn: func() { ran = append(ran, i) }}) {
			t.Fatalf("queue full after %d commands, want room for %d", i, QueueSize)
		}
	}
	if e.queue.tryPost(command{op: cmdDo, fn: func() {}}) {
		t.Fatalf("queue took command %d", QueueSize+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Do(ctx, func() { t.Error("Do ran while the queue was full") }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do on a full queue: %v, want the context's deadline", err)
	}
	// A recovery answer waits for room.
	answered := make(chan struct{})
	go func() {
		sink{q: &e.queue}.Failed(mcast.ChannelName(channelOf("SBER")), true, "test")
		close(answered)
	}()
	select {
	case <-answered:
		t.Fatal("the sink queued an answer into a full queue")
	case <-time.After(20 * time.Millisecond):
	}
	if n := e.DoWork(0); n != CommandsPerCycle {
		t.Fatalf("DoWork ran %d commands, want %d", n, CommandsPerCycle)
	}
	<-answered
	for i, v := range ran {
		if v != i {
			t.Fatalf("command %d ran as number %d", v, i)
		}
	}
	if len(ran) != CommandsPerCycle {
		t.Fatalf("%d commands ran, want %d", len(ran), CommandsPerCycle)
	}
	for e.DoWork(0) > 0 {
	}
	if len(ran) != QueueSize || e.Stats().RecoveryFails != 1 {
		t.Fatalf("%d commands ran, %d recovery failures; want %d and 1", len(ran), e.Stats().RecoveryFails, QueueSize)
	}
	e.Close()
	var after bool
	if err := e.Do(context.Background(), func() { after = true }); err != nil || !after {
		t.Fatalf("Do after Close: ran %v, %v", after, err)
	}
}

// TestPollDrainsInCycles: commands queued from other goroutines are run by DoWork a
// bounded share per cycle, with datagrams received between the cycles, and nothing is
// lost or run twice.
func TestPollDrainsInCycles(t *testing.T) {
	s := newScript(t)
	e, err := NewEngine(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var ran int
	var events int
	e.Subscribe(func(*Event) { events++ }, "SBER")
	for range n {
		if !e.queue.tryPost(command{op: cmdDo, fn: func() { ran++ }}) {
			t.Fatal("queue full")
		}
	}
	ch := mcast.ChannelName(channelOf("SBER"))
	var cycles []int
	for i := 0; ; i++ {
		seq := s.update("SBER", md.New, md.Bid, int64(10000+i), 10)
		e.Receive(channelOf("SBER"), s.sent[ch][seq], int64(i))
		k := e.DoWork(int64(i))
		if k == 0 {
			break
		}
		cycles = append(cycles, k)
	}
	// n commands and the subscription.
	want := []int{CommandsPerCycle, CommandsPerCycle, CommandsPerCycle, n + 1 - 3*CommandsPerCycle}
	if len(cycles) != len(want) {
		t.Fatalf("cycles ran %v commands, want %v", cycles, want)
	}
	for i := range want {
		if cycles[i] != want[i] {
			t.Fatalf("cycles ran %v commands, want %v", cycles, want)
		}
	}
	if ran != n {
		t.Fatalf("%d of %d commands ran", ran, n)
	}
	// The subscription was the first command: every datagram but the first one, which
	// came before any cycle, reached it.
	if st := e.Stats(); st.Messages != uint64(len(cycles)+1) || events != len(cycles) {
		t.Fatalf("messages %d, events %d, cycles %d", st.Messages, events, len(cycles))
	}
	if d := book.DiffDumps(e.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books:\n%s", d)
	}
}

// TestHeldDecodedOnce: datagrams that arrive behind a hole are decoded as they arrive,
// held decoded and applied from there when the hole fills; a copy of a number already
// applied is not decoded at all; and holding allocates nothing once warm.
func TestHeldDecodedOnce(t *testing.T) {
	s := newScript(t)
	e, err := NewEngine(Config{Topics: []string{"SBER"}, Templates: templates(t), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ch := mcast.ChannelName(channelOf("SBER"))
	const n = 20
	for i := range n {
		s.update("SBER", md.New, md.Bid, int64(10000+i), int64(10+i))
	}
	hand := func(seq uint32) { e.Receive(channelOf("SBER"), s.sent[ch][seq], int64(seq)) }
	hand(1)
	for seq := uint32(3); seq <= n; seq++ {
		hand(seq) // 2 is late
	}
	if st := e.Stats(); st.Decoded != n-1 || st.Messages != 1 {
		t.Fatalf("held: decoded %d, applied %d; want %d and 1", st.Decoded, st.Messages, n-1)
	}
	hand(2)
	if st := e.Stats(); st.Decoded != n || st.Messages != n {
		t.Fatalf("released: decoded %d, applied %d; want %d each", st.Decoded, st.Messages, n)
	}
	hand(5) // a copy (line B, a replay)
	if st := e.Stats(); st.Decoded != n || st.Duplicates != 1 {
		t.Fatalf("copy: decoded %d, duplicates %d; want %d and 1", st.Decoded, st.Duplicates, n)
	}
	if d := book.DiffDumps(e.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books:\n%s", d)
	}

	// Steady state: a block of 16 with its first datagram late, over and over.
	const block, warm, runs = 16, 8, 32
	for range (warm + runs + 1) * block { // AllocsPerRun runs f once more to warm up
		s.update("SBER", md.Change, md.Bid, 10000, int64(1+len(s.sent[ch])))
	}
	next := uint32(n + 1)
	step := func() {
		for seq := next + 1; seq < next+block; seq++ {
			hand(seq)
		}
		hand(next)
		next += block
	}
	for range warm {
		step()
	}
	before := e.Stats()
	if a := testing.AllocsPerRun(runs, step); a != 0 {
		t.Errorf("%.2f allocations per block of %d held behind a hole", a, block)
	}
	st := e.Stats()
	if got := st.Decoded - before.Decoded; got != st.Messages-before.Messages || st.BookErrors != 0 {
		t.Errorf("steady state: decoded %d, applied %d, book errors %d", got, st.Messages-before.Messages, st.BookErrors)
	}
	if d := book.DiffDumps(e.Dump(), s.truthDump("SBER")); d != "" {
		t.Fatalf("books:\n%s", d)
	}
}
