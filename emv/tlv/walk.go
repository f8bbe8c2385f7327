package tlv

import (
	"encoding/hex"
	"strings"
)

// The kernel reads every card response on the hot path of a tap, whose goal
// is a small multiple of its RSA cost. Decode builds a bertlv tree with a
// hex string per tag; the functions here walk checked bytes instead, and
// hand out tags from interned tables, allocating nothing for the one- and
// two-byte tags EMV uses.

var (
	oneByteTags [256]string
	twoByteTags [4][256]string // first byte 5F, 9F, BF, DF
)

func init() {
	const digits = "0123456789ABCDEF"
	for i := range 256 {
		oneByteTags[i] = string([]byte{digits[i>>4], digits[i&0xF]})
	}
	for j, first := range []string{"5F", "9F", "BF", "DF"} {
		for i := range 256 {
			twoByteTags[j][i] = first + oneByteTags[i]
		}
	}
}

// tagString returns the upper-case hex of a tag, interned when it can be.
func tagString(raw []byte) string {
	switch len(raw) {
	case 1:
		return oneByteTags[raw[0]]
	case 2:
		switch raw[0] {
		case 0x5F:
			return twoByteTags[0][raw[1]]
		case 0x9F:
			return twoByteTags[1][raw[1]]
		case 0xBF:
			return twoByteTags[2][raw[1]]
		case 0xDF:
			return twoByteTags[3][raw[1]]
		}
	}
	return strings.ToUpper(hex.EncodeToString(raw))
}

// Constructed reports whether a tag (upper-case hex) is a template.
func Constructed(tag string) bool {
	if tag == "" {
		return false
	}
	c := tag[0]
	if c >= 'A' {
		c = c - 'A' + 10
	} else {
		c -= '0'
	}
	return c&0x2 != 0
}

// Children calls fn for each data object at the top level of b, which must
// have passed Check. Values alias b. It stops at fn's first error.
func Children(b []byte, fn func(tag string, value []byte) error) error {
	for off := 0; off < len(b); {
		if b[off] == 0x00 {
			off++
			continue
		}
		h, err := header(b[off:])
		if err != nil {
			err.Offset += off
			return err
		}
		start := off + h.headerLen
		if err := fn(tagString(h.tag), b[start:start+h.length]); err != nil {
			return err
		}
		off = start + h.length
	}
	return nil
}

// Each calls fn for every primitive data object in b, depth first, in
// order, checking the structure as it goes (the rules of Check). Values
// alias b. On malformed bytes it returns the error, possibly after fn has
// seen the objects before the fault.
func Each(b []byte, fn func(tag string, value []byte) error) error {
	return each(b, fn, 0)
}

func each(b []byte, fn func(string, []byte) error, depth int) error {
	if depth > MaxDepth {
		return &SyntaxError{Reason: "nested too deep"}
	}
	return Children(b, func(tag string, v []byte) error {
		if Constructed(tag) {
			return each(v, fn, depth+1)
		}
		return fn(tag, v)
	})
}

// Lookup checks b and returns the value of the first data object with tag,
// searching depth first.
func Lookup(b []byte, tag string) ([]byte, bool, error) {
	if err := Check(b); err != nil {
		return nil, false, err
	}
	v, ok := lookup(b, tag)
	return v, ok, nil
}

func lookup(b []byte, tag string) (found []byte, ok bool) {
	_ = Children(b, func(t string, v []byte) error {
		switch {
		case t == tag:
			found, ok = v, true
		case Constructed(t):
			found, ok = lookup(v, tag)
		}
		if ok {
			return errStop
		}
		return nil
	})
	return found, ok
}

type stop struct{}

func (stop) Error() string { return "stop" }

var errStop error = stop{}
