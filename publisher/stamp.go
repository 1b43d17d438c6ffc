package publisher

import "bytes"

// SendingTime (52) is stamped twice: when a message is encoded (the time of the loop
// iteration) and again in send, just before the queued datagrams are handed to the kernel,
// so that a handler's tick-to-handler latency starts at the sendmmsg and not at the
// encoding. The field is a mandatory uInt64 without operator, so a time in nanoseconds
// since the epoch (2^56 <= t < 2^63, years 1972 to 2262) is always 9 stop-bit bytes and is
// overwritten in place, in the queued datagram and in its retained copy alike.

// stampLen is the length of a stop-bit encoded time in nanoseconds.
const stampLen = 9

// maxStampSearch bounds where SendingTime may start: the preamble, the presence map, the
// template ID and MsgSeqNum come before it.
const maxStampSearch = 4 + 2 + 2 + 5

// stopBitTime encodes t as FAST stop-bit bytes; ok is false if it is not stampLen long.
func stopBitTime(t int64) (enc [stampLen]byte, ok bool) {
	if t < 1<<56 {
		return enc, false
	}
	for i := stampLen - 1; i >= 0; i-- {
		enc[i] = byte(t & 0x7f)
		t >>= 7
	}
	enc[stampLen-1] |= 0x80
	return enc, true
}

// stampOffset returns where the SendingTime encoded as wall starts in datagram d, or -1.
func stampOffset(d []byte, wall int64) int16 {
	enc, ok := stopBitTime(wall)
	if !ok {
		return -1
	}
	i := bytes.Index(d[:min(len(d), maxStampSearch+stampLen)], enc[:])
	if i < 4 {
		return -1
	}
	return int16(i)
}

// restamp writes t over the SendingTime of the queued datagrams that have one.
func (p *Publisher) restamp(t int64) {
	enc, ok := stopBitTime(t)
	if !ok {
		return
	}
	for i := range p.out[:p.nout] {
		if at := p.stampAt[i]; at >= 0 {
			copy(p.out[i].Buf[at:], enc[:])
		}
	}
}
