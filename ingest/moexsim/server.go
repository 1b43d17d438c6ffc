package moexsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"fastfeed/fast/codecs/moexasts"
	"fastfeed/ingest/moex"
)

// ServeReplay runs the TCP historical replay service on ln until ctx ends: per
// connection a FIX Logon and one MarketDataRequest (V) for ApplID (1180) = OLR, TLR or
// MSR, ApplBegSeqNum (1182) .. ApplEndSeqNum (1183), answered in FAST (moex.AppendFrame):
// Logon, the messages, Logout; a refused request gets the Logon (if the logon was good)
// and a Logout whose Text says why. Each client has 5 s in all.
func (x *Exchange) ServeReplay(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("moexsim: replay service: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			x.serveOne(ctx, c)
		}()
	}
}

func (x *Exchange) count(f func(s *Stats)) {
	x.mu.Lock()
	f(&x.stats)
	x.mu.Unlock()
}

func (x *Exchange) serveOne(ctx context.Context, c net.Conn) {
	r := bufio.NewReaderSize(c, moex.MaxFIXMessage)
	w := bufio.NewWriter(c)
	enc := moexasts.NewEncoder()
	var out []byte
	seq := uint32(0)
	frame := func(m *moexasts.Message) {
		seq++
		switch m.ID {
		case moexasts.IDA:
			m.A.MsgSeqNum = seq
		case moexasts.IDX5:
			m.X5.MsgSeqNum = seq
		}
		m.A.SendingTime = moex.SendingTime(time.Now())
		m.X5.SendingTime = m.A.SendingTime
		enc.Reset()
		b, err := enc.Encode(out[:0], m)
		if err != nil {
			return
		}
		out = b
		_, _ = w.Write(moex.AppendFrame(nil, b))
	}
	logout := func(text string) {
		m := &moexasts.Message{ID: moexasts.IDX5}
		m.X5.TargetCompID, m.X5.Text, m.X5.HasText = []byte("FASTFEED"), []byte(text), text != ""
		frame(m)
		_ = w.Flush()
	}
	logon, err := moex.ReadFIX(r)
	if err != nil {
		x.count(func(s *Stats) { s.BadClient++ })
		logout("bad logon: " + err.Error())
		return
	}
	if t, _ := logon.Get("35"); t != "A" {
		x.count(func(s *Stats) { s.BadClient++ })
		logout("first message is not a Logon (A)")
		return
	}
	user, _ := logon.Get("553")
	pass, _ := logon.Get("554")
	if x.cfg.Username != "" && (user != x.cfg.Username || pass != x.cfg.Password) {
		x.count(func(s *Stats) { s.Refused++ })
		logout("unknown username or wrong password")
		return
	}
	target, _ := logon.Get("49")
	a := &moexasts.Message{ID: moexasts.IDA}
	a.A.TargetCompID, a.A.HeartBtInt, a.A.DefaultApplVerID = []byte(target), 30, []byte("9")
	frame(a)
	req, err := moex.ReadFIX(r)
	if err != nil {
		x.count(func(s *Stats) { s.BadClient++ })
		logout("bad request: " + err.Error())
		return
	}
	x.count(func(s *Stats) { s.Replays++ })
	if t, _ := req.Get("35"); t != "V" {
		x.count(func(s *Stats) { s.BadClient++ })
		logout("want a MarketDataRequest (V)")
		return
	}
	id, _ := req.Get("1180")
	bs, _ := req.Get("1182")
	es, _ := req.Get("1183")
	beg, err1 := strconv.ParseUint(bs, 10, 32)
	end, err2 := strconv.ParseUint(es, 10, 32)
	if err1 != nil || err2 != nil || beg == 0 || end < beg {
		x.count(func(s *Stats) { s.Refused++ })
		logout(fmt.Sprintf("ApplBegSeqNum %q, ApplEndSeqNum %q: want 1 <= begin <= end", bs, es))
		return
	}
	if end-beg >= moex.MaxReplayRange {
		x.count(func(s *Stats) { s.Refused++ })
		logout(fmt.Sprintf("%d messages asked for: at most %d a request", end-beg+1, moex.MaxReplayRange))
		return
	}
	if d := min(x.cfg.ReplayDelay, 4*time.Second); d > 0 {
		select { // a slow service
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
	msgs, why := x.retained(id, uint32(beg), uint32(end))
	if why != "" {
		x.count(func(s *Stats) { s.Refused++ })
		logout(why)
		return
	}
	for _, m := range msgs {
		_, _ = w.Write(moex.AppendFrame(out[:0], m))
	}
	x.count(func(s *Stats) { s.Replayed += uint64(len(msgs)) })
	logout("")
}

// retained returns the kept messages beg..end of connection id, or why not.
func (x *Exchange) retained(id string, beg, end uint32) ([][]byte, string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c, ok := x.conns[id]
	if !ok || c.cn.Kind != moex.Incremental {
		return nil, fmt.Sprintf("ApplID %q: not an incremental connection of market %s", id, x.cfg.Market.ID)
	}
	last := c.retBase + uint32(len(c.ret)) - 1
	if beg < c.retBase || end > last {
		return nil, fmt.Sprintf("%s %d..%d: kept are %d..%d", id, beg, end, c.retBase, last)
	}
	return append([][]byte(nil), c.ret[beg-c.retBase:end-c.retBase+1]...), ""
}
