// Package md is fastfeed's market-data model: the application messages of the feed
// (incremental refresh, snapshot, security definition, security status, heartbeat,
// sequence reset) as plain Go values, and their two mappings: to and from FAST with the
// templates of fixtures/templates.xml (this file's Codec), and to and from FIX tag-value
// messages for the recovery and distribution sessions (fix.go).
//
// Prices and sizes are integers at an exponent (Price{Mantissa: 10125, Exp: -2} is
// 101.25), never floats, and decimal.Decimal appears only at API edges. The values a
// Codec decodes alias its buffers: byte slices such as Entry.Symbol are valid until the
// Codec's next Decode, so a hot path allocates nothing.
package md

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Kind identifies a message type. Its value is the FIX MsgType.
type Kind byte

// Message kinds.
const (
	KindIncremental Kind = 'X' // MarketDataIncrementalRefresh
	KindSnapshot    Kind = 'W' // MarketDataSnapshotFullRefresh
	KindDefinition  Kind = 'd' // SecurityDefinition
	KindStatus      Kind = 'f' // SecurityStatus
	KindHeartbeat   Kind = '0' // Heartbeat
	KindReset       Kind = '4' // SequenceReset
)

func (k Kind) String() string {
	switch k {
	case KindIncremental:
		return "IncrementalRefresh"
	case KindSnapshot:
		return "Snapshot"
	case KindDefinition:
		return "SecurityDefinition"
	case KindStatus:
		return "SecurityStatus"
	case KindHeartbeat:
		return "Heartbeat"
	case KindReset:
		return "SequenceReset"
	}
	return fmt.Sprintf("Kind(%q)", byte(k))
}

// Sequenced reports whether messages of kind k consume a channel sequence number.
// Heartbeats carry the last number sent, snapshots the number they are valid at, and a
// sequence reset sets the next number.
func (k Kind) Sequenced() bool {
	return k == KindIncremental || k == KindDefinition || k == KindStatus
}

// EntryType is MDEntryType (269).
type EntryType byte

// Entry types.
const (
	Bid   EntryType = '0'
	Offer EntryType = '1'
	Trade EntryType = '2'
)

// Action is MDUpdateAction (279).
type Action uint8

// Update actions.
const (
	New    Action = 0
	Change Action = 1
	Delete Action = 2
)

// BookType is MDBookType (1021).
type BookType uint8

// Book types.
const (
	TopOfBook  BookType = 1
	PriceDepth BookType = 2 // market by price (MBP)
	OrderDepth BookType = 3 // market by order (MBO)
)

// Decimal is an exact decimal: Mantissa × 10^Exp. Valid is false for an absent value.
type Decimal struct {
	Mantissa int64
	Exp      int8
	Valid    bool
}

// Dec returns a valid Decimal.
func Dec(mantissa int64, exp int8) Decimal { return Decimal{Mantissa: mantissa, Exp: exp, Valid: true} }

// Decimal converts d to a decimal.Decimal, for API edges.
func (d Decimal) Decimal() decimal.Decimal { return decimal.New(d.Mantissa, int32(d.Exp)) }

// At returns d's mantissa at exponent exp, and false if d cannot be represented there
// exactly (it has more fractional digits) or overflows.
func (d Decimal) At(exp int8) (int64, bool) {
	m := d.Mantissa
	switch {
	case d.Exp == exp:
		return m, true
	case d.Exp > exp:
		for e := d.Exp; e > exp; e-- {
			if m > (1<<63-1)/10 || m < -(1<<63)/10 {
				return 0, false
			}
			m *= 10
		}
		return m, true
	}
	for e := d.Exp; e < exp; e++ {
		if m%10 != 0 {
			return 0, false
		}
		m /= 10
	}
	return m, true
}

// Entry is one MDEntry of an incremental refresh or a snapshot. Symbol and ID alias the
// decoder's buffers when decoded.
type Entry struct {
	Action Action // incremental only
	Type   EntryType
	Symbol []byte // incremental only; a snapshot names its instrument once
	RptSeq uint32 // incremental only
	ID     []byte // MDEntryID: order ID (MBO) or trade ID; empty if absent
	Price  Decimal
	Size   Decimal
	Orders uint32 // NumberOfOrders; 0 if absent
}

// Header is what every message carries.
type Header struct {
	SeqNum      uint32 // MsgSeqNum (34): the channel sequence number
	SendingTime int64  // SendingTime (52) as nanoseconds since the Unix epoch
}

// Incremental is a MarketDataIncrementalRefresh (X).
type Incremental struct {
	Header
	Continued bool // more parts of the same update follow (LastFragment 893 = 0)
	Entries   []Entry
}

// Snapshot is a MarketDataSnapshotFullRefresh (W) of one instrument.
type Snapshot struct {
	Header
	LastMsgSeqNumProcessed uint32 // channel sequence the snapshot is valid at
	Symbol                 []byte
	RptSeq                 uint32 // the instrument's RptSeq at LastMsgSeqNumProcessed
	Continued              bool
	Entries                []Entry
}

// Definition is a SecurityDefinition (d).
type Definition struct {
	Header
	TotNumReports uint32 // instruments in the cycle; 0 if absent
	Symbol        []byte
	SecurityID    uint64
	SecurityType  []byte
	Currency      []byte
	Description   []byte  // UTF-8
	Tick          Decimal // MinPriceIncrement
	PriceExp      int8
	SizeExp       int8
	BookType      BookType
	MarketDepth   uint32
	Channel       []byte // ApplID of the instrument's channel, "G<group>:<port>"
}

// Status is a SecurityStatus (f).
type Status struct {
	Header
	Symbol        []byte
	TradingStatus uint32 // SecurityTradingStatus (326); 0 if absent
	SessionID     []byte
	Text          []byte
}

// Heartbeat is a Heartbeat (0) on an idle channel.
type Heartbeat struct {
	Header
	LastSeqNum uint32 // LastMsgSeqNumProcessed (369): the last sequence number sent
}

// Reset is a SequenceReset (4).
type Reset struct {
	Header
	NewSeqNo uint32
}
