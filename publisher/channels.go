package publisher

// The channels of a Publisher (line A, line B, the definitions channel) and the definitions it cycles.

import (
	"errors"
	"fmt"
	"net/netip"

	"fastfeed/mcast"
	"fastfeed/md"
)

func (p *Publisher) buildChannels() error {
	cfg := &p.cfg
	bMap, bPort, bDefs, err := bLine(cfg)
	if err != nil {
		return err
	}
	p.hasB = cfg.B.Enabled()
	byAddr := make(map[netip.AddrPort]int)
	for i, in := range cfg.Instruments {
		a := netip.AddrPortFrom(cfg.Mapping.Group(in.Symbol), cfg.Port)
		ch, ok := byAddr[a]
		if !ok {
			ch = len(p.chans)
			byAddr[a] = ch
			c := channel{name: mcast.AppendChannelName(nil, a), a: a, oldest: 1}
			if p.hasB {
				c.b = netip.AddrPortFrom(bMap.Group(in.Symbol), bPort)
			}
			p.chans = append(p.chans, c)
		}
		p.chans[ch].instruments = append(p.chans[ch].instruments, int32(i))
		p.insChan[i] = int32(ch)
		p.bySymbol[in.Symbol] = i
	}
	defs := netip.AddrPortFrom(cfg.DefinitionsGroup, cfg.Port)
	if err := checkGroup(defs.Addr()); err != nil {
		return fmt.Errorf("publisher: config: definitions group: %w", err)
	}
	if ch, ok := byAddr[defs]; ok {
		return fmt.Errorf("publisher: config: the definitions channel %v is also the channel of %s: choose another definitions group or group base",
			defs, cfg.Instruments[p.chans[ch].instruments[0]].Symbol)
	}
	p.defs = len(p.chans)
	p.chans = append(p.chans, channel{name: mcast.AppendChannelName(nil, defs), a: defs, b: netip.AddrPortFrom(bDefs, bPort), oldest: 1})
	if p.hasB {
		byB := make(map[netip.AddrPort]int, len(p.chans))
		for i := range p.chans {
			if _, clash := byAddr[p.chans[i].b]; clash || p.chans[i].b == defs {
				return fmt.Errorf("publisher: config: B line channel %v of %s is also an A line channel: choose another B port or group base",
					p.chans[i].b, p.chans[i].name)
			}
			if j, dup := byB[p.chans[i].b]; dup {
				return fmt.Errorf("publisher: config: B line channel %v carries both %s and %s", p.chans[i].b, p.chans[j].name, p.chans[i].name)
			}
			byB[p.chans[i].b] = i
		}
	}
	for i := range p.chans {
		c := &p.chans[i]
		p.byName[string(c.name)] = i
		info := ChannelInfo{Name: string(c.name), Group: c.a, Definitions: i == p.defs}
		if p.hasB {
			info.B = c.b
		}
		for _, in := range c.instruments {
			info.Instruments = append(info.Instruments, cfg.Instruments[in].Symbol)
		}
		p.infos = append(p.infos, info)
	}
	return nil
}

// bLine resolves the B line's mapping, port and definitions group.
func bLine(cfg *Config) (mcast.Mapping, uint16, netip.Addr, error) {
	b := cfg.B
	if !b.Enabled() {
		return mcast.Mapping{}, 0, netip.Addr{}, nil
	}
	port := b.Port
	if port == 0 {
		port = cfg.Port
	}
	m := cfg.Mapping
	if b.GroupBase.IsValid() {
		var err error
		if cfg.Mapping.Single() {
			m, err = mcast.SingleGroupMapping(b.GroupBase)
		} else {
			m, err = mcast.NewMapping(b.GroupBase, cfg.Mapping.Size())
		}
		if err != nil {
			return m, 0, netip.Addr{}, fmt.Errorf("publisher: config: B line: %w", err)
		}
	}
	if port == cfg.Port && m == cfg.Mapping {
		return m, 0, netip.Addr{}, errors.New("publisher: config: the B line is the A line: give it another port or group base")
	}
	defs := b.DefinitionsGroup
	switch {
	case defs.IsValid():
	case port != cfg.Port:
		defs = cfg.DefinitionsGroup
	default:
		defs = m.Base().Prev()
	}
	if err := checkGroup(defs); err != nil {
		return m, 0, netip.Addr{}, fmt.Errorf("publisher: config: B line definitions group (set it explicitly): %w", err)
	}
	return m, port, defs, nil
}

func checkGroup(a netip.Addr) error {
	switch {
	case !a.Is4() || !a.IsMulticast():
		return fmt.Errorf("%v is not an IPv4 multicast address", a)
	case a.IsLinkLocalMulticast():
		return fmt.Errorf("%v is in 224.0.0.0/24, reserved for local network control", a)
	}
	return nil
}

// prepareDefinitions builds each instrument's SecurityDefinition and checks
// that it fits in a datagram.
func (p *Publisher) prepareDefinitions() error {
	p.insDefs = make([]md.Definition, 0, len(p.cfg.Instruments))
	for i := range p.cfg.Instruments {
		if err := p.addDefinition(i); err != nil {
			return err
		}
	}
	// Warm the codec up to the largest incremental it may be asked for.
	sym := make([]byte, MaxSymbolLen)
	e := make([]md.Entry, p.maxEntries)
	for i := range e {
		e[i] = md.Entry{Type: md.Offer, Symbol: sym, RptSeq: uint32(i), Price: md.Dec(int64(i), -2), Size: md.Dec(1, 0), Orders: 1}
	}
	p.inc.Entries = e
	_, err := p.codec.AppendIncremental(p.scratch[:4], &p.inc)
	p.inc.Entries = nil
	return err
}

// addDefinition builds the SecurityDefinition of instrument i, the next one, and checks
// that it fits in a datagram.
func (p *Publisher) addDefinition(i int) error {
	in := &p.cfg.Instruments[i]
	d := md.Definition{
		Symbol:       []byte(in.Symbol),
		SecurityID:   uint64(i + 1),
		SecurityType: []byte(in.SecurityType),
		Currency:     []byte(in.Currency),
		Description:  []byte(in.Description),
		Tick:         md.Dec(in.Tick, in.PriceExp),
		PriceExp:     in.PriceExp,
		SizeExp:      in.SizeExp,
		BookType:     md.PriceDepth,
		MarketDepth:  uint32(p.cfg.MaxDepth),
		Channel:      p.chans[p.insChan[i]].name,
	}
	if p.src != nil {
		d.MarketDepth = 0 // a source's books are as deep as the exchange's: full depth
	}
	c := d
	c.Header = md.Header{SeqNum: 1 << 31, SendingTime: 1 << 62}
	c.TotNumReports = 1 << 31
	b, err := p.codec.AppendDefinition(p.scratch[:4], &c)
	if err != nil {
		return fmt.Errorf("publisher: security definition of %s: %w", in.Symbol, err)
	}
	if len(b)-4 > p.cfg.PayloadLimit {
		return fmt.Errorf("publisher: config: the security definition of %s is %d bytes, over the payload limit of %d (shorten its description)",
			in.Symbol, len(b)-4, p.cfg.PayloadLimit)
	}
	p.insDefs = append(p.insDefs, d)
	return nil
}
