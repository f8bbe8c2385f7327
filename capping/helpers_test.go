package capping

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the host's zoneinfo

	"github.com/stretchr/testify/require"
)

func mustRules(t testing.TB, js string) *Rules {
	t.Helper()
	r, err := ParseRules([]byte(js))
	require.NoError(t, err)
	return r
}

func mustTaps(t testing.TB, r *Rules, csv string) []Tap {
	t.Helper()
	taps, err := ParseTaps(strings.NewReader(csv), r)
	require.NoError(t, err)
	return taps
}

func mustSettle(t testing.TB, r *Rules, taps []Tap) *Statement {
	t.Helper()
	st, err := Settle(r, taps)
	require.NoError(t, err)
	return st
}

// fmtCharges renders a rider's leg charges as "1.00 1.00 0.50 …".
func fmtCharges(r *Rules, rd *Rider) string {
	var b strings.Builder
	for i, l := range rd.Legs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.Currency.Format(l.Charged))
	}
	return b.String()
}

// tapsAt builds a CSV body with one tap per time for one token.
func tapsAt(token, mode string, times ...string) string {
	var b strings.Builder
	b.WriteString("token,time,mode\n")
	for _, tm := range times {
		fmt.Fprintf(&b, "%s,%s,%s\n", token, tm, mode)
	}
	return b.String()
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
