package acquirer

import (
	"encoding/hex"
	"fmt"

	"github.com/faregate/faregate/emv/tlv"
)

// Field55Tags are the EMV data objects the link sends in field 55, in this
// order, each when the tap has it. The list is an allow-list: anything else
// in the tap's EMV data — above all the card's identity, which must never
// travel in field 55 (56 track 1, 57 track 2, 5A PAN, 5F20 cardholder name,
// 5F24 expiry, 99 PIN data) — is dropped by tag, wherever it sits.
var Field55Tags = []string{
	"9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A",
	"82", "9F1A", "9F03", "9F33", "9F34", "84", "9F6E",
}

// maxField55 is field 55's maximum length in bytes (an LLL element).
const maxField55 = 255

// field55Index is the position of an allowed tag in Field55Tags, -1 for
// any other tag.
func field55Index(tag string) int {
	switch tag {
	case "9F26":
		return 0
	case "9F27":
		return 1
	case "9F10":
		return 2
	case "9F37":
		return 3
	case "9F36":
		return 4
	case "95":
		return 5
	case "9A":
		return 6
	case "9C":
		return 7
	case "9F02":
		return 8
	case "5F2A":
		return 9
	case "82":
		return 10
	case "9F1A":
		return 11
	case "9F03":
		return 12
	case "9F33":
		return 13
	case "9F34":
		return 14
	case "84":
		return 15
	case "9F6E":
		return 16
	}
	return -1
}

func field55Allowed(tag string) bool { return field55Index(tag) >= 0 }

// field55TagBytes are Field55Tags as bytes.
var field55TagBytes = func() [][]byte {
	out := make([][]byte, len(Field55Tags))
	for i, t := range Field55Tags {
		b, err := hex.DecodeString(t)
		if err != nil {
			panic("acquirer: bad tag in Field55Tags") // a constant table: cannot happen
		}
		out[i] = b
	}
	return out
}()

// Field55 builds field 55 from a tap's EMV data (BER-TLV, as tap.CardData.EMV
// holds it): the Field55Tags present, the first occurrence of each, primitive
// objects found at any depth, re-encoded flat in Field55Tags order. Errors
// never quote the input.
func Field55(emvData []byte) ([]byte, error) {
	if len(emvData) == 0 {
		return nil, nil
	}
	var found [17][]byte
	err := tlv.Each(emvData, func(tag string, v []byte) error {
		if i := field55Index(tag); i >= 0 && found[i] == nil {
			found[i] = v[:len(v):len(v)]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: field 55: %w", ErrRequest, err)
	}
	out := make([]byte, 0, maxField55)
	for i, v := range found {
		if v == nil {
			continue
		}
		out = append(out, field55TagBytes[i]...)
		switch n := len(v); {
		case n < 0x80:
			out = append(out, byte(n))
		case n <= 0xFF:
			out = append(out, 0x81, byte(n))
		default:
			return nil, fmt.Errorf("%w: field 55: tag %s of %d bytes", ErrRequest, Field55Tags[i], n)
		}
		out = append(out, v...)
		if len(out) > maxField55 {
			return nil, fmt.Errorf("%w: field 55: more than %d bytes", ErrRequest, maxField55)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
