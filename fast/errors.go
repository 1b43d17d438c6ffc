package fast

import (
	"errors"
	"fmt"
	"io"
)

// Code is a FAST 1.1 error code: S for static (template) errors, D for dynamic errors and R
// for reportable errors, as numbered in the specification (section 10 and appendix 2).
type Code string

// Error codes of the FAST 1.1 specification used by this package.
const (
	S1 Code = "S1" // template XML is not valid against the schema
	S2 Code = "S2" // operator not applicable to the field type
	S3 Code = "S3" // initial value cannot be converted to the field type
	S4 Code = "S4" // constant operator without an initial value
	S5 Code = "S5" // mandatory default operator without an initial value

	D2  Code = "D2"  // integer outside the bounds of its type
	D3  Code = "D3"  // decimal cannot be encoded with individual exponent/mantissa operators
	D4  Code = "D4"  // dictionary entry holds a value of another type
	D5  Code = "D5"  // mandatory copy/increment field absent, previous value undefined, no initial value
	D6  Code = "D6"  // mandatory field absent with an empty previous value, or delta base empty
	D7  Code = "D7"  // subtraction length larger than the base value or out of int32 range
	D8  Code = "D8"  // static template reference names an unknown template
	D9  Code = "D9"  // template identifier in the stream is unknown
	D10 Code = "D10" // string does not follow the syntax of its type

	R1 Code = "R1" // decimal exponent outside -63..63 or mantissa outside int64
	R2 Code = "R2" // unicode string is not valid UTF-8
	R3 Code = "R3" // string for an ASCII field holds a non-ASCII character
	R4 Code = "R4" // integer value cannot be represented in the target type
	R6 Code = "R6" // integer in an overlong encoding
	R7 Code = "R7" // presence map in an overlong encoding
	R8 Code = "R8" // presence map has more bits than the segment needs
	R9 Code = "R9" // string in an overlong encoding

	// Truncated is not a specification code: the input ended inside a message.
	Truncated Code = "EOF"
	// Limit is not a specification code: a bound of this implementation was exceeded
	// (nesting depth, sequence length against the input size).
	Limit Code = "LIMIT"
)

// Error is a FAST error with its specification code and, for decoding, the byte offset in
// the message where it was detected.
type Error struct {
	Code     Code
	Offset   int    // byte offset in the message; -1 when not applicable
	Template string // template being processed, if known
	Field    string // field being processed, if known
	Line     int    // template XML line, for static errors
	Msg      string
}

func (e *Error) Error() string {
	s := "fast: " + string(e.Code)
	if e.Line > 0 {
		s += fmt.Sprintf(" at line %d", e.Line)
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.Template != "" {
		s += " in template " + e.Template
	}
	if e.Field != "" {
		s += " field " + e.Field
	}
	return s + ": " + e.Msg
}

// Unwrap makes errors.Is(err, io.ErrUnexpectedEOF) true for truncated input.
func (e *Error) Unwrap() error {
	if e.Code == Truncated {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// CodeOf returns the FAST code of err, or "" if err is not a *Error.
func CodeOf(err error) Code {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}
