// Package rider holds the rider's identity outside the payment vault: the
// token, a keyed hash of the card's PAN and PAN sequence number. Every part
// of faregate (the kernel, the gate, the deny list, the back office, QR
// credentials) names a rider by this one type.
package rider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// TokenSize is the length of a rider token in bytes.
const TokenSize = 16

// ErrInvalidToken reports a token that is not 32 hexadecimal digits.
var ErrInvalidToken = errors.New("rider: invalid token")

// Token is a rider token: the first 16 bytes of HMAC-SHA-256 keyed with the
// agency's token key over the PAN digits, "|" and the PAN sequence number
// (docs/architecture.md). It is not a secret and never reveals the PAN; the
// zero Token means "unknown" (a card not read far enough).
type Token [TokenSize]byte

// NewToken computes the token of a card: HMAC-SHA-256(key, pan "|" psn)
// truncated to 16 bytes. pan is the PAN's digits, psn its two-digit
// sequence number ("00" when the card has none); key is the agency's token
// key.
func NewToken(key []byte, pan, psn string) Token {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(pan))
	m.Write([]byte{'|'})
	m.Write([]byte(psn))
	var t Token
	copy(t[:], m.Sum(nil))
	return t
}

// ParseToken parses 32 hexadecimal digits, upper or lower case.
func ParseToken(s string) (Token, error) {
	var t Token
	if len(s) != 2*TokenSize {
		return t, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrInvalidToken, 2*TokenSize, len(s))
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return Token{}, fmt.Errorf("%w: not hexadecimal", ErrInvalidToken)
	}
	return t, nil
}

// IsZero reports whether t is the zero token (unknown rider).
func (t Token) IsZero() bool { return t == Token{} }

// String returns the token as 32 lower-case hex digits.
func (t Token) String() string { return hex.EncodeToString(t[:]) }

// MarshalText encodes the token as 32 lower-case hex digits.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses 32 hex digits, as ParseToken.
func (t *Token) UnmarshalText(b []byte) error {
	v, err := ParseToken(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
