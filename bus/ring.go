package bus

// What the per-client queue (an spsc.Ring) between the handler's goroutine and the
// client's writer holds.

import "fastfeed/md"

// itemKind is what a queued item is.
type itemKind uint8

const (
	itemEntry    itemKind = iota // an incremental entry (book or trade)
	itemSnapshot                 // a W (snap)
	itemStale                    // the book went stale
	itemStatus                   // a SecurityStatus from the feed
)

// maxIDLen is the longest MDEntryID a queued entry keeps; longer IDs are cut.
const maxIDLen = 32

// item is one queued event, copied out of the handler's event (which is only valid
// during the callback).
type item struct {
	kind   itemKind
	req    *request
	symbol string // the handler's instrument symbol: stable, not copied
	action md.Action
	typ    md.EntryType
	rptSeq uint32
	orders uint32
	status uint32
	price  md.Decimal
	size   md.Decimal
	idLen  uint8
	id     [maxIDLen]byte
	snap   *md.Snapshot
	at     int64 // wall-clock time queued, ns
}
