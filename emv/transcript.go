package emv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/faregate/faregate/emv/tlv"
)

// Exchange is one command APDU and the card's response, status word
// included.
type Exchange struct {
	Command  []byte
	Response []byte
}

type exchangeJSON struct {
	Command  string `json:"command"`
	Response string `json:"response"`
}

// MarshalJSON encodes the exchange as upper-case hex strings.
func (e Exchange) MarshalJSON() ([]byte, error) {
	return json.Marshal(exchangeJSON{
		Command:  strings.ToUpper(hex.EncodeToString(e.Command)),
		Response: strings.ToUpper(hex.EncodeToString(e.Response)),
	})
}

// UnmarshalJSON decodes hex strings of either case. Other fields are
// refused.
func (e *Exchange) UnmarshalJSON(b []byte) error {
	var j exchangeJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var err error
	if e.Command, err = hex.DecodeString(j.Command); err != nil {
		return fmt.Errorf("emv: transcript command is not hex: %w", err)
	}
	if e.Response, err = hex.DecodeString(j.Response); err != nil {
		return fmt.Errorf("emv: transcript response is not hex: %w", err)
	}
	return nil
}

// Transcript is every exchange of a tap, in order. Its JSON form is
// [{"command":HEX,"response":HEX}] (docs/cli.md).
type Transcript []Exchange

// Masked returns a copy of the transcript with the PAN masked wherever it
// appears in clear: in the PAN (5A), track 1 and 2 data (56, 57, 9F6B, 9F1F,
// 9F20) and cardholder name (5F20) the digits between the first six and the
// last four become zeros, and names become spaces. The lengths stay the
// same, so the transcript still parses. Certificates are left alone: the ICC
// public key certificate (9F46) still binds the PAN cryptographically, so a
// masked transcript fails ODA with icc/pan_mismatch by design.
func (tr Transcript) Masked(pan PAN) Transcript {
	out := make(Transcript, len(tr))
	digits := []byte(pan.Digits())
	for i, e := range tr {
		out[i] = Exchange{Command: bytes.Clone(e.Command), Response: bytes.Clone(e.Response)}
		if len(digits) >= 10 && len(e.Response) > 2 {
			maskResponse(out[i].Response[:len(e.Response)-2], digits)
		}
	}
	return out
}

// maskResponse masks sensitive data objects in place, walking the TLV
// structure without decoding into new buffers.
func maskResponse(b []byte, digits []byte) {
	for len(b) > 0 {
		if b[0] == 0 {
			b = b[1:]
			continue
		}
		tag, value, rest, err := tlv.Split(b)
		if err != nil {
			return
		}
		switch {
		case tlv.Constructed(tag):
			maskResponse(value, digits)
		case tag == "5A" || tag == "57" || tag == "9F6B" || tag == "9F20":
			maskBCDPAN(value, digits)
		case tag == "56" || tag == "9F1F":
			maskASCIIPAN(value, digits)
		case tag == "5F20":
			for i := range value {
				value[i] = ' '
			}
		}
		b = rest
	}
}

// maskBCDPAN zeroes the middle digits of a BCD PAN at the start of v.
func maskBCDPAN(v []byte, digits []byte) {
	for i := 6; i < len(digits)-4 && i/2 < len(v); i++ {
		if i%2 == 0 {
			v[i/2] &= 0x0F
		} else {
			v[i/2] &= 0xF0
		}
	}
}

// maskASCIIPAN zeroes the middle digits of the PAN in track 1 data.
func maskASCIIPAN(v []byte, digits []byte) {
	idx := bytes.Index(v, digits)
	if idx < 0 {
		return
	}
	for i := 6; i < len(digits)-4; i++ {
		v[idx+i] = '0'
	}
}
