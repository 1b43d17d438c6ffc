package feed

import (
	"fastfeed/md"
)

// Recovery asks a recovery service for what multicast lost. Requests must not block the
// handler: an implementation queues them and answers through the Sink it was given.
type Recovery interface {
	// Start gives the Recovery the sink for its results; it is called once, before any
	// request.
	Start(sink Sink)
	// Retransmit asks for datagrams beg..end of channel.
	Retransmit(channel string, beg, end uint32)
	// Snapshot asks for snapshots of the symbols of channel, all valid at one channel
	// sequence number.
	Snapshot(channel string, symbols []string)
}

// Sink receives a Recovery's results. Its methods may block (the handler drains them
// between batches) and are safe for concurrent use.
type Sink interface {
	// Retransmitted delivers one retransmitted message of channel: its sequence number
	// and its FAST encoding (as a datagram payload after the preamble).
	Retransmitted(channel string, seq uint32, fastMessage []byte)
	// Snapshots delivers the snapshots answering one request; every one is valid at the
	// same LastMsgSeqNumProcessed.
	Snapshots(channel string, snaps []md.Snapshot)
	// Failed reports that a request was refused or could not be served.
	Failed(channel string, snapshot bool, reason string)
}

// recoveryEvent is a Recovery result queued for the handler's goroutine.
type recoveryEvent struct {
	channel  string
	seq      uint32
	payload  []byte
	snaps    []md.Snapshot
	failed   bool
	snapshot bool
	reason   string
}

// sink queues results for the handler goroutine.
type sink struct {
	ch   chan recoveryEvent
	wake func() // tells the handler's loop to look
}

func (s sink) Retransmitted(channel string, seq uint32, m []byte) {
	s.ch <- recoveryEvent{channel: channel, seq: seq, payload: m}
	s.wake()
}

func (s sink) Snapshots(channel string, snaps []md.Snapshot) {
	s.ch <- recoveryEvent{channel: channel, snaps: snaps, snapshot: true}
	s.wake()
}

func (s sink) Failed(channel string, snapshot bool, reason string) {
	s.ch <- recoveryEvent{channel: channel, failed: true, snapshot: snapshot, reason: reason}
	s.wake()
}
