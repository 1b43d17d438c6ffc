package natsbus

import "fastfeed/md"

// itemKind is what a queued item is.
type itemKind uint8

const (
	itemEntry    itemKind = iota // a book entry or a trade
	itemSnapshot                 // a W taken on the engine's goroutine
	itemStale                    // the book went stale (f 20 "stale")
	itemReady                    // the book is whole again (f 17 "ready"; a W follows)
	itemStatus                   // a trading status from the feed
)

// maxIDLen is the longest MDEntryID an entry keeps; longer IDs are cut.
const maxIDLen = 32

// item is one queued event, copied out of the engine's event.
type item struct {
	kind   itemKind
	inst   *pubInst
	action md.Action
	typ    md.EntryType
	idLen  uint8
	rptSeq uint32
	orders uint32
	status uint32
	price  md.Decimal
	size   md.Decimal
	id     [maxIDLen]byte
	snap   *snapshot
	at     int64 // wall-clock ns when queued
}
