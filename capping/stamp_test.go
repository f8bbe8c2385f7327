package capping

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStampAsWritten(t *testing.T) {
	for _, s := range []string{
		"2025-03-10T08:00:00Z", "2025-03-10t08:00:00z", "2025-03-10T08:00:00+00:00", "2025-03-10T08:00:00-00:00",
		"2025-03-10T08:00:00.000+00:00", "2025-03-10T08:00:00.5-05:00", "2025-03-10T08:00:00.123456789+14:00",
		"1969-07-20T20:17:40Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "2024-02-29T12:00:00+05:30",
	} {
		st, ok := parseStamp([]byte(s))
		require.True(t, ok, s)
		require.Equal(t, s, string(st.appendText(nil)))
		want, err := time.Parse(time.RFC3339Nano, strings.NewReplacer("t", "T", "z", "Z").Replace(s))
		require.NoError(t, err)
		require.True(t, want.Equal(st.time()), s)
	}
	for _, s := range []string{
		"", "2025-03-10", "2025-03-10T08:00:00", "2025-03-10 08:00:00Z", "2025-02-29T08:00:00Z", "2025-03-10T24:00:00Z",
		"2025-03-10T08:00:60Z", "2025-03-10T08:00:00.Z", "2025-03-10T08:00:00.1234567890Z", "2025-03-10T08:00:00+24:00",
		"2025-03-10T08:00:00+0100", "+2025-03-10T08:00:00Z", "2025-13-10T08:00:00Z", "2025-03-10T08:00:00ZZ",
	} {
		_, ok := parseStamp([]byte(s))
		require.False(t, ok, s)
	}
}

// FuzzStamp: whatever parses prints back exactly as written and is the
// instant Go's time package reads from it.
func FuzzStamp(f *testing.F) {
	f.Add("2025-03-10T08:00:00.000+00:00")
	f.Add("1969-07-21t02:56:15z")
	f.Add("0000-01-01T00:00:00-00:00")
	f.Fuzz(func(t *testing.T, s string) {
		st, ok := parseStamp([]byte(s))
		if !ok {
			return
		}
		if got := string(st.appendText(nil)); got != s {
			t.Fatalf("%q printed as %q", s, got)
		}
		want, err := time.Parse(time.RFC3339Nano, strings.NewReplacer("t", "T", "z", "Z").Replace(s))
		if err != nil {
			t.Fatalf("%q: Go refuses it: %v", s, err)
		}
		if !want.Equal(st.time()) {
			t.Fatalf("%q: %v, Go reads %v", s, st.time(), want)
		}
	})
}

func TestReadTapTableStopsOnCancel(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"bus","price":"1"}]}`)
	csv := "token,time\n" + strings.Repeat("a,2024-05-01T09:00:00Z\n", 100000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ReadTapTable(ctx, bytes.NewReader([]byte(csv)), r, 2)
	require.ErrorIs(t, err, context.Canceled)
}
