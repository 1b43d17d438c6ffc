package book

import (
	"errors"
	"fmt"
)

// Side is a side of a book.
type Side uint8

const (
	Bid Side = 0 // buy side; best is the highest price
	Ask Side = 1 // sell side (offer); best is the lowest price
)

func (s Side) String() string {
	switch s {
	case Bid:
		return "bid"
	case Ask:
		return "ask"
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// EntryType is the type of a market-data entry (MDEntryType, tag 269). The
// values of the three types a book knows are the digits of their FIX codes.
// Only EntryBid and EntryOffer change a book; every other value, EntryTrade
// included, is accepted and ignored by Apply.
type EntryType uint8

const (
	EntryBid   EntryType = 0   // 269=0
	EntryOffer EntryType = 1   // 269=1
	EntryTrade EntryType = 2   // 269=2
	EntryOther EntryType = 255 // any other 269 value
)

// Action is an update action (MDUpdateAction, tag 279).
type Action uint8

const (
	ActionNew    Action = 0 // 279=0
	ActionChange Action = 1 // 279=1
	ActionDelete Action = 2 // 279=2
)

func (a Action) String() string {
	switch a {
	case ActionNew:
		return "new"
	case ActionChange:
		return "change"
	case ActionDelete:
		return "delete"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Level is a price level: its price and size as mantissas at the book's
// exponents, and its number of orders (NumberOfOrders, tag 346; 0 when the
// feed does not send it).
type Level struct {
	Price  int64
	Size   int64
	Orders int64
}

// Errors returned by updates. They are sentinels, without context, so that
// rejecting an update allocates nothing; wrap them with what you know.
var (
	ErrNoLevel   = errors.New("book: no level at that price")
	ErrNoOrder   = errors.New("book: no order with that ID")
	ErrFull      = errors.New("book: capacity exceeded")
	ErrBadSide   = errors.New("book: invalid side")
	ErrBadAction = errors.New("book: invalid update action")
	ErrNegative  = errors.New("book: negative size or order count")
	ErrBadID     = errors.New("book: order ID empty or longer than MaxIDLen bytes")
	ErrOverflow  = errors.New("book: level size overflows int64")
)

// Counters count the anomalies a book has seen. All are cumulative until
// ResetCounters; Clear and Replace do not reset them.
type Counters struct {
	Duplicates    uint64 // New for an existing level or order, applied as a replacement
	ChangeMissing uint64 // Change of a missing level or order (ErrNoLevel, ErrNoOrder)
	DeleteMissing uint64 // Delete of a missing level or order (ErrNoLevel, ErrNoOrder)
	Full          uint64 // updates refused at capacity (ErrFull)
	Invalid       uint64 // bad action, side, value or ID, or size overflow
}

// Defaults and limits of Config.
const (
	DefaultMaxLevels = 4096    // per side
	DefaultMaxOrders = 1 << 18 // per MBO book
	MaxMaxLevels     = 1 << 20
	MaxMaxOrders     = 1 << 26
	MinExp           = -63 // smallest exponent (FAST decimal range)
	MaxExp           = 63  // largest exponent
)

// Config fixes a book's exponents and capacity. The zero value is a book of
// integers (exponents 0) with the default capacity.
type Config struct {
	PriceExp int // price = mantissa * 10^PriceExp, in [MinExp, MaxExp]
	SizeExp  int // size = mantissa * 10^SizeExp, in [MinExp, MaxExp]

	// MaxLevels bounds the levels of each side; an update that would add
	// a level beyond it fails with ErrFull. 0 means DefaultMaxLevels.
	MaxLevels int

	// MaxOrders bounds the orders of an MBO book (MBP ignores it).
	// 0 means DefaultMaxOrders.
	MaxOrders int
}

func (c Config) normalize() (Config, error) {
	if c.PriceExp < MinExp || c.PriceExp > MaxExp {
		return c, fmt.Errorf("book: price exponent %d outside [%d, %d]", c.PriceExp, MinExp, MaxExp)
	}
	if c.SizeExp < MinExp || c.SizeExp > MaxExp {
		return c, fmt.Errorf("book: size exponent %d outside [%d, %d]", c.SizeExp, MinExp, MaxExp)
	}
	switch {
	case c.MaxLevels == 0:
		c.MaxLevels = DefaultMaxLevels
	case c.MaxLevels < 0 || c.MaxLevels > MaxMaxLevels:
		return c, fmt.Errorf("book: MaxLevels %d outside [1, %d]", c.MaxLevels, MaxMaxLevels)
	}
	switch {
	case c.MaxOrders == 0:
		c.MaxOrders = DefaultMaxOrders
	case c.MaxOrders < 0 || c.MaxOrders > MaxMaxOrders:
		return c, fmt.Errorf("book: MaxOrders %d outside [1, %d]", c.MaxOrders, MaxMaxOrders)
	}
	return c, nil
}

// View is what dumps and read-outs need from a book; MBP and MBO implement it.
type View interface {
	PriceExp() int
	SizeExp() int
	RptSeq() int64
	Stale() bool
	// AppendLevels appends the levels of a side to dst, best first.
	AppendLevels(dst []Level, side Side) []Level
}
