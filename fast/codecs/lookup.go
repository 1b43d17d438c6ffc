package codecs

import (
	"fastfeed/fast"
	"fastfeed/fast/codecs/ffcodec"
	"fastfeed/fast/codecs/moexasts"
	"fastfeed/fast/fastrt"
)

// Decoder is a generated decoder behind the interpreter's interface: Decode decodes with
// generated code and, if the Decoder fills, converts the result into m (for tools that
// print it; a Decoder that does not fill leaves m alone, to measure the decoding alone).
type Decoder interface {
	Decode(b []byte, m *fast.Message) (int, error)
	Reset()
}

// Lookup returns a generated decoder for ts if one was generated from a template file with
// the same content (SHA-256), and the name of its package.
func Lookup(ts *fast.Templates, fill bool) (dec Decoder, name string, ok bool) {
	switch ts.SourceSHA256() {
	case ffcodec.SourceSHA256:
		return &adapter[ffcodec.Message, *ffcodec.Message]{d: ffcodec.NewDecoder(), ts: ts, fill: fill}, "ffcodec", true
	case moexasts.SourceSHA256:
		return &adapter[moexasts.Message, *moexasts.Message]{d: moexasts.NewDecoder(), ts: ts, fill: fill}, "moexasts", true
	}
	return nil, "", false
}

type adapter[M any, PM interface {
	*M
	ToFast(*fast.Templates, *fast.Message) error
}] struct {
	d interface {
		Decode([]byte, PM) (int, error)
		Reset()
	}
	m    M
	ts   *fast.Templates
	fill bool
}

func (a *adapter[M, PM]) Decode(b []byte, out *fast.Message) (int, error) {
	n, err := a.d.Decode(b, &a.m)
	if err != nil || !a.fill {
		return n, err
	}
	return n, PM(&a.m).ToFast(a.ts, out)
}

func (a *adapter[M, PM]) Reset() { a.d.Reset() }

func fastDecimal(m int64, e int32) fastrt.Decimal { return fastrt.Decimal{Mantissa: m, Exponent: e} }
