package emv

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv/tlv"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestBuildDOL(t *testing.T) {
	values := map[string][]byte{
		"9F02": {0x00, 0x00, 0x00, 0x00, 0x01, 0x50},             // n 12: 1.50
		"9F37": {0xDE, 0xAD, 0xBE, 0xEF},                         // b
		"5A":   {0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10}, // cn
		"9F4E": []byte("GATE"),                                   // ans
		"5F2A": {0x08, 0x26},                                     // n 3
	}
	lookup := func(tag string) ([]byte, bool) { v, ok := values[tag]; return v, ok }
	tests := []struct {
		name, dol, want string
	}{
		{"exact lengths", "9F02069F3704", "000000000150 DEADBEEF"},
		{"numeric longer: leftmost bytes dropped", "9F0204", "00000150"},
		{"numeric shorter: leading zeros", "5F2A04", "00000826"},
		{"binary longer: rightmost bytes dropped", "9F3702", "DEAD"},
		{"binary shorter: trailing zeros", "9F3706", "DEADBEEF0000"},
		{"compressed numeric shorter: trailing FF", "5A0A", "4761739001010010FFFF"},
		{"compressed numeric longer: rightmost dropped", "5A04", "47617390"},
		{"text shorter: trailing zeros", "9F4E06", "474154450000"},
		{"absent: zeros", "9F7C04", "00000000"},
		{"unknown tag: zeros", "DF810103", "000000"},
		{"constructed tag: zeros", "7002", "0000"},
		{"empty DOL", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dol, err := tlv.ParseDOL(unhex(t, tt.dol))
			require.NoError(t, err)
			got := buildDOLEntries(dol, lookup)
			require.Equal(t, strings.ReplaceAll(tt.want, " ", ""), fmt.Sprintf("%X", got))
		})
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		sw   uint16
		want error
	}{
		{0x6A82, ErrNotFound},
		{0x6985, ErrConditionsNotSatisfied},
		{0x6984, nil},
		{0x6A83, nil},
	}
	for _, tt := range tests {
		var err error = &StatusError{SW: tt.sw}
		wrapped := fmt.Errorf("gpo: %w", err)
		if tt.want != nil {
			require.ErrorIs(t, wrapped, tt.want, "%04X", tt.sw)
		}
		sw, ok := StatusWord(wrapped)
		require.True(t, ok)
		require.Equal(t, tt.sw, sw)
	}
	unknown := &StatusError{SW: 0x6F42}
	require.Equal(t, "emv: card status 6F42", unknown.Error())
	require.Equal(t, "emv: record not found (6A83)", (&StatusError{SW: 0x6A83}).Error())
	require.False(t, errors.Is(unknown, ErrNotFound))
}

func TestCommandBytes(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"select ppse", SelectByName(PPSEName), "00A404000E325041592E5359532E444446303100"},
		{"gpo empty pdol", GetProcessingOptions(nil), "80A8000002830000"},
		{"gpo", GetProcessingOptions([]byte{1, 2, 3}), "80A8000005830301020300"},
		{"read record", ReadRecord(2, 1), "00B2011400"},
		{"generate ac arqc cda", GenerateAC(ACTypeARQC|ACCDA, []byte{0xAA}), "80AE900001AA00"},
		{"internal authenticate", InternalAuthenticate([]byte{1, 2, 3, 4}), "00880000040102030400"},
		{"get response", GetResponse(0x1C), "00C000001C"},
	}
	for _, tt := range tests {
		got, err := tt.cmd.Bytes()
		require.NoError(t, err)
		require.Equal(t, tt.want, fmt.Sprintf("%X", got), tt.name)
	}
	_, err := Command{Data: make([]byte, 256)}.Bytes()
	require.Error(t, err)
}

func TestPANNeverPrintedInClear(t *testing.T) {
	c := Card{PAN: "4761739001010010", PSN: "01", Expiry: "311231"}
	require.Equal(t, "476173******0010", c.PAN.String())
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("tap", "card", c, "pan", c.PAN)
	fmt.Fprintf(&buf, "%v %s %+v %#v %q", c.PAN, c.PAN, c, c, c.PAN)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	buf.Write(b)
	require.NotContains(t, buf.String(), "4761739001010010")
	require.Contains(t, buf.String(), "476173******0010")

	require.Equal(t, "374245*****0126", PAN("374245455400126").Masked())
	require.Equal(t, "625094*********0123", PAN("6250941234567890123").Masked())
	require.Equal(t, "******7890", PAN("1234567890").Masked()) // short: at most half shown
}

func TestToken(t *testing.T) {
	c := Card{PAN: "4761739001010010", PSN: "01"}
	key := []byte("agency token key")
	// HMAC-SHA-256(key, "4761739001010010|01")[:16], computed independently
	// with: printf '4761739001010010|01' | openssl dgst -sha256 -hmac 'agency token key'
	require.Equal(t, "7f873d326108d27c46a621c0203cdd3c", c.Token(key).String())
	other := Card{PAN: "4761739001010010", PSN: "02"}
	require.NotEqual(t, c.Token(key), other.Token(key), "PSN is part of the identity")
	require.NotEqual(t, c.Token(key), c.Token([]byte("another agency")))
}

func TestTrack2(t *testing.T) {
	pan, exp, err := parseTrack2(unhex(t, "4761739001010010D31122011234500000"))
	require.NoError(t, err)
	require.Equal(t, PAN("4761739001010010"), pan)
	require.Equal(t, "3112", exp)
	pan, _, err = parseTrack2(unhex(t, "374245455400126D3112201123450000F"+"0"))
	require.NoError(t, err)
	require.Equal(t, PAN("374245455400126"), pan)
	for _, bad := range []string{"", "4761739001010010", "47617390D3112", "4761739001010010D31", "47617390010100A0D3112201"} {
		_, _, err := parseTrack2(unhex(t, bad+strings.Repeat("0", len(bad)%2)))
		require.Error(t, err, bad)
	}
}

func TestParsePAN(t *testing.T) {
	for in, want := range map[string]string{
		"4761739001010010":     "4761739001010010",
		"374245455400126F":     "374245455400126",
		"6212345678901234567F": "6212345678901234567",
	} {
		got, err := parsePAN(unhex(t, in))
		require.NoError(t, err, in)
		require.Equal(t, PAN(want), got)
	}
	for _, bad := range []string{"47617390", "4761739001F10010", "47617390010100A0", "F761739001010010", "47617390010100101234567890"} {
		_, err := parsePAN(unhex(t, bad))
		require.Error(t, err, bad)
	}
}

func TestExpired(t *testing.T) {
	tap := func(expiry, date string) *Tap {
		tp := &Tap{Card: Card{Expiry: expiry}}
		d, err := parseDate(date)
		require.NoError(t, err)
		tp.Started = d
		return tp
	}
	require.False(t, tap("261130", "2026-11-30").Expired(), "valid through its day")
	require.True(t, tap("261130", "2026-12-01").Expired())
	require.False(t, tap("260231", "2026-02-28").Expired(), "day 31 of February means the month's end")
	require.True(t, tap("260231", "2026-03-01").Expired())
	require.True(t, tap("", "2026-03-01").Expired(), "no expiry: treated as expired")
}

func parseDate(s string) (t time.Time, err error) { return time.Parse("2006-01-02", s) }
