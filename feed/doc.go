// Package feed is the feed handler: it joins the multicast groups of the topics it is asked
// for, decodes each channel's FAST datagrams, puts them in sequence with package gap (line
// A/B arbitration, buffering, FIX retransmission, snapshot fallback), applies them to
// order books and hands the results to in-process subscribers.
//
// One goroutine, Handler.Run, owns every socket, tracker and book: it reads datagrams in
// recvmmsg batches from an epoll set, and between batches it drains recovery results and
// runs the trackers' timers. Nothing on that path locks or allocates once warm. A book is
// marked stale as soon as it cannot be trusted (a hole is open past its wait, recovery
// failed, an RptSeq gap, a decode error) and only becomes fresh again from a snapshot.
//
// Recovery over FIX is behind the Recovery interface: the handler asks for a range of a
// channel's datagrams or for snapshots, and the results come back through the sink it
// gives the Recovery. package feed/fixrecovery implements it with a quickfix initiator.
//
// A handler made with Config.Detached opens no sockets: its caller hands it datagrams with
// Receive (destination group and port, payload, receive time) and runs its timers with
// Poll, on one goroutine. Package replay drives it so from pcap captures, exactly as the
// network would have, with the capture's timestamps as the handler's clock.
package feed
