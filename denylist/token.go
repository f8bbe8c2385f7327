package denylist

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/faregate/faregate/rider"
)

// TokenSize is the length of a rider token in bytes.
const TokenSize = rider.TokenSize

// Token is the rider token (rider.Token): the deny list keys every entry by
// it.
type Token = rider.Token

// ParseToken parses 32 hexadecimal digits, upper or lower case.
func ParseToken(s string) (Token, error) {
	t, err := rider.ParseToken(s)
	if err != nil {
		// The same detail under the deny list's own sentinel.
		return t, fmt.Errorf("%w%s", ErrInvalidToken, strings.TrimPrefix(err.Error(), rider.ErrInvalidToken.Error()))
	}
	return t, nil
}

// fingerprintMul is the odd 64-bit constant (2^64 / golden ratio) that
// mixes the token's second half into its fingerprint.
const fingerprintMul = 0x9E3779B97F4A7C15

// Fingerprint returns the 64-bit fingerprint the gate-side set stores:
//
//	fp = BE64(t[0:8]) XOR (BE64(t[8:16]) × 0x9E3779B97F4A7C15 mod 2^64)
//
// For real tokens (HMAC output) this is as uniform as the token itself; the
// multiplication also spreads hand-made test tokens that differ only in their
// last bytes, so they neither collide nor crowd one bucket. Two different
// tokens share a fingerprint with probability 2^-64.
func Fingerprint(t Token) uint64 {
	return binary.BigEndian.Uint64(t[:8]) ^ binary.BigEndian.Uint64(t[8:])*fingerprintMul
}

// Fingerprints returns the sorted, de-duplicated fingerprints of tokens.
func Fingerprints(tokens []Token) []uint64 {
	fps := make([]uint64, len(tokens))
	for i, t := range tokens {
		fps[i] = Fingerprint(t)
	}
	slices.Sort(fps)
	return slices.Compact(fps)
}

// TokenFileError locates a bad line in a token file.
type TokenFileError struct {
	Line int
	Err  error
}

func (e *TokenFileError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *TokenFileError) Unwrap() error { return e.Err }

// maxTokenLine bounds one line of a token file.
const maxTokenLine = 4096

// ReadTokens reads a token file: one token per line as 32 hex digits, upper
// or lower case. Surrounding blanks, empty lines and lines starting with '#'
// are ignored; a CR before the LF and a UTF-8 byte order mark at the start
// are accepted. Duplicates are kept (the set
// builder removes them). The first bad line is reported as a
// *TokenFileError.
func ReadTokens(r io.Reader) ([]Token, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxTokenLine)
	var tokens []Token
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF")) // a UTF-8 byte order mark
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		t, err := ParseToken(string(b))
		if err != nil {
			return nil, &TokenFileError{Line: line, Err: err}
		}
		tokens = append(tokens, t)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &TokenFileError{Line: line + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrInvalidToken, maxTokenLine)}
		}
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	return tokens, nil
}

// ListID names a deny list (one per agency or environment: "metro",
// "metro-test"). It is 1 to 16 characters of [a-z0-9._-] starting with a
// letter or digit; gates refuse files of any other list.
type ListID string

// DefaultListID is the list id the CLI uses when none is given.
const DefaultListID ListID = "default"

// listIDSize is the width of the list id field in the file header.
const listIDSize = 16

// Valid reports whether id is a well-formed list id.
func (id ListID) Valid() error {
	if len(id) == 0 || len(id) > listIDSize {
		return fmt.Errorf("%w: want 1 to %d characters", ErrInvalidListID, listIDSize)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: only a-z, 0-9, '.', '_' and '-' (not first) are allowed", ErrInvalidListID)
		}
	}
	return nil
}
