package codecs

import "fastfeed/fast/fastrt"

func fastDecimal(m int64, e int32) fastrt.Decimal { return fastrt.Decimal{Mantissa: m, Exponent: e} }
