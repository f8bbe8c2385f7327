package acquirer

import (
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

func field55Allowed(tag string) bool {
	switch tag {
	case "9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A",
		"82", "9F1A", "9F03", "9F33", "9F34", "84", "9F6E":
		return true
	}
	return false
}

// Field55 builds field 55 from a tap's EMV data (BER-TLV, as tap.CardData.EMV
// holds it): the Field55Tags present, the first occurrence of each, primitive
// objects found at any depth, re-encoded flat in Field55Tags order. Errors
// never quote the input.
func Field55(emvData []byte) ([]byte, error) {
	if len(emvData) == 0 {
		return nil, nil
	}
	if err := tlv.Check(emvData); err != nil {
		return nil, fmt.Errorf("%w: field 55: %w", ErrRequest, err)
	}
	found := make(map[string][]byte, len(Field55Tags))
	err := tlv.Each(emvData, func(tag string, v []byte) error {
		if !field55Allowed(tag) {
			return nil
		}
		if _, dup := found[tag]; !dup {
			found[tag] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: field 55: %w", ErrRequest, err)
	}
	var out []byte
	for _, tag := range Field55Tags {
		v, ok := found[tag]
		if !ok {
			continue
		}
		b, err := tlv.Encode(tlv.TLV{Tag: tag, Value: v})
		if err != nil {
			return nil, fmt.Errorf("%w: field 55: tag %s", ErrRequest, tag)
		}
		out = append(out, b...)
	}
	if len(out) > maxField55 {
		return nil, fmt.Errorf("%w: field 55: %d bytes, more than %d", ErrRequest, len(out), maxField55)
	}
	return out, nil
}
