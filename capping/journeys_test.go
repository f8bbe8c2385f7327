package capping

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// journeyRules is a small gated network: stations A (zone 1), B (zone 2),
// C (zone 3) and X (zones 1 and 2, a boundary station); peak 06:30–09:30
// and 16:00–19:00 on weekdays that are not public holidays; 2025-05-05 is
// a holiday. A journey may take 120 minutes; a same-station exit within 2
// minutes is free.
const journeyRules = `{"currency":"GBP","time_zone":"Europe/London","service_day_start":"04:30",
	"public_holidays":["2025-05-05"],
	"fares":[{"id":"bus","modes":["bus"],"price":"1.75"}],
	"caps":[{"id":"day","amount":"8.90","period":{"kind":"service_day"}}],
	"peak":[
		{"days_of_week":["mon","tue","wed","thu","fri"],"holidays":"exclude","from":"06:30","to":"09:30"},
		{"days_of_week":["mon","tue","wed","thu","fri"],"holidays":"exclude","from":"16:00","to":"19:00"}],
	"journeys":[{"id":"rail","modes":["tube"],"max_minutes":120,
		"same_station_minutes":2,"same_station_price":"0.00"%s}],
	"od_fares":[
		{"id":"z1p","modes":["tube"],"from_zone":"1","to_zone":"1","time":"peak","price":"2.90"},
		{"id":"z1o","modes":["tube"],"from_zone":"1","to_zone":"1","time":"off_peak","price":"2.80"},
		{"id":"z12p","modes":["tube"],"from_zone":"1","to_zone":"2","time":"peak","price":"3.50"},
		{"id":"z12o","modes":["tube"],"from_zone":"1","to_zone":"2","time":"off_peak","price":"2.90"},
		{"id":"z2","modes":["tube"],"from_zone":"2","to_zone":"2","price":"2.00"},
		{"id":"z13p","modes":["tube"],"from_zone":"1","to_zone":"3","time":"peak","price":"3.80"},
		{"id":"z13o","modes":["tube"],"from_zone":"1","to_zone":"3","time":"off_peak","price":"3.00"},
		{"id":"z23","modes":["tube"],"from_zone":"2","to_zone":"3","price":"2.20"},
		{"id":"z3","modes":["tube"],"from_zone":"3","to_zone":"3","price":"2.00"},
		{"id":"ac","modes":["tube"],"from_station":"A","to_station":"C","price":"3.10"}]}`

var stationZones = map[string]string{"A": "1", "B": "2", "C": "3", "X": "1;2"}

// journeyCSV turns "2025-03-03T08:00:00 on A" lines (time in London,
// role, station; a bare mode "bus" for a bus tap; "@<received>" to make
// it late) into a taps file.
func journeyCSV(lines ...string) string {
	var b strings.Builder
	b.WriteString("token,time,mode,direction,station,zones,received\n")
	for _, ln := range lines {
		f := strings.Fields(ln)
		tm := f[0] + "+00:00"
		if strings.HasPrefix(f[0], "2025-0") && f[0] >= "2025-03-30" && f[0] < "2025-10-26" {
			tm = f[0] + "+01:00" // BST
		}
		var recv string
		if last := f[len(f)-1]; strings.HasPrefix(last, "@") {
			recv, f = last[1:], f[:len(f)-1]
		}
		if f[1] == "bus" {
			b.WriteString("a," + tm + ",bus,,,," + recv + "\n")
			continue
		}
		b.WriteString("a," + tm + ",tube," + f[1] + "," + f[2] + "," + stationZones[f[2]] + "," + recv + "\n")
	}
	return b.String()
}

func rateJourneys(t *testing.T, extra string, lines ...string) (*Rules, *Rider) {
	t.Helper()
	r := mustRules(t, strings.Replace(journeyRules, "%s", extra, 1))
	taps := mustTaps(t, r, journeyCSV(lines...))
	var rd Rider
	require.NoError(t, NewEngine(r).Rate(&rd, taps))
	checkInvariants(t, r, &rd)
	return r, &rd
}

func fmtOutcomes(rd *Rider) string {
	var out []string
	for _, l := range rd.Legs {
		out = append(out, dash(l.Journey.String()))
	}
	return strings.Join(out, " ")
}

func TestJourneyOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		extra    string
		taps     []string
		charged  string
		outcomes string
	}{
		{"complete at peak", "", []string{"2025-03-03T08:00:00 on A", "2025-03-03T08:25:00 off B"},
			"3.50 0.00", "complete exit"},
		{"complete off-peak", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T10:25:00 off B"},
			"2.90 0.00", "complete exit"},
		{"both ways", "", []string{"2025-03-03T10:00:00 on B", "2025-03-03T10:25:00 off A"},
			"2.90 0.00", "complete exit"},
		{"station pair before zone pair", "", []string{"2025-03-03T08:00:00 on A", "2025-03-03T08:40:00 off C"},
			"3.10 0.00", "complete exit"},
		{"boundary station takes the cheapest zone", "", []string{"2025-03-03T10:00:00 on X", "2025-03-03T10:25:00 off B"},
			"2.00 0.00", "complete exit"},
		// Peak edges: 06:30 and 16:00 are peak, 09:30 and 19:00 are not.
		{"peak starts at 06:30:00", "", []string{"2025-03-03T06:30:00 on A", "2025-03-03T06:50:00 off A"},
			"2.90 0.00", "complete exit"},
		{"06:29:59 is off-peak", "", []string{"2025-03-03T06:29:59 on A", "2025-03-03T06:50:00 off A"},
			"2.80 0.00", "complete exit"},
		{"09:29:59 is peak", "", []string{"2025-03-03T09:29:59 on A", "2025-03-03T09:50:00 off A"},
			"2.90 0.00", "complete exit"},
		{"peak ends at 09:30:00", "", []string{"2025-03-03T09:30:00 on A", "2025-03-03T09:50:00 off A"},
			"2.80 0.00", "complete exit"},
		{"the fare is set by the tap-on, not the tap-off", "", []string{"2025-03-03T15:50:00 on A", "2025-03-03T16:10:00 off A"},
			"2.80 0.00", "complete exit"},
		{"Saturday is off-peak", "", []string{"2025-03-08T08:00:00 on A", "2025-03-08T08:25:00 off B"},
			"2.90 0.00", "complete exit"},
		{"a public holiday is off-peak", "", []string{"2025-05-05T08:00:00 on A", "2025-05-05T08:25:00 off B"},
			"2.90 0.00", "complete exit"},
		// Maximum journey time: 120 minutes, inclusive.
		{"tap-off exactly at the maximum journey time", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T12:00:00 off B"},
			"2.90 0.00", "complete exit"},
		{"one second over: incomplete and an unmatched exit", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T12:00:01 off B"},
			// max off-peak from zone 1 (3.10 A–C); max from zone 2 (2.90)
			"3.10 2.90", "incomplete unmatched_exit"},
		{"incomplete: no tap-off", "", []string{"2025-03-03T08:00:00 on A"}, "3.80", "incomplete"},
		{"incomplete: a second tap-on first", "", []string{"2025-03-03T08:00:00 on A", "2025-03-03T08:30:00 on B", "2025-03-03T08:50:00 off C"},
			"3.80 2.20 0.00", "incomplete complete exit"},
		{"incomplete: a bus tap first", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T10:30:00 bus"},
			"3.10 1.75", "incomplete -"},
		{"unmatched exit", "", []string{"2025-03-03T10:00:00 off C"}, "3.10", "unmatched_exit"},
		{"same-station exit within 2 minutes", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T10:02:00 off A"},
			"0.00 0.00", "same_station exit"},
		{"same station after 2 minutes is a journey", "", []string{"2025-03-03T10:00:00 on A", "2025-03-03T10:02:01 off A"},
			"2.80 0.00", "complete exit"},
		{"over midnight: one service day", "", []string{"2025-03-03T23:50:00 on A", "2025-03-04T00:20:00 off B"},
			"2.90 0.00", "complete exit"},
		// Incomplete journeys and the caps.
		{"outside caps (default): charged in full at the cap", "", []string{
			"2025-03-03T08:00:00 on A", "2025-03-03T08:20:00 off C", "2025-03-03T08:30:00 on C", "2025-03-03T08:50:00 off A",
			"2025-03-03T09:00:00 on A", "2025-03-03T09:20:00 off C", "2025-03-03T10:00:00 on A"},
			"3.10 0.00 3.10 0.00 2.70 0.00 3.10", "complete exit complete exit complete exit incomplete"},
		{"counted toward caps", `,"incomplete_caps":"count"`, []string{
			"2025-03-03T08:00:00 on A", "2025-03-03T08:20:00 off C", "2025-03-03T08:30:00 on C", "2025-03-03T08:50:00 off A",
			"2025-03-03T09:00:00 on A", "2025-03-03T10:00:00 on A", "2025-03-03T10:20:00 off C"},
			"3.10 0.00 3.10 0.00 2.70 0.00 0.00", "complete exit complete exit incomplete complete exit"},
		{"bounded by caps, adding to none", `,"incomplete_caps":"bounded"`, []string{
			"2025-03-03T08:00:00 on A", "2025-03-03T08:20:00 off C", "2025-03-03T08:30:00 on C", "2025-03-03T08:50:00 off A",
			"2025-03-03T09:00:00 on A", "2025-03-03T10:00:00 on A", "2025-03-03T10:20:00 off C"},
			"3.10 0.00 3.10 0.00 2.70 2.70 0.00", "complete exit complete exit incomplete complete exit"},
		{"a fixed incomplete fare", `,"incomplete_price":"5.00","unmatched_exit_price":"0.00"`,
			[]string{"2025-03-03T08:00:00 on A", "2025-03-03T12:00:00 off B"}, "5.00 0.00", "incomplete unmatched_exit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rd := rateJourneys(t, tc.extra, tc.taps...)
			require.Equal(t, tc.charged, fmtCharges(&Rules{Currency: rd0Currency}, rd))
			require.Equal(t, tc.outcomes, fmtOutcomes(rd))
		})
	}
}

var rd0Currency, _ = LookupCurrency("GBP")

// Taps come in any order: journeys are built on the time-ordered taps.
func TestJourneyOutOfOrder(t *testing.T) {
	lines := []string{"2025-03-03T08:00:00 on A", "2025-03-03T08:25:00 off B", "2025-03-03T09:00:00 on B",
		"2025-03-03T09:20:00 off C", "2025-03-03T10:00:00 on C", "2025-03-03T17:00:00 on A", "2025-03-03T17:30:00 off A"}
	_, want := rateJourneys(t, "", lines...)
	require.Equal(t, "complete exit complete exit incomplete complete exit", fmtOutcomes(want))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		_, got := rateJourneys(t, "", lines...)
		require.Equal(t, fmtCharges(&Rules{Currency: rd0Currency}, want), fmtCharges(&Rules{Currency: rd0Currency}, got))
		require.Equal(t, fmtOutcomes(want), fmtOutcomes(got))
	}
}

// A journey belongs to the service day of its tap-on. One that starts
// before the 04:30 service-day start and ends after it is priced on the
// earlier day; the run at the end of that day has not seen the tap-off,
// so it charges an incomplete journey, and the next run pays it back.
func TestJourneyAcrossServiceDayStart(t *testing.T) {
	r, rd := rateJourneys(t, "", "2025-03-04T04:20:00 on A", "2025-03-04T04:40:00 off B")
	require.Equal(t, "2.90 0.00", fmtCharges(r, rd))
	require.Equal(t, "2025-03-03", rd.Legs[0].ServiceDay.String())
	require.Equal(t, "2025-03-04", rd.Legs[1].ServiceDay.String())
	require.Equal(t, "2025-03-03=3.10 2025-03-04=-0.20", fmtRuns(r, rd))
	require.Equal(t, "2025-03-03=2.90 2025-03-04=0.00", fmtDays(r, rd))
}

// A tap-off that reaches the back office after the day was settled (or a
// correction: the agency completes the journey from other evidence, or the
// rider asks) re-rates the journey; the next run pays the difference back.
func TestJourneyLateTapOffAdjusts(t *testing.T) {
	r, rd := rateJourneys(t, "", "2025-03-03T08:00:00 on A",
		"2025-03-03T08:25:00 off B @2025-03-05T12:00:00Z", "2025-03-04T08:00:00 on A", "2025-03-04T08:25:00 off A")
	require.Equal(t, "3.50 0.00 2.90 0.00", fmtCharges(r, rd))
	// Monday's run: incomplete (3.80, max peak from zone 1); Tuesday's:
	// 2.90; Wednesday's (end of 2025-03-05) sees the tap-off: 3.50 − 3.80.
	require.Equal(t, "2025-03-03=3.80 2025-03-04=2.90 2025-03-05=-0.30", fmtRuns(r, rd))
}

// An incomplete journey outside the caps does not fill them; once a
// correction completes it, it counts, and later journeys the same day
// are re-rated under the cap.
func TestJourneyCorrectionCountsTowardCaps(t *testing.T) {
	r, rd := rateJourneys(t, "",
		"2025-03-03T08:00:00 on A", "2025-03-03T08:20:00 off C",
		"2025-03-03T08:30:00 on C", "2025-03-03T08:50:00 off A @2025-03-06T10:00:00Z",
		"2025-03-03T09:00:00 on A", "2025-03-03T09:20:00 off C")
	require.Equal(t, "3.10 0.00 3.10 0.00 2.70 0.00", fmtCharges(r, rd))
	// Monday's run: 3.10 + incomplete 3.80 (outside the cap) + 3.10 = 10.00;
	// the correction run: 8.90 − 10.00.
	require.Equal(t, "2025-03-03=10.00 2025-03-06=-1.10", fmtRuns(r, rd))
}

func fmtRuns(r *Rules, rd *Rider) string {
	var out []string
	for _, s := range rd.Settlements {
		out = append(out, s.Run.String()+"="+r.Currency.Format(s.Charged))
	}
	return strings.Join(out, " ")
}

func fmtDays(r *Rules, rd *Rider) string {
	var out []string
	for _, d := range rd.Days {
		out = append(out, d.Day.String()+"="+r.Currency.Format(d.Charged))
	}
	return strings.Join(out, " ")
}

// Opal-style: a discount when a journey on another mode starts within 60
// minutes of the last tap-off; the window runs from the tap-off.
func TestTransferDiscountFromTapOff(t *testing.T) {
	rules := strings.Replace(journeyRules, "%s", "", 1)
	rules = strings.Replace(rules, `"od_fares"`, `"transfers":[{"id":"opal","window_minutes":60,"price":"fixed_discount",
		"discount":"1.00","different_mode":true,"counts_toward_caps":true}],"od_fares"`, 1)
	r := mustRules(t, rules)
	for _, tc := range []struct{ bus, want string }{
		{"2025-03-03T09:25:00", "3.50 0.00 0.75"}, // exactly 60 minutes after the tap-off
		{"2025-03-03T09:25:01", "3.50 0.00 1.75"},
	} {
		taps := mustTaps(t, r, journeyCSV("2025-03-03T08:00:00 on A", "2025-03-03T08:25:00 off B", tc.bus+" bus"))
		var rd Rider
		require.NoError(t, NewEngine(r).Rate(&rd, taps))
		require.Equal(t, tc.want, fmtCharges(r, &rd), tc.bus)
		checkInvariants(t, r, &rd)
	}
}

// Files without direction and station columns are rated per tap as
// before; a direction on a mode without a journeys rule is ignored.
func TestJourneyColumnsOptional(t *testing.T) {
	r := mustRules(t, strings.Replace(journeyRules, "%s", "", 1))
	taps := mustTaps(t, r, "token,time,mode\na,2025-03-03T08:00:00Z,bus\n")
	require.Equal(t, "", taps[0].Role)
	taps = mustTaps(t, r, "token,time,mode,role,stop\na,2025-03-03T08:00:00Z,bus,on,Stop 1\n")
	require.Equal(t, RoleOn, taps[0].Role)
	require.Equal(t, "Stop 1", taps[0].Stop)
	var rd Rider
	require.NoError(t, NewEngine(r).Rate(&rd, taps))
	require.Equal(t, "1.75", fmtCharges(r, &rd))
	require.Equal(t, NoJourney, rd.Legs[0].Journey)
}

func TestJourneyErrors(t *testing.T) {
	r := mustRules(t, strings.Replace(journeyRules, "%s", "", 1))
	_, err := ParseTaps(strings.NewReader("token,time,mode,direction\na,2025-03-03T08:00:00Z,tube,sideways\n"), r)
	var te *TapsError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 2, te.Line)
	require.Equal(t, "direction", te.Column)
	// A journey between stations no fare row covers names the tap-off.
	taps := mustTaps(t, r, "token,time,mode,direction,station,zones\na,2025-03-03T08:00:00Z,tube,on,A,1\na,2025-03-03T08:10:00Z,tube,off,Q,9\n")
	var rd Rider
	err = NewEngine(r).Rate(&rd, taps)
	require.ErrorAs(t, err, &te)
	require.Equal(t, 3, te.Line)
	require.True(t, errors.Is(err, errNoODFare))
	for _, bad := range []string{
		`"journeys":[{"id":"j","modes":["tube"]}]`,
		`"journeys":[{"id":"j","modes":["tube"],"max_minutes":60,"same_station_minutes":2}]`,
		`"journeys":[{"id":"j","modes":["tube"],"max_minutes":60,"incomplete_caps":"sometimes"}]`,
		`"journeys":[{"id":"j","modes":["tube"],"max_minutes":60}],"od_fares":[{"id":"o","from_zone":"1","price":"1"}]`,
		`"journeys":[{"id":"j","modes":["tube"],"max_minutes":60}],"od_fares":[{"id":"o","from_zone":"1","to_zone":"2","from_station":"A","to_station":"B","price":"1"}]`,
		`"od_fares":[{"id":"o","from_zone":"1","to_zone":"2","price":"1"}]`,
		`"peak":[{"from":"09:30","to":"06:30"}]`,
		`"transfers":[{"window_minutes":60,"price":"fixed_discount"}]`,
		`"transfers":[{"window_minutes":60,"price":"percent_discount","percent":101}]`,
		`"transfers":[{"window_minutes":60,"price":"free","discount":"1.00"}]`,
	} {
		_, err := ParseRules([]byte(`{"currency":"GBP","time_zone":"Europe/London",` + bad + `}`))
		var re *RulesError
		require.ErrorAs(t, err, &re, bad)
	}
}

// Best fare holds with journeys: journeys reduce to legs priced by their
// origin and destination, so with one scope of service-day and sliding
// caps the engine charges exactly the cheapest passes over the journeys'
// fares, plus penalties that stay outside capping; penalties bounded by
// the caps never cost more than that.
func TestBestFareWithJourneys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < cases(1500); i++ {
		kinds := randKinds(rng, []PeriodKind{ServiceDay, RollingDays}, []Anchor{Sliding})
		var od [4][4]Amount
		var rows, caps []string
		for a := 1; a <= 3; a++ {
			for b := a; b <= 3; b++ {
				od[a][b] = Amount(1 + rng.IntN(8))
				od[b][a] = od[a][b]
				rows = append(rows, fmt.Sprintf(`{"id":"o%d%d","from_zone":"%d","to_zone":"%d","price":"%d"}`, a, b, a, b, od[a][b]))
			}
		}
		maxFrom := func(a int) Amount { return max(od[a][1], od[a][2], od[a][3]) }
		for k, pk := range kinds {
			caps = append(caps, pk.json(k))
		}
		penalty := []string{"count", "outside", "bounded"}[rng.IntN(3)]
		r := mustRules(t, fmt.Sprintf(`{"currency":"JPY","time_zone":"UTC","fares":[{"id":"bus","modes":["bus"],"price":"2"}],
			"caps":[%s],"journeys":[{"id":"rail","modes":["rail"],"max_minutes":60,"incomplete_caps":%q}],"od_fares":[%s]}`,
			strings.Join(caps, ","), penalty, strings.Join(rows, ",")))
		start := DateOf(2024, time.Month(1+rng.IntN(12)), 1+rng.IntN(28))
		fares := map[Date]Amount{}
		var outside Amount
		var taps []Tap
		tap := func(at time.Time, mode, role string, zone int) {
			tp := Tap{Token: "t", Time: at, Mode: mode, Role: role}
			if zone > 0 {
				tp.Zones = []string{fmt.Sprint(zone)}
			}
			taps = append(taps, tp)
		}
		for d := 0; d < 1+rng.IntN(12); d++ {
			day := start + Date(d)
			y, m, dd := day.Civil()
			for n := rng.IntN(4); n >= 0; n-- {
				at := time.Date(y, m, dd, 6+n*3, rng.IntN(60), 0, 0, time.UTC)
				a, b := 1+rng.IntN(3), 1+rng.IntN(3)
				var pen Amount
				switch rng.IntN(4) {
				case 0: // complete
					tap(at, "rail", RoleOn, a)
					tap(at.Add(time.Duration(1+rng.IntN(60))*time.Minute), "rail", RoleOff, b)
					fares[day] += od[a][b]
				case 1: // incomplete
					tap(at, "rail", RoleOn, a)
					pen = maxFrom(a)
				case 2: // unmatched exit
					tap(at, "rail", RoleOff, b)
					pen = maxFrom(b)
				default:
					tap(at, "bus", "", 0)
					fares[day] += 2
				}
				if penalty == "count" {
					fares[day] += pen
				} else {
					outside += pen
				}
			}
		}
		rng.Shuffle(len(taps), func(i, j int) { taps[i], taps[j] = taps[j], taps[i] })
		got, want := rateTotal(t, r, taps), optimum(fares, kinds)+outside
		if penalty == "bounded" {
			require.LessOrEqual(t, got, want, "case %d", i)
			require.GreaterOrEqual(t, got, optimum(fares, kinds), "case %d", i)
		} else {
			require.Equal(t, want, got, "case %d: caps %+v fares %v", i, kinds, fares)
		}
	}
}

// The parallel table reader and the streaming rater agree with ParseTaps
// and Settle on files with journeys (roles, stations, fares on tap-offs,
// late tap-offs), cut into many blocks.
func TestStreamMatchesSettleJourneys(t *testing.T) {
	r := mustRules(t, strings.Replace(journeyRules, "%s", `,"incomplete_caps":"bounded"`, 1))
	defer func(n int) { tableBlockSize = n }(tableBlockSize)
	rng := rand.New(rand.NewPCG(7, 8))
	stations := []string{"A", "B", "C", "X"}
	for i := 0; i < 30; i++ {
		var b strings.Builder
		b.WriteString("token,time,mode,Direction,station,zones,fare,received\n")
		for n := rng.IntN(300); n > 0; n-- {
			st := stations[rng.IntN(len(stations))]
			sec := 1741000000 + rng.Int64N(5*86400)
			tm := string(stamp{sec: sec, form: stampZulu, set: true}.appendText(nil))
			recv := ""
			if rng.IntN(8) == 0 {
				recv = string(stamp{sec: sec + rng.Int64N(3*86400), form: stampZulu, set: true}.appendText(nil))
			}
			switch rng.IntN(6) {
			case 0:
				fmt.Fprintf(&b, "t%d,%s,bus,,,,,%s\n", rng.IntN(7), tm, recv)
			case 1:
				fmt.Fprintf(&b, "t%d,%s,tube,tap-off,%s,\"%s\",1.20,%s\n", rng.IntN(7), tm, st, stationZones[st], recv)
			default:
				fmt.Fprintf(&b, "t%d,%s,tube,%s,%s,\"%s\",,%s\n", rng.IntN(7), tm, []string{"on", "off"}[rng.IntN(2)], st, stationZones[st], recv)
			}
		}
		tableBlockSize = 64 + rng.IntN(2000)
		requireSameRating(t, r, []byte(b.String()), 1+rng.IntN(3))
	}
}

// The two transfer points docs/capping.md settles.
func TestTransferSettledPoints(t *testing.T) {
	// A transfer outside capping never anchors a first-tap window: the
	// 00:10 rail transfer is free and outside the rail cap, so the cap's
	// 7-day window starts with the first rail leg it applies to (day 8).
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC",
		"fares":[{"id":"bus","modes":["bus"],"price":"1.00"},{"id":"rail","modes":["rail"],"price":"2.00"}],
		"caps":[{"id":"rail7","amount":"5.00","modes":["rail"],"period":{"kind":"rolling_days","days":7,"anchor":"first_tap"}}],
		"transfers":[{"window_minutes":60,"price":"free","from_modes":["bus"],"to_modes":["rail"]}]}`)
	taps := mustTaps(t, r, "token,time,mode\na,2024-05-01T23:50:00Z,bus\na,2024-05-02T00:10:00Z,rail\na,2024-05-08T09:00:00Z,rail\n")
	var rd Rider
	require.NoError(t, NewEngine(r).Rate(&rd, taps))
	require.Equal(t, "1.00 0.00 2.00", fmtCharges(r, &rd))
	require.Len(t, rd.Windows, 1)
	require.Equal(t, "2024-05-08", rd.Windows[0].From.String())

	// A difference transfer's credit is its own rule's: the 1.50 paid
	// under "up" (bus → rail) does not raise the credit of "ferry"
	// (opened by the bus at 1.00), so the ferry pays 3.00 − 1.00.
	r = mustRules(t, `{"currency":"USD","time_zone":"UTC",
		"fares":[{"id":"bus","modes":["bus"],"price":"1.00"},{"id":"rail","modes":["rail"],"price":"2.50"},{"id":"ferry","modes":["ferry"],"price":"3.00"}],
		"transfers":[{"id":"up","window_minutes":60,"price":"difference","from_modes":["bus"],"to_modes":["rail"]},
			{"id":"ferry","window_minutes":60,"price":"difference","from_modes":["bus","rail"],"to_modes":["ferry"]}]}`)
	taps = mustTaps(t, r, "token,time,mode\na,2024-05-01T09:00:00Z,bus\na,2024-05-01T09:10:00Z,rail\na,2024-05-01T09:20:00Z,ferry\n")
	require.NoError(t, NewEngine(r).Rate(&rd, taps))
	require.Equal(t, "1.00 1.50 2.00", fmtCharges(r, &rd))
	require.Equal(t, "ferry", rd.Legs[2].Transfer)
}

// The gates record a tap's role and stop in tap.Location; a gate tap feeds
// a journey as Tap{Role: string(loc.Role), Stop: loc.Stop, Zones: loc.Zones,
// Mode: loc.Mode}, so the role values must stay the same.
func TestRolesMatchGates(t *testing.T) {
	require.Equal(t, string(tap.RoleEntry), RoleOn)
	require.Equal(t, string(tap.RoleExit), RoleOff)
	loc := tap.Location{Stop: "Bank", Zones: []string{"1"}, Mode: "tube", Role: tap.RoleEntry}
	r := mustRules(t, strings.Replace(journeyRules, "%s", "", 1))
	gt := Tap{Token: "a", Time: ts("2025-03-03T08:00:00Z"), Role: string(loc.Role), Stop: loc.Stop, Zones: loc.Zones, Mode: loc.Mode}
	require.NoError(t, r.Resolve(&gt))
	require.Equal(t, int8(0), gt.jr)
}

// Journeys cost tap-only rating nothing in memory: a table tap and an
// engine leg keep their sizes (a journey tap's station and role live
// beside its block).
func TestJourneysKeepSizes(t *testing.T) {
	require.Equal(t, uintptr(56), unsafe.Sizeof(packedTap{}))
	require.Equal(t, uintptr(56), unsafe.Sizeof(prepLeg{}))
}
