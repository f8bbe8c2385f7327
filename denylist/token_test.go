package denylist

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseToken(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"lower", "00112233445566778899aabbccddeeff", true},
		{"upper", "00112233445566778899AABBCCDDEEFF", true},
		{"mixed", "00112233445566778899aAbBcCdDeEfF", true},
		{"short", "00112233445566778899aabbccddeef", false},
		{"long", "00112233445566778899aabbccddeeff00", false},
		{"not hex", "00112233445566778899aabbccddeefg", false},
		{"blank inside", "00112233445566778899aabbccdd eff", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken(tt.in)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalidToken)
				return
			}
			require.NoError(t, err)
			require.Equal(t, strings.ToLower(tt.in), tok.String())
		})
	}
}

func TestFingerprint(t *testing.T) {
	// Pinned: the fingerprint is part of the file format.
	tok, err := ParseToken("00112233445566778899aabbccddeeff")
	require.NoError(t, err)
	hi, lo, mul := uint64(0x0011223344556677), uint64(0x8899aabbccddeeff), uint64(0x9E3779B97F4A7C15)
	require.Equal(t, hi^lo*mul, Fingerprint(tok))
	require.Equal(t, uint64(0xd54ba592a0fb789c), Fingerprint(tok))

	// Sequential test tokens neither collide nor share a bucket.
	a, _ := ParseToken("00000000000000000000000000000001")
	b, _ := ParseToken("00000000000000000000000000000002")
	require.NotEqual(t, Fingerprint(a), Fingerprint(b))
	require.NotEqual(t, Fingerprint(a)>>remBits, Fingerprint(b)>>remBits)
}

func TestReadTokens(t *testing.T) {
	in := "# late declines\n" +
		"00112233445566778899aabbccddeeff\r\n" +
		"\n" +
		"  FFEEDDCCBBAA99887766554433221100  \n" +
		"00112233445566778899aabbccddeeff\n"
	tokens, err := ReadTokens(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, tokens, 3)
	require.Equal(t, "ffeeddccbbaa99887766554433221100", tokens[1].String())

	tests := []struct {
		name, in string
		line     int
	}{
		{"bad hex", "00112233445566778899aabbccddeeff\nzz112233445566778899aabbccddeeff\n", 2},
		{"short", "\n\n0011\n", 3},
		{"two per line", "00112233445566778899aabbccddeeff 00112233445566778899aabbccddeeff\n", 1},
		{"too long", strings.Repeat("0", 5000) + "\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTokens(strings.NewReader(tt.in))
			require.ErrorIs(t, err, ErrInvalidToken)
			var te *TokenFileError
			require.True(t, errors.As(err, &te))
			require.Equal(t, tt.line, te.Line)
		})
	}
}

func TestListIDValid(t *testing.T) {
	for _, id := range []ListID{"default", "metro", "metro-test", "a", "x.y_z-1", "0123456789abcdef"} {
		require.NoError(t, id.Valid(), id)
	}
	for _, id := range []ListID{"", "Metro", "-metro", "0123456789abcdefg", "metro test", "métro"} {
		require.ErrorIs(t, id.Valid(), ErrInvalidListID, id)
	}
}
