// Package book holds the order books that the publisher's simulator (ground
// truth) and the feed handler build from market-data entries: MBP, a book of
// price levels, and MBO, a book of orders with price levels aggregated from
// them.
//
// # Numbers
//
// Prices and sizes are int64 mantissas at exponents fixed per book when it is
// created from the instrument's security definition: with a price exponent of
// -2, the price 10125 means 101.25. Nothing on the update path uses floats or
// decimal.Decimal, and nothing on it allocates once a book has reached its
// working depth. FormatDecimal and ParseDecimal convert exactly between
// mantissas and decimal strings; DecimalLevels gives shopspring decimals for
// API edges.
//
// # Updates
//
// The semantics are those of FIX/FAST incremental refresh (DESIGN.md, "Book
// semantics"). An MBP entry is keyed by side and price: ActionNew adds a level
// with its size and NumberOfOrders, ActionChange replaces them, ActionDelete
// removes the level. An MBO entry is keyed by its order ID (MDEntryID) in the
// same way, and the book keeps the price levels of its orders, with
// NumberOfOrders the count of orders at the price. Entry types other than
// EntryBid and EntryOffer (trades, statistics) never change a book: Apply
// accepts and ignores them.
//
// Anomalies never corrupt a book. A New for a level or order that exists is
// applied as a replacement (no duplicate is created) and counted. A Change or
// Delete of a missing level or order, an invalid action, side, size or order
// ID, and an update that would exceed the book's capacity (Config.MaxLevels
// per side, Config.MaxOrders) leave the book unchanged, are counted, and
// return one of the package's sentinel errors; the sentinels carry no context
// so that the error path allocates nothing either, and callers wrap them with
// the instrument and sequence number they know.
//
// # Caller state
//
// Each book carries a stale flag and the RptSeq of the last entry applied;
// the book only stores them: the caller sets the stale flag when it detects a
// gap, clears it after recovery, and records RptSeq per applied entry. Clear
// empties a book and Replace installs a snapshot (a snapshot replaces the
// whole book); neither touches the stale flag, RptSeq or the counters.
//
// A book is not safe for concurrent use; the single goroutine that applies
// updates owns it.
//
// # Dumps
//
// WriteDump writes books as JSON lines sorted by symbol, the --dump-books
// format of DESIGN.md:
//
//	{"symbol":"SBER","rptseq":812,"stale":false,"bids":[["101.25","300",3]],"asks":[["101.3","50",1]]}
//
// with prices and sizes as the shortest exact decimal strings and the best
// level first. ReadDump parses and validates such a file into a Dump, and
// DiffDumps describes how two dumps differ, so that tests can compare a
// handler's books with the publisher's ground truth.
package book
