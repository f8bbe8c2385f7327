package capping

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAmounts(t *testing.T) {
	usd, err := LookupCurrency("USD")
	require.NoError(t, err)
	jpy, _ := LookupCurrency("JPY")
	bhd, _ := LookupCurrency("BHD")
	tests := []struct {
		c    Currency
		in   string
		want Amount
		out  string
		err  string
	}{
		{usd, "1.75", 175, "1.75", ""},
		{usd, "2", 200, "2.00", ""},
		{usd, "0.5", 50, "0.50", ""},
		{usd, "0", 0, "0.00", ""},
		{usd, "0.05", 5, "0.05", ""},
		{usd, "1234567.89", 123456789, "1234567.89", ""},
		{jpy, "200", 200, "200", ""},
		{bhd, "1.250", 1250, "1.250", ""},
		{usd, "1.755", 0, "", "more than 2 decimal places"},
		{jpy, "200.0", 0, "", "more than 0 decimal places"},
		{usd, "-1.00", 0, "", "invalid amount"},
		{usd, "+1.00", 0, "", "invalid amount"},
		{usd, "1e3", 0, "", "invalid amount"},
		{usd, "1,00", 0, "", "invalid amount"},
		{usd, ".5", 0, "", "invalid amount"},
		{usd, "5.", 0, "", "invalid amount"},
		{usd, "", 0, "", "empty"},
		{usd, "99999999999999999999", 0, "", "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.c.Code+" "+tc.in, func(t *testing.T) {
			got, err := tc.c.ParseAmount(tc.in)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrAmount)
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.out, tc.c.Format(got))
		})
	}
	require.Equal(t, "-1.05", usd.Format(-105))
	require.Equal(t, "-0.05", usd.Format(-5))
	_, err = LookupCurrency("XXX")
	require.ErrorIs(t, err, ErrCurrency)
}

func TestDates(t *testing.T) {
	for _, s := range []string{"1970-01-01", "2000-02-29", "2024-02-29", "2024-12-31", "1969-12-31", "2100-03-01", "0001-01-01"} {
		d, err := ParseDate(s)
		require.NoError(t, err)
		require.Equal(t, s, d.String())
		tm, _ := time.Parse(time.DateOnly, s)
		require.Equal(t, tm.Weekday(), d.Weekday(), s)
	}
	require.Equal(t, Date(0), DateOf(1970, 1, 1))
	for d := DateOf(1999, 1, 1); d < DateOf(2031, 1, 1); d++ {
		y, m, dd := d.Civil()
		require.Equal(t, d, DateOf(y, m, dd))
		f, l := d.monthBounds()
		require.True(t, f <= d && d <= l)
		_, _, fd := f.Civil()
		require.Equal(t, 1, fd)
		_, m2, _ := (l + 1).Civil()
		require.NotEqual(t, m, m2)
	}
	_, err := ParseDate("2024-02-30")
	require.ErrorIs(t, err, ErrDate)
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int
		msg  string
	}{
		{"not JSON", "{\n  \"currency\": \"USD\",\n  oops\n}", 3, "malformed JSON"},
		{"not an object", "[]", 1, "expected a JSON object"},
		{"unknown key", "{\"currency\":\"USD\",\n\"time_zone\":\"UTC\",\n\"capz\":[]}", 3, `capz: unknown key`},
		{"missing currency", `{"time_zone":"UTC"}`, 0, "currency: missing"},
		{"unknown currency", `{"currency":"usd","time_zone":"UTC"}`, 1, `unknown currency: "usd"`},
		{"missing zone", `{"currency":"USD"}`, 0, "time_zone: missing"},
		{"bad zone", `{"currency":"USD","time_zone":"Mars/Base"}`, 1, `unknown IANA time zone "Mars/Base"`},
		{"bad start", `{"currency":"USD","time_zone":"UTC","service_day_start":"4:30"}`, 1, "service_day_start"},
		{"bad start hour", `{"currency":"USD","time_zone":"UTC","service_day_start":"24:00"}`, 1, "service_day_start"},
		{"bad week start", `{"currency":"USD","time_zone":"UTC","week_start":"someday"}`, 1, "week_start"},
		{"bad holiday", `{"currency":"USD","time_zone":"UTC","public_holidays":["2024-13-01"]}`, 1, "public_holidays[0]"},
		{"fare price", "{\"currency\":\"USD\",\"time_zone\":\"UTC\",\n\"fares\":[\n {\"id\":\"a\",\"price\":\"1\"},\n {\"id\":\"b\",\"price\":\"1.234\"}]}", 4, `fares[1] "b": price: invalid amount`},
		{"fare duplicate", `{"currency":"USD","time_zone":"UTC","fares":[{"id":"a","price":"1"},{"id":"a","price":"1"}]}`, 1, "duplicate fare id"},
		{"fare empty list", `{"currency":"USD","time_zone":"UTC","fares":[{"id":"a","modes":[],"price":"1"}]}`, 1, "omit the list to mean all"},
		{"fare unknown field", "{\"currency\":\"USD\",\"time_zone\":\"UTC\",\"fares\":[\n{\"id\":\"a\",\"prize\":\"1\"}]}", 2, `unknown field "prize"`},
		{"fare wrong type", "{\"currency\":\"USD\",\"time_zone\":\"UTC\",\"fares\":[\n{\"id\":\"a\",\"price\":1.75}]}", 2, "fares[0].price: expected string"},
		{"cap both", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","rides":2,"period":{"kind":"service_day"}}]}`, 1, "either amount or rides"},
		{"cap neither", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","period":{"kind":"service_day"}}]}`, 1, "missing amount or rides"},
		{"cap zero", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"0","period":{"kind":"service_day"}}]}`, 1, "greater than zero"},
		{"cap period", "{\"currency\":\"USD\",\"time_zone\":\"UTC\",\"caps\":[\n\n{\"id\":\"week\",\"amount\":\"1\",\"period\":{\"kind\":\"fortnight\"}}]}", 3, `caps[0] "week": period.kind: "fortnight"`},
		{"cap rolling without days", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"rolling_days"}}]}`, 1, "period.days: required"},
		{"cap rolling days range", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"rolling_days","days":0}}]}`, 1, "between 1 and 366"},
		{"cap anchor", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"rolling_days","days":7,"anchor":"last_tap"}}]}`, 1, "period.anchor"},
		{"cap days on week", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"calendar_week","days":7}}]}`, 1, "only for rolling_days"},
		{"cap dow", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"service_day"},"days_of_week":["mon","xyz"]}]}`, 1, `"xyz" is not a day`},
		{"cap holidays", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1","period":{"kind":"service_day"},"holidays":"never"}]}`, 1, "holidays"},
		{"cap missing period", `{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","amount":"1"}]}`, 1, "period: missing"},
		{"cap missing id", `{"currency":"USD","time_zone":"UTC","caps":[{"amount":"1","period":{"kind":"service_day"}}]}`, 1, "caps[0]: id must be"},
		{"transfer window", `{"currency":"USD","time_zone":"UTC","transfers":[{"window_minutes":0,"price":"free"}]}`, 1, "window_minutes"},
		{"transfer missing window", `{"currency":"USD","time_zone":"UTC","transfers":[{"price":"free"}]}`, 1, "window_minutes: missing"},
		{"transfer price", `{"currency":"USD","time_zone":"UTC","transfers":[{"window_minutes":60,"price":"half"}]}`, 1, `price: "half"`},
		{"transfer measured", `{"currency":"USD","time_zone":"UTC","transfers":[{"window_minutes":60,"price":"free","measured_from":"last_tap"}]}`, 1, "measured_from"},
		{"transfer max", `{"currency":"USD","time_zone":"UTC","transfers":[{"window_minutes":60,"price":"free","max":0}]}`, 1, "omit it for unlimited"},
		{"trailing data", `{"currency":"USD","time_zone":"UTC"} {}`, 1, "data after"},
		{"truncated", `{"currency":"USD","time_zone":`, 1, "unexpected end"},
		{"duplicate key", "{\"currency\":\"USD\",\n\"currency\":\"EUR\"}", 2, "duplicate key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.doc))
			require.Error(t, err)
			require.ErrorIs(t, err, ErrRules)
			require.ErrorContains(t, err, tc.msg)
			var re *RulesError
			require.ErrorAs(t, err, &re)
			if tc.line > 0 {
				require.Equal(t, tc.line, re.Line, err.Error())
			}
			require.True(t, strings.HasPrefix(err.Error(), "capping: rules"), err.Error())
			require.Equal(t, 1, strings.Count(err.Error(), "capping:"), err.Error())
		})
	}
}

func TestParseRulesDefaults(t *testing.T) {
	r := mustRules(t, `{"currency":"EUR","time_zone":"Europe/Dublin","caps":[{"id":"m","amount":"100","period":{"kind":"calendar_month"}}],
		"transfers":[{"window_minutes":90,"price":"free"}]}`)
	require.Equal(t, time.Duration(0), r.DayStart)
	require.Equal(t, time.Monday, r.WeekStart)
	require.Equal(t, FromPaidTap, r.Transfers[0].MeasuredFrom)
	require.Equal(t, 0, r.Transfers[0].Max)
	require.True(t, r.Transfers[0].CappedTapOpensWindow)
	require.False(t, r.Transfers[0].CountsTowardCaps)
	require.Equal(t, "transfers[0]", r.Transfers[0].ID)
	require.Equal(t, HolidaysInclude, r.Caps[0].Holidays)
}

func TestParseTapsErrors(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"bus","modes":["bus"],"price":"1"}]}`)
	tests := []struct {
		name string
		csv  string
		line int
		msg  string
	}{
		{"empty", "", 1, "expected a header row"},
		{"unknown column", "token,time,colour\n", 1, `unknown column "colour"`},
		{"missing time column", "token,mode\n", 1, "time: required column missing"},
		{"duplicate column", "token,time,time\n", 1, "duplicate column"},
		{"bad time", "token,time,mode\na,2024-05-01T09:00:00Z,bus\na,yesterday,bus\n", 3, `time: "yesterday" is not RFC 3339`},
		{"time without offset", "token,time,mode\na,2024-05-01T09:00:00,bus\n", 2, "not RFC 3339"},
		{"missing token", "token,time,mode\n,2024-05-01T09:00:00Z,bus\n", 2, "token: must be"},
		{"bad fare", "token,time,fare\na,2024-05-01T09:00:00Z,1.001\n", 2, "fare: invalid amount"},
		{"negative fare", "token,time,fare\na,2024-05-01T09:00:00Z,-1\n", 2, "fare: invalid amount"},
		{"no fare", "token,time,mode\na,2024-05-01T09:00:00Z,ferry\n", 2, `no fare rule for mode "ferry"`},
		{"field count", "token,time,mode\na,2024-05-01T09:00:00Z\n", 2, "wrong number of fields"},
		{"bad received", "token,time,mode,received\na,2024-05-01T09:00:00Z,bus,soon\n", 2, "received"},
		{"bad zones", "token,time,mode,zones\na,2024-05-01T09:00:00Z,bus,1;;2\n", 2, "zones"},
		{"bad quote", "token,time,mode\na,\"2024-05-01T09:00:00Z,bus\n", 2, ""},
		{"long line", "token,time,mode\na," + strings.Repeat("x", 5000) + ",bus\n", 2, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTaps(strings.NewReader(tc.csv), r)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrTaps)
			require.ErrorContains(t, err, tc.msg)
			var te *TapsError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tc.line, te.Line, err.Error())
			require.Contains(t, err.Error(), "line ")
		})
	}
	taps, err := ParseTaps(strings.NewReader("\ufefftoken,time,mode,category,fare,zones,received\r\nA1,2024-05-01T09:00:00+02:00,bus,adult,2.50,1;2,2024-05-02T09:00:00Z\r\n"), r)
	require.NoError(t, err)
	require.Len(t, taps, 1)
	require.Equal(t, Amount(250), taps[0].Fare)
	require.Equal(t, []string{"1", "2"}, taps[0].Zones)
	require.Equal(t, 2, taps[0].Line)
	taps, err = ParseTaps(strings.NewReader("token,time\n"), r)
	require.NoError(t, err)
	require.Empty(t, taps)
}
