// Package publisher is fastfeed's market-data publisher: a deterministic
// market simulator whose book updates are encoded with FAST, sequenced per
// channel and multicast, with heartbeats, instrument definitions, an
// optional B line, and the retention and snapshot hooks the FIX recovery
// service (recovery.go) serves from.
//
// # Channels and datagrams
//
// An instrument's channel is the group its Symbol maps to (mcast.Mapping,
// crc32 of the symbol) on the configured port; instruments whose symbols
// collide share a channel. A channel is named G<group>:<port> (its ApplID).
// Each datagram is a 4-byte little-endian sequence number (the preamble)
// followed by exactly one FAST message encoded with fresh dictionaries, so
// that every datagram decodes alone (md.Codec). Sequence numbers start at 1
// on every channel and count the application messages, incremental refresh
// (X), security definition (d) and security status (f); the definitions
// channel (239.0.0.0 on the same port by default) has numbers of its own.
//
// Control messages consume no number:
//
//   - SequenceReset (4), sent once on every channel at startup before any
//     data, with NewSeqNo 1, preamble 0 and MsgSeqNum 0. A preamble of 0
//     marks a control message: handlers must decode it, not drop it as a
//     duplicate of an earlier number.
//   - Heartbeat (0), sent on a channel idle for the heartbeat interval (1s
//     by default) and on every channel when the data stops; its preamble,
//     MsgSeqNum and LastMsgSeqNumProcessed all carry the last sequence
//     number sent on the channel, so a handler sees a lost tail.
//
// An incremental whose entries do not fit the payload limit (1400 bytes of
// FAST message by default) is split into several X messages, each with its
// own sequence number; all but the last carry Continued (LastFragment 0).
//
// Startup order: a SequenceReset on every channel, one SecurityDefinition
// per instrument on the definitions channel (TotNumReports = number of
// instruments, tick, price and size exponents, MDBookType PriceDepth,
// MarketDepth, ApplID = the instrument's channel), a SecurityStatus per
// instrument (trading status 17) unless disabled, then each instrument's
// opening book as New entries. The definitions are sent again every
// definitions interval (5s by default) for late joiners.
//
// With a B line, every datagram, control messages included, is sent a
// second time, the same bytes, to the channel's B group and port.
//
// # Simulation and rate
//
// The Simulator is a seeded (math/rand/v2 PCG) random walk of MBP books:
// new level, change, delete and trade (MDEntryType 2, followed by the change
// or deletion of the traded level). RptSeq counts an instrument's entries,
// trades included. Its book.MBP books are the ground truth: they hold exactly
// the entries published, and --dump-books writes them with book.WriteDump
// when the data stops.
//
// Config.Rate is the target of incremental refresh datagrams per second on
// line A, all channels together (0: as fast as possible). The loop works in
// send ticks: each tick runs events until the datagrams due are opened (an
// event on a channel already opened in the tick joins its datagram, so
// events close together are batched) or the tick's event budget is spent,
// encodes one X per touched channel (split if too large), sequences it and
// hands the tick's datagrams to sendmmsg. With few channels and a high rate
// the datagrams carry more entries rather than come more often. The opening
// books are sent before the paced data and count toward Config.Count.
//
// # External sources
//
// With Config.Source the simulator is replaced by an outside feed (source.go; ingest
// --republish, docs/moex-ingest.md): the loop polls the Source between its duties, and
// the source publishes through AddInstrument (a topic added while running: its channel
// opened with a SequenceReset if new, its definition sent at once and cycled), SetLevel
// (the New, Change or Delete that brings a level of the ground-truth book to the value
// stated), ReplaceBook, Trade and SetStale (SecurityStatus 20 "stale" / 17 "ready").
// RptSeq counts each instrument's entries as with the simulator. Everything else
// (encoding, sequencing, splitting, retention, snapshots, snapshot channels, the
// recovery service) is the same code.
//
// # Retention and hooks
//
// One goroutine, the loop Run drives, owns all state; no lock is taken on
// the data path and it does not allocate (simulate, encode, sequence,
// sendmmsg). Retransmit and Snapshot hand requests to the loop through a
// channel; it serves them between send ticks within a per-iteration budget
// (a few hundred datagrams copied, 16 snapshots), so a large request does
// not stall the multicast.
//
// Retention is shared by all channels: the last Config.Retention sequenced
// datagrams (100000 by default) whose bytes still fit in a circular arena of
// Config.RetentionBytes (64 MiB by default), whichever is less. Retransmit
// returns the exact bytes sent. A snapshot is taken between ticks, when
// every simulated entry has been sequenced, so its LastMsgSeqNumProcessed is
// exact: applying the channel's later incrementals to it gives the live
// book.
//
// Sockets: an mcast.Sender with IP_MULTICAST_IF Config.Interface, or
// 127.0.0.1 (loopback) when it is not set: the publisher never sends on a
// real interface unless asked to. The package's tests and benchmarks run in
// a private network namespace (internal/netns).
package publisher
