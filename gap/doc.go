// Package gap tracks the sequence numbers of one multicast channel: it arbitrates between
// lines A and B (the first copy of each number wins), drops duplicates, buffers datagrams
// that arrive ahead of a hole, decides when a hole has waited long enough to be recovered
// over FIX and when recovery has failed so that the channel must be rebuilt from
// snapshots, and hands datagrams to the caller strictly in sequence.
//
// A Tracker is a state machine driven by its caller's duty cycle: Offer for every datagram,
// Pop to drain what became deliverable, Poll for timers. It does no I/O, starts no
// goroutines, takes no locks and, once its buffer has grown to its working size, does not
// allocate. Sequence numbers are uint32 compared in serial-number arithmetic (RFC 1982), so
// they may wrap.
package gap
