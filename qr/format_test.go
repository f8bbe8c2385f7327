package qr

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// RFC 9285 section 4.3 and 4.4 examples.
func TestBase45Vectors(t *testing.T) {
	for _, v := range []struct{ bin, text string }{
		{"AB", "BB8"},
		{"Hello!!", "%69 VD92EX0"},
		{"base-45", "UJCLQE7W581"},
		{"ietf!", "QED8WEX0"},
		{"", ""},
	} {
		require.Equal(t, v.text, string(appendBase45(nil, []byte(v.bin))), v.bin)
		got, err := decodeBase45(nil, v.text)
		require.NoError(t, err, v.text)
		require.Equal(t, v.bin, string(got))
	}
}

func TestBase45Strict(t *testing.T) {
	for _, in := range []string{
		"A",       // length 1 mod 3
		"GGW",     // 65536+: 16 + 16*45 + 32*2025 = 65536
		":::",     // 44 + 44*45 + 44*2025 = 91124
		"GGWBB8",  // the bad group first
		"BB8a",    // lower case is not in the alphabet
		"BB8\n00", // nor is a newline
		"BB8:6",   // final pair above 255: 44 + 6*45 = 314
	} {
		_, err := decodeBase45(nil, in)
		require.ErrorIs(t, err, errBase45, "%q", in)
	}
	// Every byte pair round-trips.
	for n := 0; n <= 0xFFFF; n += 257 {
		b := []byte{byte(n >> 8), byte(n)}
		got, err := decodeBase45(nil, string(appendBase45(nil, b)))
		require.NoError(t, err)
		require.Equal(t, b, got)
	}
}

func TestMaxTextSize(t *testing.T) {
	require.Equal(t, 197, MinPayloadSize)
	require.Equal(t, 213, MaxPayloadSize)
	require.Equal(t, len(TextPrefix)+base45Len(MaxPayloadSize), MaxTextSize)
}
