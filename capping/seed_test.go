package capping

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const seedRules = `{
  "currency": "USD", "time_zone": "America/New_York", "service_day_start": "00:00",
  "week_start": "monday",
  "fares": [{"id": "single", "price": "1"}],
  "caps": [
    {"id": "day", "amount": "10", "period": {"kind": "service_day"}},
    {"id": "week", "amount": "25", "period": {"kind": "calendar_week"}}
  ]
}`

// The seed's promise: single $1, day $10, week $25.
func TestSeedExample(t *testing.T) {
	r := mustRules(t, seedRules)
	// trips returns a CSV with n trips per day on consecutive days from
	// Monday 2024-03-04, one per minute from 08:00.
	trips := func(perDay ...int) string {
		var b strings.Builder
		b.WriteString("token,time\n")
		for d, n := range perDay {
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "tok,2024-03-%02dT%02d:%02d:00-05:00\n", 4+d, 8+i/60, i%60)
			}
		}
		return b.String()
	}
	tests := []struct {
		name   string
		perDay []int
		want   string
	}{
		{"1 trip", []int{1}, "1.00"},
		{"3 trips", []int{3}, "3.00"},
		{"13 trips in a day", []int{13}, "10.00"},
		{"30 trips in a week", []int{5, 5, 5, 5, 5, 5}, "25.00"},
		{"30 trips in a week, 3 days", []int{10, 10, 10}, "25.00"},
		{"30 trips in a week, 13+13+4", []int{13, 13, 4}, "24.00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := mustSettle(t, r, mustTaps(t, r, trips(tc.perDay...)))
			require.Equal(t, tc.want, r.Currency.Format(st.Total))
		})
	}
}
