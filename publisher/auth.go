package publisher

// With Config.Key every datagram is sealed (package mcast/dgauth): emit reserves room for
// the trailer after the datagram in the retention arena, and send seals each queued
// datagram once, after restamp has written its final SendingTime, with its channel's line
// A address (the B copy is the same bytes). A retained record keeps the length without
// the trailer, so retransmissions serve the FAST message alone.

// sealLen returns what emit records in sealN for a line A datagram of n bytes: n with a
// key, -1 without.
func (p *Publisher) sealLen(n int) int32 {
	if p.key == nil {
		return -1
	}
	return int32(n)
}

// seal writes the trailer of every queued datagram that has one to write.
func (p *Publisher) seal() {
	if p.key == nil {
		return
	}
	for i := range p.out[:p.nout] {
		n := p.sealN[i]
		if n < 0 {
			continue
		}
		m := &p.out[i]
		p.key.Seal(m.Buf[:n], m.Addr, m.Buf[:n])
	}
}
