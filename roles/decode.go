package roles

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"fastfeed/fast"
	"fastfeed/fast/codecs"
	"fastfeed/internal/framing"
	"fastfeed/replay"
)

// Decode is fastfeed decode: FAST messages from a file to JSON lines.
func Decode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("decode", stderr, "usage: fastfeed decode [-t TEMPLATES.xml] [--framing stream|seq32|len32|pcap] [--skip N] [--summary] FILE|-")
	templates := fs.String("t", "", "FAST template XML `file` (default: "+DefaultTemplates+", else the copy compiled in, as every command does)")
	framingName := fs.String("framing", "stream", "input framing: stream, seq32, len32 or pcap")
	skip := fs.Int("skip", 0, "decode but do not print the first `N` messages")
	summary := fs.Bool("summary", false, "print only a summary object: messages, bytes, errors, ns_per_message")
	c, err := parse(fs, args, parseOpts{positional: -1})
	if err != nil {
		return err
	}
	if len(c.pos) != 1 {
		return usagef("want exactly one input FILE (or - for standard input)")
	}
	if *skip < 0 {
		return usagef("--skip must not be negative")
	}
	kind, err := framing.Parse(*framingName)
	if err != nil {
		return &UsageError{err.Error()}
	}
	var ts *fast.Templates
	if *templates == "" {
		ts, err = LoadTemplates(DefaultTemplates, false)
	} else {
		ts, err = fast.LoadFile(*templates)
	}
	if err != nil {
		return err
	}
	var data []byte
	if c.pos[0] == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(c.pos[0])
	}
	if err != nil {
		return err
	}
	var frames [][]byte // datagram payloads, for pcap
	if kind == framing.Pcap {
		frames, err = pcapPayloads(data, stderr)
		if err != nil {
			return err
		}
	}
	d := &decodeRun{ts: ts, kind: kind, data: data, frames: frames, codec: "interpreted"}
	d.newDec = func() framing.Decoder { return fast.NewDecoder(ts) }
	if _, _, ok := codecs.Lookup(ts, !*summary); ok { // the same file was compiled in
		d.codec = "generated"
		d.newDec = func() framing.Decoder { g, _, _ := codecs.Lookup(ts, !*summary); return g }
	}
	d.dec = d.newDec()
	if *summary {
		err = d.summary(stdout)
	} else {
		out := bufio.NewWriterSize(stdout, 64<<10)
		err = d.print(ctx, out, *skip)
		if ferr := out.Flush(); err == nil {
			err = ferr
		}
	}
	if err != nil && kind == framing.Stream && !c.set["framing"] && d.decoded == 0 && len(data) > 0 {
		// Nothing decoded from the first bytes on: most likely datagrams with their
		// sequence preamble, as fastfeed sends and records them.
		err = fmt.Errorf("%w\nhint: the input does not start with a FAST message; fastfeed's datagrams start with a 4-byte sequence number: try --framing seq32 (or --framing pcap for a capture)", err)
	}
	return err
}

// decodeRun decodes one input.
type decodeRun struct {
	ts      *fast.Templates
	dec     framing.Decoder
	newDec  func() framing.Decoder
	codec   string // "generated" or "interpreted"
	kind    framing.Kind
	data    []byte
	frames  [][]byte
	m       fast.Message
	decoded int // messages decoded so far
}

// each calls fn for every message; it stops at the first error.
func (d *decodeRun) each(fn func(seq uint32) error) (messages, bytes int, err error) {
	if d.kind == framing.Pcap {
		for i, p := range d.frames {
			seq, err := framing.DecodeDatagram(d.dec, p, &d.m)
			if err != nil {
				return messages, bytes, fmt.Errorf("datagram %d: %w", i+1, err)
			}
			messages++
			d.decoded++
			bytes += len(p)
			if err := fn(seq); err != nil {
				return messages, bytes, err
			}
		}
		return messages, bytes, nil
	}
	r := framing.NewReader(d.kind, d.dec, d.data)
	for {
		seq, off, ok, err := r.Next(&d.m)
		if err != nil {
			return messages, off, err
		}
		if !ok {
			return messages, len(d.data), nil
		}
		messages++
		d.decoded++
		if err := fn(seq); err != nil {
			return messages, off, err
		}
	}
}

func (d *decodeRun) print(ctx context.Context, w *bufio.Writer, skip int) error {
	var line []byte
	n := 0
	_, _, err := d.each(func(seq uint32) error {
		n++
		if n <= skip {
			return nil
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		t := d.m.Template
		line = append(line[:0], `{"seq":`...)
		line = strconv.AppendUint(line, uint64(seq), 10)
		line = append(line, `,"template":`...)
		line = strconv.AppendQuote(line, t.Name)
		line = append(line, `,"id":`...)
		line = strconv.AppendUint(line, uint64(t.ID), 10)
		line = append(line, `,"fields":`...)
		line = fast.AppendJSON(line, d.m.Root())
		line = append(line, "}\n"...)
		_, err := w.Write(line)
		return err
	})
	return err
}

// summary decodes everything with the clock running around the decode loop alone.
func (d *decodeRun) summary(w io.Writer) error {
	if len(d.data) <= 64<<20 {
		// Warm up caches and the message's buffers once, untimed: the figure is meant to
		// be the steady state of a running handler.
		_, _, _ = d.each(func(uint32) error { return nil })
		d.dec = d.newDec()
	}
	start := time.Now()
	messages, bytes, err := d.each(func(uint32) error { return nil })
	elapsed := time.Since(start)
	errCount := 0
	if err != nil {
		errCount = 1
	}
	nsPer := 0.0
	if messages > 0 {
		nsPer = float64(elapsed.Nanoseconds()) / float64(messages)
	}
	if d.kind != framing.Pcap && err == nil {
		bytes = len(d.data)
	}
	fmt.Fprintf(w, `{"messages":%d,"bytes":%d,"errors":%d,"ns_per_message":%.1f,"codec":%q}`+"\n", messages, bytes, errCount, nsPer, d.codec)
	return err
}

// pcapPayloads returns the UDP payloads of a capture (pcap or pcapng). Packets that are
// not IPv4 UDP are skipped; malformed packets are reported on stderr with their number and
// skipped; a file that ends inside a record keeps what came before.
func pcapPayloads(data []byte, stderr io.Writer) ([][]byte, error) {
	r, err := replay.NewReader(bytes.NewReader(data), nil)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	var d replay.Datagram
	for {
		err := r.Next(&d)
		if err == io.EOF {
			break
		}
		var pe *replay.PacketError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "fastfeed decode: %v (skipped)\n", err)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "fastfeed decode: %v\n", err)
			break
		}
		out = append(out, append([]byte(nil), d.Payload...))
	}
	st := r.Stats()
	if st.Skipped > 0 || st.Malformed > 0 {
		fmt.Fprintf(stderr, "fastfeed decode: %d packets, %d UDP datagrams, %d skipped (not IPv4 UDP), %d malformed\n",
			st.Packets, st.Datagrams, st.Skipped, st.Malformed)
	}
	return out, nil
}
