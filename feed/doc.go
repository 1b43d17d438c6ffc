// Package feed is the feed handler: it follows the channels of the topics it is asked for,
// decodes each channel's FAST datagrams, puts them in sequence with package gap (line A/B
// arbitration, holding what arrives ahead of a hole, FIX retransmission, snapshot
// fallback), applies them to order books and hands the results to in-process subscribers.
//
// An Engine is all of that without a socket. Its interface is three calls: Receive (one
// datagram, the group and port it was sent to, its receive time), DoWork (advance the
// timers to a time and run a bounded share of the command queue) and the command queue
// itself, which other goroutines feed through Do, Subscribe and the recovery Sink. Receive
// and DoWork are called from one goroutine, the engine's duty cycle; nothing on that path
// locks or allocates once warm. Package replay drives an Engine from pcap captures with the
// capture's timestamps as its clock; benchmarks and tests drive it directly.
//
// A Handler is an Engine and its receiver: Run reads datagrams in recvmmsg batches from
// an epoll set (Linux; elsewhere New returns mcast.ErrNeedsLinux) and calls DoWork after
// each batch. Every datagram is decoded once: what arrives behind a hole is held decoded,
// in reused md.Message slots of the channel's gap.Sequencer, and applied from there when
// the hole fills. A book is marked stale as soon as it cannot be trusted (a hole open past
// its wait, a failed recovery, an RptSeq gap, a refused entry) and becomes fresh again only
// from a snapshot.
//
// Recovery over FIX is behind the Recovery interface: the engine asks for a range of a
// channel's datagrams or for snapshots, and the results come back through the Sink it
// gives the Recovery, as model values (md.Message, md.Snapshot) queued as commands.
// package feed/fixrecovery implements it with a quickfix initiator.
package feed
