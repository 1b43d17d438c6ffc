// Package fast is a FAST 1.1 (FIX Adapted for STreaming) codec driven by XML template
// definitions: Load and LoadFile read templates (fixtures/templates.xml is the feed's),
// a Decoder turns a FAST stream's bytes into a Message and an Encoder does the reverse.
//
// A Message is a flat slice of Values in template order with a byte arena for strings
// and byte vectors; Group and Seq are views into it, so that decoding a message into a
// Message that is reused allocates nothing once its storage has grown. Every field
// operator of the specification (constant, default, copy, increment, delta, tail) and
// its dictionaries are implemented; the Decoder keeps dictionaries across messages until
// Reset, which fastfeed calls at the start of every datagram. Decoding has fast paths for
// the common field shapes and a general path that the tests check them against.
//
// Malformed input is an *Error with the specification's error code (CodeOf), the
// template and field it concerns and the byte offset; nothing panics or reads past the
// input. The wire primitives (stop-bit integers, nullable values, ASCII, byte vectors) are
// exported as Append* and Consume* functions for tools and tests. package md maps
// Messages to fastfeed's market-data model.
package fast
