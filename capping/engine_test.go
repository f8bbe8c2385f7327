package capping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func rate(t *testing.T, r *Rules, csv string) *Rider {
	t.Helper()
	st := mustSettle(t, r, mustTaps(t, r, csv))
	require.Len(t, st.Riders, 1)
	checkInvariants(t, r, &st.Riders[0])
	return &st.Riders[0]
}

func days(r *Rules, rd *Rider) string {
	var out []string
	for _, d := range rd.Days {
		out = append(out, d.Day.String()+"="+r.Currency.Format(d.Charged))
	}
	return strings.Join(out, " ")
}

func runs(r *Rules, rd *Rider) string {
	var out []string
	for _, s := range rd.Settlements {
		out = append(out, s.Run.String()+"="+r.Currency.Format(s.Charged))
	}
	return strings.Join(out, " ")
}

func TestServiceDay(t *testing.T) {
	london := mustRules(t, `{"currency":"GBP","time_zone":"Europe/London","service_day_start":"04:30"}`)
	ny := mustRules(t, `{"currency":"USD","time_zone":"America/New_York","service_day_start":"02:30"}`)
	nyLate := mustRules(t, `{"currency":"USD","time_zone":"America/New_York","service_day_start":"01:30"}`)
	syd := mustRules(t, `{"currency":"AUD","time_zone":"Australia/Sydney","service_day_start":"04:00"}`)
	tests := []struct {
		r    *Rules
		at   string
		want string
	}{
		{london, "2025-03-11T04:29:59Z", "2025-03-10"},
		{london, "2025-03-11T04:30:00Z", "2025-03-11"},
		{london, "2025-03-11T03:59:00Z", "2025-03-10"},
		{london, "2025-03-11T04:31:00Z", "2025-03-11"},
		// Spring forward (2025-03-30 01:00 GMT -> 02:00 BST): the service day
		// of Saturday 29 March lasts 23 hours, to 04:30 BST.
		{london, "2025-03-30T03:29:00Z", "2025-03-29"}, // 04:29 BST
		{london, "2025-03-30T03:30:00Z", "2025-03-30"}, // 04:30 BST
		{london, "2025-03-30T04:29:00+01:00", "2025-03-29"},
		// Fall back (2025-10-26 02:00 BST -> 01:00 GMT): Saturday 25 October
		// lasts 25 hours, to 04:30 GMT.
		{london, "2025-10-26T04:29:00Z", "2025-10-25"},
		{london, "2025-10-26T04:30:00Z", "2025-10-26"},
		{london, "2025-10-26T01:30:00+01:00", "2025-10-25"},
		{london, "2025-10-26T01:30:00Z", "2025-10-25"},
		// A start inside the DST gap (02:30 on 2025-03-09 does not exist in
		// New York): the day starts when the clock jumps, 03:00 EDT, the
		// first instant whose wall clock is at or past 02:30.
		{ny, "2025-03-09T01:59:59-05:00", "2025-03-08"},
		{ny, "2025-03-09T03:00:00-04:00", "2025-03-09"},
		{ny, "2025-03-09T03:29:00-04:00", "2025-03-09"},
		{ny, "2025-03-10T02:29:00-04:00", "2025-03-09"},
		{ny, "2025-03-10T02:30:00-04:00", "2025-03-10"},
		// A start inside the repeated hour (01:30 on 2025-11-02 happens twice):
		// the day starts at the first occurrence, 01:30 EDT.
		{nyLate, "2025-11-02T01:29:00-04:00", "2025-11-01"},
		{nyLate, "2025-11-02T01:30:00-04:00", "2025-11-02"},
		{nyLate, "2025-11-02T01:30:00-05:00", "2025-11-02"},
		{syd, "2020-10-04T03:59:00+11:00", "2020-10-03"},
		{syd, "2020-10-04T04:00:00+11:00", "2020-10-04"},
	}
	for _, tc := range tests {
		t.Run(tc.at, func(t *testing.T) {
			require.Equal(t, tc.want, tc.r.ServiceDay(ts(tc.at)).String())
			e := NewEngine(tc.r)
			require.Equal(t, tc.want, e.day(ts(tc.at).Unix()).String(), "day table")
			require.Equal(t, tc.want, e.day(ts(tc.at).Unix()).String(), "day table, cached")
		})
	}
}

func TestDayTableMatchesSlowPath(t *testing.T) {
	for _, tz := range []string{"Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"} {
		r := mustRules(t, `{"currency":"USD","time_zone":"`+tz+`","service_day_start":"02:30"}`)
		e := NewEngine(r)
		start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		for u := start; u < start+400*86400; u += 1789 {
			require.Equal(t, r.serviceDaySlow(u), e.day(u), "%s %d", tz, u)
		}
	}
}

// DST nights: a daily cap over a 23-hour and a 25-hour service day.
func TestDSTNights(t *testing.T) {
	r := mustRules(t, `{"currency":"GBP","time_zone":"Europe/London","service_day_start":"04:30",
		"fares":[{"id":"f","price":"3.00"}],
		"caps":[{"id":"day","amount":"8.00","period":{"kind":"service_day"}}]}`)
	// Spring: Saturday 2025-03-29 04:30 GMT to Sunday 04:30 BST (23 h).
	rd := rate(t, r, tapsAt("a", "tube",
		"2025-03-29T05:00:00Z", "2025-03-29T12:00:00Z", "2025-03-30T00:30:00Z",
		"2025-03-30T04:29:00+01:00", "2025-03-30T04:30:00+01:00"))
	require.Equal(t, "3.00 3.00 2.00 0.00 3.00", fmtCharges(r, rd))
	require.Equal(t, "2025-03-29=8.00 2025-03-30=3.00", days(r, rd))
	// Autumn: Saturday 2025-10-25 04:30 BST to Sunday 04:30 GMT (25 h); the
	// hour 01:00-02:00 happens twice and both belong to Saturday.
	rd = rate(t, r, tapsAt("a", "tube",
		"2025-10-25T05:00:00+01:00", "2025-10-26T01:30:00+01:00", "2025-10-26T01:30:00Z",
		"2025-10-26T04:29:00Z", "2025-10-26T04:30:00Z"))
	require.Equal(t, "3.00 3.00 2.00 0.00 3.00", fmtCharges(r, rd))
	require.Equal(t, "2025-10-25=8.00 2025-10-26=3.00", days(r, rd))
}

func TestWeekAndMonthBoundaries(t *testing.T) {
	const caps = `"fares":[{"id":"f","price":"5"}],"caps":[{"id":"w","amount":"12","period":{"kind":"calendar_week"}},{"id":"m","amount":"30","period":{"kind":"calendar_month"}}]}`
	sunday := mustRules(t, `{"currency":"USD","time_zone":"UTC","week_start":"sunday",`+caps)
	monday := mustRules(t, `{"currency":"USD","time_zone":"UTC","week_start":"monday",`+caps)
	// Sat 2024-03-02, Sun 03-03, Mon 03-04.
	taps := tapsAt("a", "bus", "2024-03-02T09:00:00Z", "2024-03-02T10:00:00Z", "2024-03-03T09:00:00Z", "2024-03-04T09:00:00Z")
	require.Equal(t, "5.00 5.00 5.00 5.00", fmtCharges(sunday, rate(t, sunday, taps)), "Sunday starts a week")
	require.Equal(t, "5.00 5.00 2.00 5.00", fmtCharges(monday, rate(t, monday, taps)), "Monday starts a week")
	// Month: Feb 2024 (leap year) then March.
	taps = tapsAt("a", "bus", "2024-02-05T09:00:00Z", "2024-02-05T10:00:00Z", "2024-02-05T11:00:00Z",
		"2024-02-12T09:00:00Z", "2024-02-12T10:00:00Z", "2024-02-12T11:00:00Z",
		"2024-02-19T09:00:00Z", "2024-02-19T10:00:00Z", "2024-02-19T11:00:00Z",
		"2024-02-29T09:00:00Z", "2024-03-01T09:00:00Z")
	require.Equal(t, "5.00 5.00 2.00 5.00 5.00 2.00 5.00 1.00 0.00 0.00 5.00", fmtCharges(monday, rate(t, monday, taps)))
}

func TestAnchoredVersusSliding(t *testing.T) {
	const tail = `"fares":[{"id":"f","price":"4"}],"caps":[{"id":"c","amount":"10","period":{"kind":"rolling_days","days":3,"anchor":"%s"}}]}`
	anchored := mustRules(t, `{"currency":"USD","time_zone":"UTC",`+strings.Replace(tail, "%s", "first_tap", 1))
	sliding := mustRules(t, `{"currency":"USD","time_zone":"UTC",`+strings.Replace(tail, "%s", "sliding", 1))
	taps := tapsAt("a", "bus",
		"2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", // day 1: 4 4
		"2024-05-03T09:00:00Z", // day 3: anchored window 1..3 -> 2; sliding 1..3 -> 2
		"2024-05-04T09:00:00Z", // day 4: anchored: new window 4..6 -> 4; sliding 2..4 holds 2 -> 4
		"2024-05-05T09:00:00Z", // day 5: anchored 4..6 holds 4 -> 4; sliding 3..5 holds 6 -> 4
		"2024-05-06T09:00:00Z", // day 6: anchored holds 8 -> 2; sliding 4..6 holds 8 -> 2
		"2024-05-07T09:00:00Z", // day 7: anchored window ended; next tap opens 7..9 -> 4; sliding 5..7 holds 6 -> 4
		"2024-05-08T09:00:00Z", // day 8: anchored holds 4 -> 4; sliding 6..8 holds 6 -> 4
		"2024-05-10T09:00:00Z", // day 10: anchored: 7..9 over, new window -> 4; sliding 8..10 holds 4 -> 4
	)
	require.Equal(t, "4.00 4.00 2.00 4.00 4.00 2.00 4.00 4.00 4.00", fmtCharges(anchored, rate(t, anchored, taps)))
	require.Equal(t, "4.00 4.00 2.00 4.00 4.00 2.00 4.00 4.00 4.00", fmtCharges(sliding, rate(t, sliding, taps)))
	// Where they differ: day 1 pays 4; days 3 and 4 pay 4 each.
	taps = tapsAt("a", "bus", "2024-05-01T09:00:00Z", "2024-05-03T09:00:00Z", "2024-05-03T10:00:00Z", "2024-05-04T09:00:00Z", "2024-05-04T10:00:00Z")
	// anchored 1..3: 4, 4, 2 (10); new window 4..6: 4, 4.
	require.Equal(t, "4.00 4.00 2.00 4.00 4.00", fmtCharges(anchored, rate(t, anchored, taps)))
	// sliding: day 3 window 1..3: 4, 4, 2; day 4 window 2..4 holds 6: 4, 0.
	require.Equal(t, "4.00 4.00 2.00 4.00 0.00", fmtCharges(sliding, rate(t, sliding, taps)))
	win := rate(t, anchored, taps).Windows
	require.Len(t, win, 2)
	require.Equal(t, "2024-05-01", win[0].From.String())
	require.Equal(t, "2024-05-03", win[0].To.String())
	require.Equal(t, "2024-05-04", win[1].From.String())
	require.True(t, win[0].Reached)
}

func TestRideCap(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"f","price":"2"}],
		"caps":[{"id":"r","rides":3,"period":{"kind":"rolling_days","days":2}}]}`)
	rd := rate(t, r, tapsAt("a", "bus", "2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", "2024-05-02T09:00:00Z",
		"2024-05-02T10:00:00Z", "2024-05-03T09:00:00Z", "2024-05-03T10:00:00Z"))
	// Day 3's window (2..3) holds one paid ride from day 2.
	require.Equal(t, "2.00 2.00 2.00 0.00 2.00 2.00", fmtCharges(r, rd))
	require.Equal(t, "- - - r - -", strings.Join(cappedBy(rd), " "))
}

func cappedBy(rd *Rider) []string {
	var out []string
	for _, l := range rd.Legs {
		out = append(out, dash(l.CappedBy))
	}
	return out
}

func TestTransfers(t *testing.T) {
	base := `{"currency":"USD","time_zone":"UTC",
		"fares":[{"id":"bus","modes":["bus"],"price":"1.00"},{"id":"rail","modes":["rail"],"price":"2.50"}],
		"caps":[{"id":"day","amount":"4.00","period":{"kind":"service_day"}}],
		"transfers":[%s]}`
	tests := []struct {
		name     string
		transfer string
		times    []string // "HH:MM mode"
		want     string
	}{
		{"free, inclusive edge", `{"window_minutes":60,"price":"free"}`,
			[]string{"09:00 bus", "10:00 bus", "10:01 bus"}, "1.00 0.00 1.00"},
		{"max 1", `{"window_minutes":60,"price":"free","max":1}`,
			[]string{"09:00 bus", "09:10 bus", "09:20 bus", "09:30 bus"}, "1.00 0.00 1.00 0.00"},
		{"unlimited", `{"window_minutes":60,"price":"free"}`,
			[]string{"09:00 bus", "09:10 bus", "09:20 bus", "09:30 bus"}, "1.00 0.00 0.00 0.00"},
		{"mode pairs", `{"window_minutes":60,"price":"free","from_modes":["bus"],"to_modes":["rail"]}`,
			[]string{"09:00 rail", "09:10 bus", "09:20 rail", "09:30 bus"}, "2.50 1.00 0.00 0.50"},
		{"difference upward", `{"window_minutes":60,"price":"difference"}`,
			[]string{"09:00 bus", "09:10 rail", "09:20 bus"}, "1.00 1.50 0.00"},
		{"a paid difference restarts a paid_tap window", `{"window_minutes":60,"price":"difference","measured_from":"paid_tap"}`,
			[]string{"09:00 bus", "09:50 rail", "10:20 bus", "10:50 rail"}, "1.00 1.50 0.00 0.00"},
		{"a first_tap window does not restart", `{"window_minutes":60,"price":"difference","measured_from":"first_tap"}`,
			[]string{"09:00 bus", "09:50 rail", "10:20 bus"}, "1.00 1.50 1.00"},
		{"counts toward caps", `{"window_minutes":60,"price":"difference","counts_toward_caps":true}`,
			[]string{"08:00 rail", "09:30 bus", "09:40 rail", "11:00 rail"}, "2.50 1.00 0.50 0.00"},
		// Outside capping the 09:40 transfer would cost 1.50, but as a new
		// journey the day cap leaves 0.50: the rider pays the lower (best
		// fare), and the leg is then an ordinary paid leg.
		{"not counted toward caps: never more than a new journey", `{"window_minutes":60,"price":"difference","counts_toward_caps":false}`,
			[]string{"08:00 rail", "09:30 bus", "09:40 rail", "11:00 rail"}, "2.50 1.00 0.50 0.00"},
		{"not counted toward caps: below the head-room the transfer price stands", `{"window_minutes":60,"price":"difference","counts_toward_caps":false}`,
			[]string{"08:00 bus", "08:10 rail", "08:20 rail"}, "1.00 1.50 0.00"},
		{"fixed discount, another mode", `{"window_minutes":60,"price":"fixed_discount","discount":"2.00","different_mode":true,"counts_toward_caps":true}`,
			[]string{"08:00 rail", "08:10 bus", "08:20 rail", "08:30 rail"}, "2.50 0.00 0.50 1.00"}, // rail after rail: no discount, the day cap leaves 1.00
		{"percent discount rounds the discount up", `{"window_minutes":60,"price":"percent_discount","percent":33,"counts_toward_caps":true}`,
			[]string{"08:00 bus", "08:10 rail"}, "1.00 1.67"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRules(t, strings.Replace(base, "%s", tc.transfer, 1))
			var b strings.Builder
			b.WriteString("token,time,mode\n")
			for _, x := range tc.times {
				hm, mode, _ := strings.Cut(x, " ")
				b.WriteString("a,2024-05-01T" + hm + ":00Z," + mode + "\n")
			}
			require.Equal(t, tc.want, fmtCharges(r, rate(t, r, b.String())))
		})
	}
}

// The open policy: does a leg charged 0 because a cap was reached open a
// transfer window? Default yes (CONTRACTS.md); capped_tap_opens_window:false
// turns it off.
func TestCappedTapOpensWindow(t *testing.T) {
	const rules = `{"currency":"USD","time_zone":"UTC",
		"fares":[{"id":"bus","modes":["bus"],"price":"2.00"},{"id":"rail","modes":["rail"],"price":"3.00"}],
		"caps":[{"id":"bus-day","amount":"4.00","period":{"kind":"service_day"},"modes":["bus"]}],
		"transfers":[{"window_minutes":60,"price":"free","from_modes":["bus"],"to_modes":["rail"]%s}]}`
	taps := tapsAt("a", "bus", "2024-05-01T08:00:00Z", "2024-05-01T12:00:00Z", "2024-05-01T16:00:00Z") +
		"a,2024-05-01T16:30:00Z,rail\n"
	taps = strings.Replace(taps, "token,time,mode\n", "token,time,mode\n", 1)
	on := mustRules(t, strings.Replace(rules, "%s", "", 1))
	off := mustRules(t, strings.Replace(rules, "%s", `,"capped_tap_opens_window":false`, 1))
	require.True(t, on.Transfers[0].CappedTapOpensWindow)
	require.False(t, off.Transfers[0].CappedTapOpensWindow)
	require.Equal(t, "2.00 2.00 0.00 0.00", fmtCharges(on, rate(t, on, taps)))
	require.Equal(t, "2.00 2.00 0.00 3.00", fmtCharges(off, rate(t, off, taps)))
}

func TestFilters(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","service_day_start":"04:00",
		"public_holidays":["2024-12-25"],
		"fares":[{"id":"f","price":"3"}],
		"caps":[
		  {"id":"weekday","amount":"5","period":{"kind":"service_day"},"days_of_week":["mon","tue","wed","thu","fri"],"holidays":"exclude"},
		  {"id":"holiday","amount":"1","period":{"kind":"service_day"},"holidays":"only"},
		  {"id":"z12","amount":"4","period":{"kind":"service_day"},"zones":["1","2"],"categories":["adult"]}
		]}`)
	tests := []struct {
		name, csv, want string
	}{
		{"weekday", "token,time\na,2024-12-24T09:00:00Z\na,2024-12-24T10:00:00Z\n", "3.00 2.00"},
		// 02:00 on Saturday 2024-12-28 belongs to Friday's service day.
		{"days of week judged on the service day", "token,time\na,2024-12-27T23:00:00Z\na,2024-12-28T02:00:00Z\na,2024-12-28T05:00:00Z\na,2024-12-28T06:00:00Z\n", "3.00 2.00 3.00 3.00"},
		{"holiday only and exclude", "token,time\na,2024-12-25T09:00:00Z\na,2024-12-25T10:00:00Z\n", "1.00 0.00"},
		{"zones: all zones inside", "token,time,category,zones\na,2024-12-28T09:00:00Z,adult,1;2\na,2024-12-28T10:00:00Z,adult,2\n", "3.00 1.00"},
		{"zones: a zone outside", "token,time,category,zones\na,2024-12-28T09:00:00Z,adult,1;3\na,2024-12-28T10:00:00Z,adult,3\n", "3.00 3.00"},
		{"zones: unknown zone", "token,time,category,zones\na,2024-12-28T09:00:00Z,adult,9\na,2024-12-28T10:00:00Z,adult,9\n", "3.00 3.00"},
		{"zones: no zones counts", "token,time,category\na,2024-12-28T09:00:00Z,adult\na,2024-12-28T10:00:00Z,adult\n", "3.00 1.00"},
		{"category filter", "token,time,category,zones\na,2024-12-28T09:00:00Z,child,1\na,2024-12-28T10:00:00Z,child,1\n", "3.00 3.00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, fmtCharges(r, rate(t, r, tc.csv)))
		})
	}
}

func TestLateTaps(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC",
		"fares":[{"id":"bus","modes":["bus"],"price":"1.00"},{"id":"rail","modes":["rail"],"price":"2.00"}],
		"caps":[{"id":"day","amount":"5.00","period":{"kind":"service_day"}}],
		"transfers":[{"window_minutes":60,"price":"free","max":1,"from_modes":["bus"],"to_modes":["rail"]}]}`)
	t.Run("refund", func(t *testing.T) {
		// Two rail legs settle on May 1 for 4.00. A bus tap at 10:00 reaches the
		// back office two days later: the first rail leg becomes a free
		// transfer, the day costs 3.00, and the May 3 run refunds 1.00.
		rd := rate(t, r, "token,time,mode,received\n"+
			"a,2024-05-01T10:20:00Z,rail,\n"+
			"a,2024-05-01T10:40:00Z,rail,2024-05-01T10:41:00Z\n"+
			"a,2024-05-01T10:00:00Z,bus,2024-05-03T08:00:00Z\n")
		require.Equal(t, "1.00 0.00 2.00", fmtCharges(r, rd))
		require.Equal(t, "2024-05-01=3.00", days(r, rd))
		require.Equal(t, "2024-05-01=4.00 2024-05-03=-1.00", runs(r, rd))
		require.Equal(t, 2, rd.Settlements[0].Taps)
		require.Equal(t, 1, rd.Settlements[1].Taps)
	})
	t.Run("late tap reaches a cap", func(t *testing.T) {
		rd := rate(t, r, "token,time,mode,received\n"+
			"a,2024-05-01T08:00:00Z,rail,\n"+
			"a,2024-05-01T12:00:00Z,rail,\n"+
			"a,2024-05-02T09:00:00Z,rail,\n"+
			"a,2024-05-01T18:00:00Z,rail,2024-05-04T00:00:00Z\n")
		require.Equal(t, "2024-05-01=5.00 2024-05-02=2.00", days(r, rd))
		require.Equal(t, "2024-05-01=4.00 2024-05-02=2.00 2024-05-04=1.00", runs(r, rd))
	})
	t.Run("received before the day ended is on time", func(t *testing.T) {
		rd := rate(t, r, "token,time,mode,received\na,2024-05-01T08:00:00Z,rail,2024-05-01T23:59:59Z\n")
		require.Equal(t, "2024-05-01=2.00", runs(r, rd))
	})
	t.Run("received at the next day's start is late", func(t *testing.T) {
		rd := rate(t, r, "token,time,mode,received\na,2024-05-01T08:00:00Z,rail,2024-05-02T00:00:00Z\n")
		require.Equal(t, "2024-05-02=2.00", runs(r, rd))
	})
}

func TestTapOrderAndTokens(t *testing.T) {
	r := mustRules(t, seedRules)
	ordered := mustTaps(t, r, tapsAt("a", "bus", "2024-03-04T08:00:00-05:00", "2024-03-04T09:00:00-05:00", "2024-03-05T09:00:00-05:00"))
	shuffled := []Tap{ordered[2], ordered[0], ordered[1]}
	var a, b Rider
	e := NewEngine(r)
	require.NoError(t, e.Rate(&a, ordered))
	require.NoError(t, e.Rate(&b, shuffled))
	require.Equal(t, fmtCharges(r, &a), fmtCharges(r, &b))
	require.Equal(t, 1, b.Legs[0].Tap, "Leg.Tap indexes the input")

	mixed := append(mustTaps(t, r, tapsAt("b", "bus", "2024-03-04T08:00:00-05:00")), ordered...)
	require.ErrorIs(t, e.Rate(&a, mixed), ErrMixedTokens)

	// Taps built in code are resolved by the engine.
	raw := []Tap{{Token: "x", Time: ts("2024-03-04T08:00:00-05:00"), Mode: "bus"}}
	require.NoError(t, e.Rate(&a, raw))
	require.Equal(t, Amount(100), a.Total)

	noFare := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"bus","modes":["bus"],"price":"1"}]}`)
	err := NewEngine(noFare).Rate(&a, []Tap{{Token: "x", Time: ts("2024-03-04T08:00:00Z"), Mode: "ferry", Line: 7}})
	require.ErrorIs(t, err, ErrNoFare)
	require.ErrorIs(t, err, ErrTaps)
	require.Contains(t, err.Error(), "line 7")

	st := mustSettle(t, r, nil)
	require.Empty(t, st.Riders)
	require.Equal(t, Amount(0), st.Total)
}

func TestReceipt(t *testing.T) {
	r := mustRules(t, seedRules)
	var b strings.Builder
	b.WriteString("token,time\n")
	for d := 4; d <= 10; d++ {
		for h := 6; h < 12; h++ {
			b.WriteString("a,2024-03-" + pad(d) + "T" + pad(h) + ":00:00-05:00\n")
		}
	}
	rd := rate(t, r, b.String())
	require.Equal(t, Amount(2500), rd.Total)
	rc := rd.Receipt(DateOf(2024, 3, 4), DateOf(2024, 3, 10))
	require.Len(t, rc.Legs, 42)
	require.Equal(t, Amount(4200), rc.Fares)
	require.Equal(t, Amount(2500), rc.Charged)
	require.Equal(t, Amount(1700), rc.Saved)
	var saved Amount
	for _, s := range rc.SavedBy {
		saved += s.Saved
	}
	require.Equal(t, rc.Saved, saved)
	require.Equal(t, []string{"week"}, rd.CapsReached())
	var weeks int
	for _, w := range rc.Windows {
		if w.Cap == "week" {
			weeks++
			require.Equal(t, Amount(2500), w.Charged)
			require.True(t, w.Reached)
		}
	}
	require.Equal(t, 1, weeks)
	require.True(t, errors.Is(&RulesError{Err: errors.New("x")}, ErrRules))
}

func pad(n int) string {
	if n < 10 {
		return "0" + string(rune('0'+n))
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10))
}

// Regression: the first days of the Unix epoch used to look like "a window
// is already open" to the cap state's zero values.
func TestEpochDays(t *testing.T) {
	for _, period := range []string{`{"kind":"service_day"}`, `{"kind":"calendar_week"}`, `{"kind":"calendar_month"}`,
		`{"kind":"rolling_days","days":3}`, `{"kind":"rolling_days","days":3,"anchor":"first_tap"}`} {
		r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"f","price":"1"}],"caps":[{"id":"c","amount":"1.50","period":`+period+`}]}`)
		rd := rate(t, r, tapsAt("a", "bus", "1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z", "1970-01-02T00:00:00Z", "1970-01-02T01:00:00Z"))
		require.NotEmpty(t, rd.Windows, period)
		require.Equal(t, "1.00", r.Currency.Format(rd.Legs[0].Charged), period)
		require.Equal(t, "0.50", r.Currency.Format(rd.Legs[1].Charged), period)
	}
}
