package emv

import (
	"errors"

	"github.com/faregate/faregate/emv/tlv"
)

// buildDOLEntries concatenates the values a Data Object List asks for, by the
// rules of EMV Book 3 5.4: a value the terminal does not have, or a
// constructed tag, is filled with zeros; a longer value is truncated (the
// leftmost bytes of numeric values, the rightmost of others); a shorter one
// is padded (leading zeros for numeric, trailing FF for compressed numeric,
// trailing zeros otherwise).
func buildDOLEntries(dol []tlv.DOLEntry, value func(tag string) ([]byte, bool)) []byte {
	out := make([]byte, 0, tlv.DOLLength(dol))
	for _, e := range dol {
		out = appendDOLValue(out, e, value)
	}
	return out
}

// buildDOL parses a Data Object List and builds its data in one pass.
func buildDOL(dol []byte, value func(tag string) ([]byte, bool)) ([]byte, error) {
	out := make([]byte, 0, 64)
	err := tlv.EachDOL(dol, func(e tlv.DOLEntry) error {
		if len(out)+e.Length > 255 {
			return errors.New("DOL data longer than a command carries")
		}
		out = appendDOLValue(out, e, value)
		return nil
	})
	return out, err
}

func appendDOLValue(out []byte, e tlv.DOLEntry, value func(string) ([]byte, bool)) []byte {
	v, ok := value(e.Tag)
	if !ok || tlv.Constructed(e.Tag) {
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
