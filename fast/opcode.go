package fast

// opcode selects a field's decoding path. The common cases of real feeds (mandatory and
// nullable integers and strings without operator, constants, copy and increment of
// integers, copy of strings) are decoded inline by Decoder.fields; everything else goes
// through the general functions.
type opcode uint8

const (
	cGeneric      opcode = iota
	cConstNum            // mandatory constant integer or decimal
	cUint                // mandatory uInt32/uInt64, no operator
	cUintNull            // optional uInt32/uInt64, no operator
	cInt                 // mandatory int32/int64, no operator
	cIntNull             // optional int32/int64, no operator
	cASCII               // mandatory ASCII string, no operator
	cASCIINull           // optional ASCII string, no operator
	cCopyInt             // integer with copy operator
	cIncInt              // integer with increment operator
	cCopyASCII           // ASCII string with copy operator
	cSplitDecimal        // decimal with individual operators
	cDecimal             // mandatory decimal, no operator
	cDecimalNull         // optional decimal, no operator
	cConstBytes          // mandatory constant string or byte vector
)

func opcodeOf(f *Field) opcode {
	switch {
	case f.split:
		return cSplitDecimal
	case f.Type == TypeDecimal && f.Op == OpNone:
		if f.nullable {
			return cDecimalNull
		}
		return cDecimal
	case f.Op == OpConstant && !f.Optional && (f.Type.isInteger() || f.Type == TypeDecimal):
		return cConstNum
	case f.Op == OpConstant && !f.Optional:
		return cConstBytes
	case f.Type.isInteger():
		switch f.Op {
		case OpNone:
			switch {
			case f.Type.isSigned() && f.nullable:
				return cIntNull
			case f.Type.isSigned():
				return cInt
			case f.nullable:
				return cUintNull
			}
			return cUint
		case OpCopy:
			return cCopyInt
		case OpIncrement:
			return cIncInt
		}
	case f.Type == TypeASCII:
		switch f.Op {
		case OpNone:
			if f.nullable {
				return cASCIINull
			}
			return cASCII
		case OpCopy:
			return cCopyASCII
		}
	}
	return cGeneric
}
