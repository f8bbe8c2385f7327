package emv

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/faregate/faregate/rider"
)

// PAN is a primary account number. Every way of printing it masks it (first
// six and last four digits at most); Digits is the only way to the clear
// value and belongs in the payment vault and the sealing code.
type PAN string

// Digits returns the clear PAN. Never log, store or print it.
func (p PAN) Digits() string { return string(p) }

// Masked returns the PAN with everything but the first six and last four
// digits replaced by '*'; short numbers show at most half their digits.
func (p PAN) Masked() string {
	s := string(p)
	n := len(s)
	head, tail := 6, 4
	if n < 13 {
		head, tail = 0, min(4, n/2)
	}
	return s[:head] + strings.Repeat("*", n-head-tail) + s[n-tail:]
}

func (p PAN) String() string               { return p.Masked() }
func (p PAN) GoString() string             { return `emv.PAN("` + p.Masked() + `")` }
func (p PAN) LogValue() slog.Value         { return slog.StringValue(p.Masked()) }
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// Card is the identity of the card in a tap. Printing, logging or
// marshalling it masks the PAN.
type Card struct {
	PAN    PAN    `json:"pan"`
	PSN    string `json:"psn"`    // two digits; "00" when the card has no 5F34
	Expiry string `json:"expiry"` // YYMMDD
}

// LogValue logs a Card without its PAN.
func (c Card) LogValue() slog.Value {
	return slog.GroupValue(slog.String("pan", c.PAN.Masked()), slog.String("psn", c.PSN), slog.String("expiry", c.Expiry))
}

// Token is the rider's identity everywhere outside the payment vault
// (rider.Token).
type Token = rider.Token

// Token computes the card's rider token: HMAC-SHA-256(key, PAN digits "|"
// PSN digits), truncated to 16 bytes. key is the agency's token key.
func (c Card) Token(key []byte) Token { return rider.NewToken(key, string(c.PAN), c.PSN) }

var errBadPAN = errors.New("emv: malformed PAN")

// decodeCN decodes compressed numeric digits, stopping at the F padding.
func decodeCN(b []byte) (string, error) {
	digits := make([]byte, 0, 2*len(b))
	for i, c := range b {
		for j, nib := range [2]byte{c >> 4, c & 0x0F} {
			switch {
			case nib <= 9:
				digits = append(digits, '0'+nib)
			case nib == 0xF:
				// Padding: only trailing Fs are legal.
				for _, rest := range b[i+1:] {
					if rest != 0xFF {
						return "", errBadPAN
					}
				}
				if j == 0 && c&0x0F != 0x0F {
					return "", errBadPAN
				}
				return string(digits), nil
			default:
				return "", errBadPAN
			}
		}
	}
	return string(digits), nil
}

// parsePAN decodes 5A and checks its shape: 12 to 19 digits.
func parsePAN(b []byte) (PAN, error) {
	d, err := decodeCN(b)
	if err != nil || len(d) < 12 || len(d) > 19 {
		return "", errBadPAN
	}
	return PAN(d), nil
}

// parseTrack2 splits Track 2 Equivalent Data (57) into PAN and expiry YYMM:
// PAN digits, separator D, YYMM, then service code and discretionary data.
func parseTrack2(b []byte) (PAN, string, error) {
	digits := make([]byte, 0, 2*len(b))
	sep := -1
	for _, c := range b {
		for _, nib := range [2]byte{c >> 4, c & 0x0F} {
			switch {
			case nib <= 9:
				digits = append(digits, '0'+nib)
			case nib == 0xD && sep < 0:
				sep = len(digits)
				digits = append(digits, 'D')
			default:
				digits = append(digits, 'X') // padding or junk after the expiry
			}
		}
	}
	if sep < 12 || sep > 19 || len(digits) < sep+5 {
		return "", "", errBadPAN
	}
	for _, c := range digits[:sep+5] {
		if (c < '0' || c > '9') && c != 'D' {
			return "", "", errBadPAN
		}
	}
	exp := string(digits[sep+1 : sep+5])
	return PAN(digits[:sep]), exp, nil
}
