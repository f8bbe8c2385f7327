package tapdata_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv/tapdata"
)

func TestParseAFL(t *testing.T) {
	tests := []struct {
		afl  string
		want []tapdata.AFLEntry
		ok   bool
	}{
		{"08010100", []tapdata.AFLEntry{{1, 1, 1, 0}}, true},
		{"0801020110010300", []tapdata.AFLEntry{{1, 1, 2, 1}, {2, 1, 3, 0}}, true},
		{"F0010101", []tapdata.AFLEntry{{30, 1, 1, 1}}, true},
		{"", []tapdata.AFLEntry{}, true},
		{"080101", nil, false},   // not a multiple of 4
		{"00010100", nil, false}, // SFI 0
		{"F8010100", nil, false}, // SFI 31
		{"09010100", nil, false}, // low bits of the SFI byte set
		{"08000100", nil, false}, // first record 0
		{"08030200", nil, false}, // last before first
		{"08010203", nil, false}, // more ODA records than records
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(tt.afl)
		require.NoError(t, err)
		got, err := tapdata.ParseAFL(b)
		if !tt.ok {
			require.ErrorIs(t, err, tapdata.ErrAFL, tt.afl)
			continue
		}
		require.NoError(t, err, tt.afl)
		require.Equal(t, tt.want, got, tt.afl)
	}
	e := tapdata.AFLEntry{SFI: 1, First: 2, Last: 4, ODA: 2}
	require.False(t, e.Flagged(1))
	require.True(t, e.Flagged(2))
	require.True(t, e.Flagged(3))
	require.False(t, e.Flagged(4))
}

func TestAIP(t *testing.T) {
	require.True(t, tapdata.AIP{0x40, 0}.SDA())
	require.True(t, tapdata.AIP{0x20, 0}.DDA())
	require.True(t, tapdata.AIP{0x01, 0}.CDA())
	require.False(t, tapdata.AIP{0x3C, 0}.CDA())
}

func TestMethodText(t *testing.T) {
	for _, s := range []string{"", "auto", "SDA", "DDA", "fDDA", "CDA", "none"} {
		var m tapdata.Method
		require.NoError(t, m.UnmarshalText([]byte(s)), s)
	}
	var m tapdata.Method
	require.Error(t, m.UnmarshalText([]byte("sda")))
	_, ok := tapdata.ParseMethod("none")
	require.False(t, ok, "none is no method to verify")
}

func TestParseDate(t *testing.T) {
	d, err := tapdata.ParseDate([]byte{0x26, 0x11, 0x23})
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), d)
	d, err = tapdata.ParseDate([]byte{0x99, 0x12, 0x31})
	require.NoError(t, err)
	require.Equal(t, 1999, d.Year())
	for _, bad := range [][]byte{{0x26, 0x11}, {0x26, 0x13, 0x01}, {0x26, 0x02, 0x30}, {0x26, 0x1A, 0x01}, {0x26, 0x01, 0x00}} {
		_, err := tapdata.ParseDate(bad)
		require.ErrorIs(t, err, tapdata.ErrDate, "%X", bad)
	}
}
