package publisher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// WriteDump writes the ground-truth books (book.WriteDump). Call it after
// DataDone is closed; it fails before.
func (p *Publisher) WriteDump(w io.Writer) error {
	select {
	case <-p.dataDone:
		return p.books.WriteDump(w)
	default:
		return errors.New("publisher: write dump: the data has not stopped yet")
	}
}

// startup sends a SequenceReset on every channel, every security
// definition, the security statuses and the opening books: the definitions
// channel first, then, DefinitionsLead later, the instrument channels (a
// receiver joining a channel when its definition names it then has it from its
// first datagram).
func (p *Publisher) startup(ctx context.Context) {
	p.reset(p.defs)
	p.defCursor = 0
	p.definitions(len(p.insDefs))
	if p.cfg.DefinitionsLead > 0 && len(p.insDefs) > 0 {
		p.send()
		t := time.NewTimer(p.cfg.DefinitionsLead)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	for ch := range p.chans {
		if ch != p.defs {
			p.reset(ch)
		}
	}
	if !p.cfg.NoStatus {
		for i := range p.cfg.Instruments {
			p.status(i)
		}
	}
	if p.sim == nil {
		return // a source sends its books as it learns them
	}
	for i := range p.cfg.Instruments {
		if len(p.tick)+2*p.cfg.MaxDepth > cap(p.tick) {
			p.flushTick()
		}
		n := len(p.tick)
		p.tick = p.sim.Open(p.tick, i)
		p.account(n)
	}
	p.flushTick()
}

func (p *Publisher) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// stopData ends the data phase: it sends what is queued and a heartbeat on
// every channel (so that handlers see the last sequence numbers at once),
// writes the dump and closes DataDone.
func (p *Publisher) stopData(elapsed time.Duration) error {
	p.flushTick()
	for ch := range p.chans {
		p.heartbeat(ch)
	}
	p.send()
	p.st.DataTime = elapsed
	p.shared.publish(&p.st)
	if p.err != nil {
		return p.err
	}
	s := p.Stats()
	secs := max(elapsed.Seconds(), 1e-9)
	p.log.Info("data stopped",
		"datagrams", s.Datagrams, "incrementals", s.Incrementals, "splits", s.Splits, "definitions", s.Definitions,
		"statuses", s.Statuses, "heartbeats", s.Heartbeats, "entries", s.Entries, "events", s.Events, "bytes", s.Bytes,
		"seconds", fmt.Sprintf("%.3f", elapsed.Seconds()), "max_lag", s.MaxLag,
		"incrementals_per_s", fmt.Sprintf("%.0f", float64(s.Incrementals)/secs),
		"entries_per_s", fmt.Sprintf("%.0f", float64(s.Entries)/secs),
		"mbit_per_s", fmt.Sprintf("%.2f", float64(s.Bytes)*8/secs/1e6))
	if p.dump != nil {
		if err := p.writeDumpFile(); err != nil {
			return err
		}
		p.log.Info("books dumped", "file", p.cfg.DumpBooks, "books", p.books.Len())
	}
	close(p.dataDone)
	return nil
}

// writeDumpFile writes the books to the dump file created by run.
func (p *Publisher) writeDumpFile() error {
	f := p.dump
	p.dump = nil
	w := bufio.NewWriter(f)
	err := p.books.WriteDump(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("publisher: dump books to %s: %w", p.cfg.DumpBooks, err)
	}
	return nil
}

func (p *Publisher) logStart() {
	cfg := &p.cfg
	iface := cfg.Interface
	if !iface.IsValid() {
		iface = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	rate := "max"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%g/s", cfg.Rate)
	}
	args := []any{"instruments", len(cfg.Instruments), "channels", len(p.chans) - 1, "mapping", cfg.Mapping.String(),
		"port", cfg.Port, "definitions", string(p.chans[p.defs].name), "iface", iface.String(), "rate", rate,
		"payload_limit", cfg.PayloadLimit, "heartbeat", cfg.Heartbeat.String()}
	if p.hasB && len(p.chans) > 1 {
		args = append(args, "b_definitions", p.chans[p.defs].b.String(), "b_first", p.chans[0].b.String())
	}
	p.log.Info("publishing", args...)
	for _, c := range p.infos {
		p.log.Debug("channel", "name", c.Name, "b", c.B, "instruments", c.Instruments)
	}
}
