package moex

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"fastfeed/fast/codecs/moexasts"
)

// ReplayClient asks the MOEX TCP historical replay service for missed messages of an
// incremental connection (see the protocol in replaywire.go). It is an Engine's
// Options.Replay; it is safe for concurrent use (each request on its own TCP
// connection, on the caller's goroutine).
type ReplayClient struct {
	Addr               netip.AddrPort // the H connection's address
	Username, Password string
	SenderCompID       string        // default "FASTFEED"
	Timeout            time.Duration // the whole request, connect to Logout (default 2s)
	MaxFrame           int           // the largest FAST message accepted (default 65536)

	mu    sync.Mutex // guards stats and reqID
	stats ReplayStats
	reqID int
	pool  sync.Pool // *replayState
}

// replayState is one request's decoder and frame buffer.
type replayState struct {
	dec *moexasts.Decoder
	msg moexasts.Message
	buf []byte
}

// ReplayStats count the client's requests and what went wrong, by name.
type ReplayStats struct {
	Requests     uint64 `json:"requests"`
	Filled       uint64 `json:"filled"`   // requests answered with every message asked for
	Messages     uint64 `json:"messages"` // messages delivered
	Dial         uint64 `json:"dial_errors"`
	Timeouts     uint64 `json:"timeouts"`
	Rejected     uint64 `json:"rejected"`      // a Logout before every message (Text in the error)
	BadFrames    uint64 `json:"bad_frames"`    // a frame length out of bounds, or cut short
	DecodeErrors uint64 `json:"decode_errors"` // a frame that is no ASTS message
	OutOfOrder   uint64 `json:"out_of_order"`  // a message outside the range or not the next one
	Unexpected   uint64 `json:"unexpected"`    // a template that does not belong (before the Logon, ...)
	Canceled     uint64 `json:"canceled"`      // requests ended by the run's end
	LastError    string `json:"last_error,omitempty"`
}

// ReplayError is a failed request: what was asked and why it failed.
type ReplayError struct {
	Addr     netip.AddrPort
	Conn     string
	Beg, End uint32
	Offset   int64 // bytes of the answer read when it failed
	Err      error
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("moex: historical replay %s %s %d..%d: at answer byte %d: %v", e.Addr, e.Conn, e.Beg, e.End, e.Offset, e.Err)
}

func (e *ReplayError) Unwrap() error { return e.Err }

// Stats returns the client's counters.
func (c *ReplayClient) Stats() ReplayStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// inc adds one to the counter p of c.stats.
func (c *ReplayClient) inc(p *uint64) {
	c.mu.Lock()
	*p++
	c.mu.Unlock()
}

// Replay implements Replayer: it connects, logs on, asks for conn's messages beg..end
// and gives each to deliver in order. It fails if the range is empty or longer than
// MaxReplayRange, when ctx ends, and on any answer that is not the service's protocol.
func (c *ReplayClient) Replay(ctx context.Context, conn string, beg, end uint32, deliver func(seq uint32, msg []byte)) error {
	c.mu.Lock()
	c.stats.Requests++
	c.reqID++
	id := c.reqID
	c.mu.Unlock()
	err := c.replay(ctx, id, conn, beg, end, deliver)
	if err != nil {
		c.mu.Lock()
		c.stats.LastError = err.Error()
		c.mu.Unlock()
	}
	return err
}

func (c *ReplayClient) replay(ctx context.Context, id int, conn string, beg, end uint32, deliver func(seq uint32, msg []byte)) error {
	fail := func(off int64, err error) error {
		return &ReplayError{Addr: c.Addr, Conn: conn, Beg: beg, End: end, Offset: off, Err: err}
	}
	if beg == 0 || end < beg || end-beg >= MaxReplayRange {
		return fail(0, fmt.Errorf("range of %d messages: want 1..%d", int64(end)-int64(beg)+1, MaxReplayRange))
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp4", c.Addr.String())
	if err != nil {
		if parent.Err() != nil {
			c.inc(&c.stats.Canceled)
		} else {
			c.inc(&c.stats.Dial)
		}
		return fail(0, err)
	}
	defer nc.Close()
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// The run's end interrupts the exchange at once.
	stop := context.AfterFunc(parent, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	fail0 := fail
	fail = func(off int64, err error) error {
		if parent.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", parent.Err(), err)
		}
		return fail0(off, err)
	}
	sender := c.SenderCompID
	if sender == "" {
		sender = "FASTFEED"
	}
	now := time.Now().UTC().Format("20060102-15:04:05.000")
	req := AppendFIX(nil, "A", "49", sender, "56", "MOEX", "34", "1", "52", now, "98", "0", "108", "30",
		"553", c.Username, "554", c.Password, "1137", "9")
	req = AppendFIX(req, "V", "49", sender, "56", "MOEX", "34", "2", "52", now, "262", strconv.Itoa(id),
		"1180", conn, "1182", strconv.FormatUint(uint64(beg), 10), "1183", strconv.FormatUint(uint64(end), 10))
	if _, err := nc.Write(req); err != nil {
		return c.ioFail(parent, fail, 0, err)
	}
	st, _ := c.pool.Get().(*replayState)
	if st == nil {
		st = &replayState{dec: moexasts.NewDecoder()}
	}
	defer c.pool.Put(st)
	return c.read(parent, st, bufio.NewReaderSize(nc, 16<<10), beg, end, deliver, fail)
}

func (c *ReplayClient) ioFail(parent context.Context, fail func(int64, error) error, off int64, err error) error {
	switch {
	case parent.Err() != nil:
		c.inc(&c.stats.Canceled)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.inc(&c.stats.Timeouts)
	default:
		c.inc(&c.stats.BadFrames)
	}
	return fail(off, err)
}

// read takes the answer: Logon, the messages beg..end, Logout.
func (c *ReplayClient) read(parent context.Context, st *replayState, r *bufio.Reader, beg, end uint32, deliver func(seq uint32, msg []byte), fail func(int64, error) error) error {
	max := c.MaxFrame
	if max <= 0 {
		max = 65536
	}
	var off int64
	loggedOn := false
	next := beg
	for {
		frame, err := ReadFrame(r, st.buf, max)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if next > end {
					c.inc(&c.stats.Filled)
					return nil // every message came; the Logout is a courtesy
				}
				c.inc(&c.stats.BadFrames)
				return fail(off, fmt.Errorf("connection closed after %d of %d messages", next-beg, end-beg+1))
			}
			return c.ioFail(parent, fail, off, err)
		}
		st.buf = frame
		st.dec.Reset()
		n, err := st.dec.Decode(frame, &st.msg)
		if err != nil || n != len(frame) {
			c.inc(&c.stats.DecodeErrors)
			if err == nil {
				err = fmt.Errorf("%d bytes after the message", len(frame)-n)
			}
			return fail(off, fmt.Errorf("frame of %d bytes: %w", len(frame), err))
		}
		at := off
		off += int64(len(frame)) + 1
		switch id := st.msg.ID; {
		case id == moexasts.IDA:
			if loggedOn {
				c.inc(&c.stats.Unexpected)
				return fail(at, errors.New("a second Logon"))
			}
			loggedOn = true
		case id == moexasts.IDX5:
			if next > end {
				c.inc(&c.stats.Filled)
				return nil
			}
			c.inc(&c.stats.Rejected)
			return fail(at, fmt.Errorf("logout after %d of %d messages: %q", next-beg, end-beg+1, st.msg.X5.Text))
		case !loggedOn:
			c.inc(&c.stats.Unexpected)
			return fail(at, fmt.Errorf("template %d before the Logon", id))
		default:
			seq := MsgSeqNum(&st.msg)
			if seq != next || seq > end {
				c.inc(&c.stats.OutOfOrder)
				return fail(at, fmt.Errorf("message %d, want %d (range %d..%d)", seq, next, beg, end))
			}
			next++
			c.inc(&c.stats.Messages)
			deliver(seq, frame)
		}
	}
}
