package natsbus

import (
	"sort"

	"fastfeed/book"
	"fastfeed/md"
)

// This file is what an operator's view (package opshttp, through fastfeed gateway) reads
// of a consumer: call these through Do, on the consumer's goroutine.

// ConsumerChannel is one channel's instruments as the consumer follows them.
type ConsumerChannel struct {
	Channel      string
	Instruments  int
	Synchronised int // whole: a W applied and no hole since
	Stale        int // not whole, or said stale by the publisher
}

// ConsumerTrade is an instrument's last trade.
type ConsumerTrade struct {
	Price, Size md.Decimal
	Count       uint64
}

// ChannelsNow counts the instruments of each channel, sorted by channel. Call it through
// Do.
func (c *Consumer) ChannelsNow() []ConsumerChannel {
	by := map[string]*ConsumerChannel{}
	for _, in := range c.order {
		ch := by[in.channel]
		if ch == nil {
			ch = &ConsumerChannel{Channel: in.channel}
			by[in.channel] = ch
		}
		ch.Instruments++
		if in.synced {
			ch.Synchronised++
		}
		if !in.whole() {
			ch.Stale++
		}
	}
	out := make([]ConsumerChannel, 0, len(by))
	for _, ch := range by {
		out = append(out, *ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// StaleSymbols returns the instruments that are not whole or said stale, sorted. Call it
// through Do.
func (c *Consumer) StaleSymbols() []string {
	var out []string
	for _, in := range c.order {
		if !in.whole() {
			out = append(out, in.symbol)
		}
	}
	sort.Strings(out)
	return out
}

// Symbols returns the instruments known, sorted. Call it through Do.
func (c *Consumer) Symbols() []string {
	out := make([]string, 0, len(c.order))
	for _, in := range c.order {
		out = append(out, in.symbol)
	}
	sort.Strings(out)
	return out
}

// DumpSymbols is Dump restricted to symbols (unknown ones left out) and cut to depth
// levels a side (0: all; book.DumpDepth). Call it through Do.
func (c *Consumer) DumpSymbols(symbols []string, depth int) book.Dump {
	syms := append([]string(nil), symbols...)
	sort.Strings(syms)
	var d book.Dump
	var empty *book.MBP
	for i, s := range syms {
		if i > 0 && syms[i-1] == s {
			continue
		}
		in := c.insts[s]
		if in == nil {
			continue
		}
		var v book.View = in.book
		if in.book == nil {
			if empty == nil {
				empty, _ = book.NewMBP(book.Config{})
			}
			v = empty
		}
		line := book.DumpDepth(in.symbol, v, depth)
		line.RptSeq = int64(in.rptSeq)
		line.Stale = !in.whole()
		d = append(d, line)
	}
	return d
}

// LastTrade returns symbol's last trade, and false if none came. Call it through Do.
func (c *Consumer) LastTrade(symbol string) (ConsumerTrade, bool) {
	in := c.insts[symbol]
	if in == nil || in.trades == 0 {
		return ConsumerTrade{}, false
	}
	return ConsumerTrade{Price: in.lastPx, Size: in.lastSize, Count: in.trades}, true
}

// Inbound returns the messages waiting between NATS and the consumer's goroutine, and
// the queue's capacity. Safe from any goroutine.
func (c *Consumer) Inbound() (n, capacity int) { return len(c.msgs), cap(c.msgs) }
