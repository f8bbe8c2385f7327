package emv

import "github.com/faregate/faregate/emv/tlv"

// BuildDOL concatenates the values a Data Object List asks for, by the
// rules of EMV Book 3 5.4: a value the terminal does not have, or a
// constructed tag, is filled with zeros; a longer value is truncated (the
// leftmost bytes of numeric values, the rightmost of others); a shorter one
// is padded (leading zeros for numeric, trailing FF for compressed numeric,
// trailing zeros otherwise).
func BuildDOL(dol []tlv.DOLEntry, value func(tag string) ([]byte, bool)) []byte {
	out := make([]byte, 0, tlv.DOLLength(dol))
	for _, e := range dol {
		out = appendDOLValue(out, e, value)
	}
	return out
}

func appendDOLValue(out []byte, e tlv.DOLEntry, value func(string) ([]byte, bool)) []byte {
	v, ok := value(e.Tag)
	if !ok || isConstructedTag(e.Tag) {
		return append(out, make([]byte, e.Length)...)
	}
	format := FormatB
	if info, known := dictionary[e.Tag]; known {
		format = info.Format
	}
	switch {
	case len(v) == e.Length:
		return append(out, v...)
	case len(v) > e.Length:
		if format == FormatN {
			return append(out, v[len(v)-e.Length:]...)
		}
		return append(out, v[:e.Length]...)
	}
	pad := e.Length - len(v)
	switch format {
	case FormatN:
		out = append(out, make([]byte, pad)...)
		return append(out, v...)
	case FormatCN:
		out = append(out, v...)
		for range pad {
			out = append(out, 0xFF)
		}
		return out
	default:
		out = append(out, v...)
		return append(out, make([]byte, pad)...)
	}
}

// isConstructedTag reports whether the upper-case hex tag is a template.
func isConstructedTag(tag string) bool {
	if len(tag) < 2 {
		return false
	}
	c := tag[0]
	var hi byte
	switch {
	case c >= '0' && c <= '9':
		hi = c - '0'
	case c >= 'A' && c <= 'F':
		hi = c - 'A' + 10
	}
	return hi&0x2 != 0
}
