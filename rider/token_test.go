package rider_test

import (
	"encoding/json"
	"testing"

	"github.com/faregate/faregate/rider"
	"github.com/stretchr/testify/require"
)

func TestNewTokenIsHMACOfPANAndPSN(t *testing.T) {
	key := []byte("agency token key")
	a := rider.NewToken(key, "4761739001010010", "01")
	require.Equal(t, a, rider.NewToken(key, "4761739001010010", "01"), "deterministic")
	require.NotEqual(t, a, rider.NewToken(key, "4761739001010010", "02"), "PSN is part of the identity")
	require.NotEqual(t, a, rider.NewToken([]byte("other key"), "4761739001010010", "01"), "keyed")
	// "476173900101001|001" must not collide with "4761739001010010|01".
	require.NotEqual(t, a, rider.NewToken(key, "476173900101001", "001"))
	require.NotContains(t, a.String(), "4761739001010010")
}

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00112233445566778899aabbccddeeff", true},
		{"00112233445566778899AABBCCDDEEFF", true},
		{"00112233445566778899aabbccddee", false},
		{"00112233445566778899aabbccddeeff00", false},
		{"g0112233445566778899aabbccddeeff", false},
		{"", false},
	} {
		tok, err := rider.ParseToken(tc.in)
		if !tc.ok {
			require.ErrorIs(t, err, rider.ErrInvalidToken, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, "00112233445566778899aabbccddeeff", tok.String())
	}
}

func TestTokenJSONRoundTrip(t *testing.T) {
	tok := rider.NewToken([]byte("k"), "5413330089010608", "00")
	b, err := json.Marshal(map[string]rider.Token{"token": tok})
	require.NoError(t, err)
	var back map[string]rider.Token
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, tok, back["token"])
	require.Error(t, json.Unmarshal([]byte(`{"token":"zz"}`), &back))
	require.False(t, tok.IsZero())
	require.True(t, rider.Token{}.IsZero())
}
