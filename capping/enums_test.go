package capping

import (
	"encoding"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every rules enum reads and writes its RULES.json names, and refuses
// anything else with the list of names.
func TestEnumsText(t *testing.T) {
	type enum interface {
		encoding.TextMarshaler
		String() string
	}
	cases := []struct {
		name string
		v    enum
		ptr  encoding.TextUnmarshaler
	}{
		{"service_day", ServiceDay, new(PeriodKind)},
		{"calendar_week", CalendarWeek, new(PeriodKind)},
		{"calendar_month", CalendarMonth, new(PeriodKind)},
		{"rolling_days", RollingDays, new(PeriodKind)},
		{"sliding", Sliding, new(Anchor)},
		{"first_tap", FirstTap, new(Anchor)},
		{"include", HolidaysInclude, new(HolidayFilter)},
		{"exclude", HolidaysExclude, new(HolidayFilter)},
		{"only", HolidaysOnly, new(HolidayFilter)},
		{"free", TransferFree, new(TransferPrice)},
		{"difference", TransferDifference, new(TransferPrice)},
		{"paid_tap", FromPaidTap, new(MeasuredFrom)},
		{"first_tap", FromFirstTap, new(MeasuredFrom)},
	}
	for _, tc := range cases {
		b, err := tc.v.MarshalText()
		require.NoError(t, err)
		require.Equal(t, tc.name, string(b))
		require.Equal(t, tc.name, tc.v.String())
		require.NoError(t, tc.ptr.UnmarshalText([]byte(tc.name)))
		require.Equal(t, tc.name, tc.ptr.(fmt.Stringer).String())
		require.Error(t, tc.ptr.UnmarshalText([]byte("x"+tc.name)))
	}
	var k PeriodKind
	require.EqualError(t, k.UnmarshalText([]byte("fortnight")), `"fortnight" is not service_day, calendar_week, calendar_month or rolling_days`)
	_, err := PeriodKind(0).MarshalText()
	require.Error(t, err)

	// As JSON: the period of a compiled cap reads back.
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"rolling_days","days":7,"anchor":"first_tap"}}]}`)
	out, err := json.Marshal(r.Caps[0].Period)
	require.NoError(t, err)
	require.JSONEq(t, `{"Kind":"rolling_days","Days":7,"Anchor":"first_tap"}`, string(out))
	var p Period
	require.NoError(t, json.Unmarshal(out, &p))
	require.Equal(t, r.Caps[0].Period, p)
}
