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

// Masked returns a copy of the transcript with card data masked by what
// the bytes are, wherever they appear in any response, whatever the kernel
// made of them (a torn tap, a malformed record or GPO): in the PAN (5A) and
// track 2 data (57, 9F6B) the PAN's digits between its first six and last
// four become zeros and the discretionary data after the expiry and service
// code too; in track 1 data (56) the same, and the name becomes spaces;
// track 1 and 2 discretionary data (9F1F, 9F20) become zeros; the
// cardholder name (5F20) spaces. A response that does not parse as BER-TLV
// past some point has that remainder zeroed: it could hold anything. The
// lengths stay the same, so the transcript still parses. Certificates are
// left alone: the ICC public key certificate (9F46) still binds the PAN
// cryptographically, so a masked transcript fails ODA with icc/pan_mismatch
// by design.
func (tr Transcript) Masked() Transcript {
	out := make(Transcript, len(tr))
	for i, e := range tr {
		out[i] = Exchange{Command: bytes.Clone(e.Command), Response: bytes.Clone(e.Response)}
		if len(e.Response) > 2 {
			maskResponse(out[i].Response[:len(e.Response)-2])
		}
	}
	return out
}

// maskResponse masks sensitive data objects in place, walking the TLV
// structure without decoding into new buffers.
func maskResponse(b []byte) {
	for len(b) > 0 {
		if b[0] == 0x00 || b[0] == 0xFF { // padding between objects
			b = b[1:]
			continue
		}
		tag, value, rest, err := tlv.Split(b)
		if err != nil {
			clear(b)
			return
		}
		switch {
		case tlv.Constructed(tag):
			maskResponse(value)
		case maskers[tag] != nil: // the Sensitive tags of the tag table
			maskers[tag](value)
		}
		b = rest
	}
}

// maskPAN masks a BCD PAN (5A).
func maskPAN(v []byte) { maskBCDPAN(v, len(bcdDigits(v))) }

// maskDiscretionary2 zeroes track 2 discretionary data (9F20).
func maskDiscretionary2(v []byte) { maskNibbles(v, 0) }

// maskName blanks a cardholder name (5F20).
func maskName(v []byte) {
	for i := range v {
		v[i] = ' '
	}
}

// bcdDigits returns the nibbles of v up to the first that is not a digit.
func bcdDigits(v []byte) []byte {
	var d []byte
	for i := 0; i < 2*len(v); i++ {
		n := nibble(v, i)
		if n > 9 {
			break
		}
		d = append(d, n)
	}
	return d
}

func nibble(v []byte, i int) byte {
	if i%2 == 0 {
		return v[i/2] >> 4
	}
	return v[i/2] & 0x0F
}

func setNibble(v []byte, i int, n byte) {
	if i%2 == 0 {
		v[i/2] = v[i/2]&0x0F | n<<4
	} else {
		v[i/2] = v[i/2]&0xF0 | n
	}
}

// panKeep reports whether digit i of an n-digit PAN stays visible: the
// first six and the last four, and never more than half of a short one.
func panKeep(i, n int) bool {
	if n < 10 {
		return false
	}
	return i < 6 || i >= n-4
}

// maskBCDPAN zeroes the hidden digits of the n-digit BCD PAN at the start of v.
func maskBCDPAN(v []byte, n int) {
	for i := range n {
		if !panKeep(i, n) {
			setNibble(v, i, 0)
		}
	}
}

// maskNibbles zeroes every digit nibble of v from nibble from on.
func maskNibbles(v []byte, from int) {
	for i := from; i < 2*len(v); i++ {
		if nibble(v, i) <= 9 {
			setNibble(v, i, 0)
		}
	}
}

// maskTrack2 masks track 2 equivalent data: PAN D YYMM SSS discretionary F.
func maskTrack2(v []byte) {
	n := len(bcdDigits(v)) // the PAN ends at the separator D
	if n == 2*len(v) || nibble(v, n) != 0xD {
		maskNibbles(v, 0) // no separator: not track 2 as we know it
		return
	}
	maskBCDPAN(v, n)
	maskNibbles(v, n+1+4+3)
}

// maskTrack1 masks track 1 data: B PAN ^ NAME ^ YYMM SSS discretionary.
func maskTrack1(v []byte) {
	first := bytes.IndexByte(v, '^')
	if first < 1 {
		maskASCIIDigits(v)
		return
	}
	pan := v[1:first]
	for i := range pan {
		if !panKeep(i, len(pan)) && pan[i] >= '0' && pan[i] <= '9' {
			pan[i] = '0'
		}
	}
	rest := v[first+1:]
	second := bytes.IndexByte(rest, '^')
	if second < 0 {
		maskASCIIDigits(rest)
		return
	}
	for i := range second {
		rest[i] = ' '
	}
	if tail := rest[second+1:]; len(tail) > 7 {
		maskASCIIDigits(tail[7:])
	}
}

func maskASCIIDigits(v []byte) {
	for i, c := range v {
		if c >= '0' && c <= '9' {
			v[i] = '0'
		}
	}
}
