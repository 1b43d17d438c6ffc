// Package moex is the Moscow Exchange ASTS (equities FOND, currency CURR) FIX/FAST adapter:
// it reads the exchange's channel configuration (config.xml), decodes its datagrams by the
// exchange's rules and keeps what they say per instrument.
//
// The rules kept (MOEX FAST ASTS specification):
//   - a datagram is a 4-byte little-endian MsgSeqNum, then exactly one FAST message of the
//     ASTS templates, the dictionaries reset at the start of every datagram;
//   - every connection (OLR, TLR, MSR, IDF, ISF, OLS, TLS, MSS) has lines A and B carrying the
//     same sequence: the first copy of a MsgSeqNum is used, the other counted as a duplicate;
//     a hole waits (a bounded number of datagrams and of capture time) for the other line
//     before it is counted as a gap of the connection;
//   - incremental entries carry a per-instrument RptSeq per connection; an instrument whose
//     RptSeq runs on without a break across a connection gap lost nothing and is kept; a hole
//     in an instrument's RptSeq is counted for that instrument and marks its book stale;
//   - order snapshots (OLS) arrive in fragments (RouteFirst on the first, LastFragment on the
//     last); a complete snapshot replaces a book that is unknown, older than the snapshot's
//     RptSeq, or stale at the same RptSeq; LastMsgSeqNumProcessed says which incremental
//     it includes;
//   - OLR entries are orders (MDEntryID) kept in market-by-order books, whose price levels
//     are the derived view; MDEntryType J is an empty book; TLR entries are trades; MSR
//     entries are statistics kept per instrument and entry type; IDF definitions and ISF
//     statuses are kept per instrument, h (trading session status) per market.
//
// [Engine] is socket-free: a capture reader or a receiver feeds it datagrams with their
// destination, and it counts every anomaly in [Stats] without panicking on any input.
package moex
