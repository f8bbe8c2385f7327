// Package tlv decodes and encodes the BER-TLV subset used by EMV cards
// (EMV Book 3 Annex B) on top of github.com/moov-io/bertlv, guarded by bounds
// checks of its own: every byte a card sends is hostile input, and
// bertlv v0.1.0 trusts long-form lengths (a 0x84FFFFFFFF length overflows to a
// negative int and panics) and recurses without limit.
//
// Check validates the whole structure first; Decode only hands bytes to
// bertlv once Check has passed. Errors never quote the bytes they reject,
// because those bytes may hold a PAN.
package tlv

import (
	"errors"
	"fmt"

	"github.com/moov-io/bertlv"
)

// Limits on what a card may send. A short APDU response carries at most 256
// bytes and an extended one 65536, so a length needs at most two bytes; EMV
// tags are at most two bytes (three are accepted); real templates nest about
// five deep.
const (
	MaxTagLen    = 3
	MaxLenBytes  = 2
	MaxDepth     = 8
	MaxValueSize = 0xFFFF
)

// TLV is one decoded data object. Tag is upper-case hex ("9F37"); a
// constructed object has TLVs and no Value.
type TLV = bertlv.TLV

// ErrMalformed is matched (errors.Is) by every structural error.
var ErrMalformed = errors.New("tlv: malformed data")

// SyntaxError says where and why bytes are not valid BER-TLV. It never holds
// the bytes themselves.
type SyntaxError struct {
	Offset int    // byte offset of the offending element in the checked input
	Reason string // short, stable description: "truncated tag", "length too long" …
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("tlv: malformed data at offset %d: %s", e.Offset, e.Reason)
}

// Unwrap makes every SyntaxError match ErrMalformed.
func (e *SyntaxError) Unwrap() error { return ErrMalformed }

// Check validates b as a sequence of BER-TLV data objects: every tag and
// length complete, every value inside its parent, lengths in definite form of
// at most MaxLenBytes bytes, nesting at most MaxDepth levels. '00' bytes
// between objects are padding, as EMV allows.
func Check(b []byte) error {
	return check(b, 0, 0)
}

func check(b []byte, base, depth int) error {
	if depth > MaxDepth {
		return &SyntaxError{Offset: base, Reason: "nested too deep"}
	}
	for off := 0; off < len(b); {
		if b[off] == 0x00 { // padding between objects
			off++
			continue
		}
		h, err := header(b[off:])
		if err != nil {
			err.Offset += base + off
			return err
		}
		start := off + h.headerLen
		if h.constructed {
			if err := check(b[start:start+h.length], base+start, depth+1); err != nil {
				return err
			}
		}
		off = start + h.length
	}
	return nil
}

type hdr struct {
	tag         []byte
	headerLen   int
	length      int
	constructed bool
}

// header reads the tag and length at the start of b and checks that the value
// fits in b.
func header(b []byte) (hdr, *SyntaxError) {
	tag, n, err := readTag(b)
	if err != nil {
		return hdr{}, err
	}
	length, m, err := readLength(b[n:])
	if err != nil {
		err.Offset += n
		return hdr{}, err
	}
	if len(b)-n-m < length {
		return hdr{}, &SyntaxError{Offset: n, Reason: "value runs past the end of its parent"}
	}
	return hdr{tag: tag, headerLen: n + m, length: length, constructed: tag[0]&0x20 != 0}, nil
}

func readTag(b []byte) ([]byte, int, *SyntaxError) {
	if len(b) == 0 {
		return nil, 0, &SyntaxError{Reason: "missing tag"}
	}
	if b[0]&0x1F != 0x1F {
		return b[:1], 1, nil
	}
	for i := 1; i < len(b); i++ {
		if i >= MaxTagLen {
			return nil, 0, &SyntaxError{Reason: "tag too long"}
		}
		if b[i]&0x80 == 0 {
			return b[:i+1], i + 1, nil
		}
	}
	return nil, 0, &SyntaxError{Reason: "truncated tag"}
}

func readLength(b []byte) (int, int, *SyntaxError) {
	if len(b) == 0 {
		return 0, 0, &SyntaxError{Reason: "missing length"}
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	n := int(b[0] & 0x7F)
	switch {
	case n == 0:
		return 0, 0, &SyntaxError{Reason: "indefinite length"}
	case n > MaxLenBytes:
		return 0, 0, &SyntaxError{Reason: "length too long"}
	case len(b) < 1+n:
		return 0, 0, &SyntaxError{Reason: "truncated length"}
	}
	length := 0
	for _, c := range b[1 : 1+n] {
		length = length<<8 | int(c)
	}
	return length, 1 + n, nil
}

// Decode checks b and decodes it into data objects.
func Decode(b []byte) ([]TLV, error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	tlvs, err := bertlv.Decode(b)
	if err != nil {
		// Check accepts only what bertlv decodes; keep the message free of data.
		return nil, &SyntaxError{Reason: "rejected by decoder"}
	}
	return tlvs, nil
}

// Encode encodes data objects. Values longer than MaxValueSize are refused.
func Encode(tlvs ...TLV) ([]byte, error) {
	b, err := bertlv.Encode(tlvs)
	if err != nil {
		return nil, fmt.Errorf("tlv: encode: %w", err)
	}
	return b, nil
}

// Split reads the single data object at the start of b and returns its tag
// (upper-case hex), its raw value and the bytes after it. Only the header is
// checked, not the value's inner structure.
func Split(b []byte) (tag string, value, rest []byte, err error) {
	for len(b) > 0 && b[0] == 0x00 {
		b = b[1:]
	}
	h, serr := header(b)
	if serr != nil {
		return "", nil, nil, serr
	}
	end := h.headerLen + h.length
	return tagString(h.tag), b[h.headerLen:end], b[end:], nil
}

// Find returns the first data object with tag, searching depth first.
// (bertlv.FindFirstTag stops at the first constructed object.)
func Find(tlvs []TLV, tag string) (TLV, bool) {
	for _, t := range tlvs {
		if t.Tag == tag {
			return t, true
		}
		if len(t.TLVs) > 0 {
			if f, ok := Find(t.TLVs, tag); ok {
				return f, true
			}
		}
	}
	return TLV{}, false
}

// Walk calls fn for every data object, depth first, parents before children.
func Walk(tlvs []TLV, fn func(TLV)) {
	for _, t := range tlvs {
		fn(t)
		Walk(t.TLVs, fn)
	}
}

// TagList parses a list of tags without lengths or values, such as the Static
// Data Authentication Tag List (9F4A).
func TagList(b []byte) ([]string, error) {
	var tags []string
	for off := 0; off < len(b); {
		tag, n, err := readTag(b[off:])
		if err != nil {
			err.Offset += off
			return nil, err
		}
		tags = append(tags, tagString(tag))
		off += n
	}
	return tags, nil
}

// DOLEntry is one element of a Data Object List: a tag and the length the
// card wants its value in.
type DOLEntry struct {
	Tag    string
	Length int
}

// ParseDOL parses a Data Object List (PDOL 9F38, CDOL1 8C, DDOL 9F49 …).
func ParseDOL(b []byte) ([]DOLEntry, error) {
	var dol []DOLEntry
	for off := 0; off < len(b); {
		tag, n, err := readTag(b[off:])
		if err != nil {
			err.Offset += off
			return nil, err
		}
		length, m, err := readLength(b[off+n:])
		if err != nil {
			err.Offset += off + n
			return nil, err
		}
		dol = append(dol, DOLEntry{Tag: tagString(tag), Length: length})
		off += n + m
	}
	return dol, nil
}

// DOLLength is the number of bytes the data built for dol takes.
func DOLLength(dol []DOLEntry) int {
	n := 0
	for _, e := range dol {
		n += e.Length
	}
	return n
}

// EachDOL calls fn for each entry of a Data Object List, without building
// a slice.
func EachDOL(b []byte, fn func(DOLEntry) error) error {
	for off := 0; off < len(b); {
		tag, n, serr := readTag(b[off:])
		if serr != nil {
			serr.Offset += off
			return serr
		}
		length, m, serr := readLength(b[off+n:])
		if serr != nil {
			serr.Offset += off + n
			return serr
		}
		if err := fn(DOLEntry{Tag: tagString(tag), Length: length}); err != nil {
			return err
		}
		off += n + m
	}
	return nil
}
