package capping

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The best-fare promise: for a single scope (every cap covers every leg),
// capping with sliding windows charges exactly the cheapest combination of
// single fares and period passes, where each cap is a pass that can start on
// any service day. Calendar caps (service day, week, month) are passes that
// can only be bought aligned to their calendar; capping with them equals the
// cheapest combination of aligned passes when the periods nest (day within
// week, day within month). Anchored windows and crossing calendars are only
// bounded by that optimum; docs/capping.md gives the counter-examples.

// passKind is one cap seen as a pass.
type passKind struct {
	price   Amount
	kind    PeriodKind
	days    int          // rolling
	anchor  Anchor       // rolling
	weekDay time.Weekday // calendar week start
}

// windowsCovering lists the pass windows of kind k that contain day d.
func (k passKind) windowsCovering(d Date) [][2]Date {
	switch k.kind {
	case ServiceDay:
		return [][2]Date{{d, d}}
	case CalendarWeek:
		from := d - Date((int(d.Weekday())-int(k.weekDay)+7)%7)
		return [][2]Date{{from, from + 6}}
	case CalendarMonth:
		f, l := d.monthBounds()
		return [][2]Date{{f, l}}
	default: // rolling: a pass may start on any day (sliding optimum)
		var out [][2]Date
		for s := d - Date(k.days-1); s <= d; s++ {
			out = append(out, [2]Date{s, s + Date(k.days-1)})
		}
		return out
	}
}

// optimum is a brute-force search over every way to cover the travel days
// with passes, paying single fares for uncovered days: at the first day not
// yet covered, either pay that day's fares or buy any pass containing it.
func optimum(dayFares map[Date]Amount, kinds []passKind) Amount {
	days := make([]Date, 0, len(dayFares))
	for d := range dayFares {
		days = append(days, d)
	}
	slices.Sort(days)
	type key struct {
		i       int
		covered Date
	}
	memo := map[key]Amount{}
	var rec func(i int, covered Date) Amount
	rec = func(i int, covered Date) Amount {
		for i < len(days) && days[i] <= covered {
			i++
		}
		if i == len(days) {
			return 0
		}
		k := key{i, covered}
		if v, ok := memo[k]; ok {
			return v
		}
		d := days[i]
		best := dayFares[d] + rec(i+1, covered)
		for _, pk := range kinds {
			for _, w := range pk.windowsCovering(d) {
				best = min(best, pk.price+rec(i+1, max(covered, w[1])))
			}
		}
		memo[k] = best
		return best
	}
	return rec(0, -1<<30)
}

func (k passKind) json(id int) string {
	p := ""
	switch k.kind {
	case ServiceDay:
		p = `{"kind":"service_day"}`
	case CalendarWeek:
		p = `{"kind":"calendar_week"}`
	case CalendarMonth:
		p = `{"kind":"calendar_month"}`
	default:
		a := "sliding"
		if k.anchor == FirstTap {
			a = "first_tap"
		}
		p = fmt.Sprintf(`{"kind":"rolling_days","days":%d,"anchor":%q}`, k.days, a)
	}
	return fmt.Sprintf(`{"id":"c%d","amount":"%d","period":%s}`, id, k.price, p)
}

var weekdayJSON = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// bestFareCase builds rules (JPY, so amounts are whole units) and random
// taps for the given pass kinds.
func bestFareCase(t testing.TB, rng *rand.Rand, kinds []passKind, horizon int) (*Rules, []Tap, map[Date]Amount) {
	var caps []string
	ws := time.Monday
	for i, k := range kinds {
		if k.kind == CalendarWeek {
			ws = k.weekDay
		}
		caps = append(caps, k.json(i))
	}
	js := fmt.Sprintf(`{"currency":"JPY","time_zone":"UTC","service_day_start":"00:00","week_start":%q,"caps":[%s]}`,
		weekdayJSON[ws], strings.Join(caps, ","))
	r := mustRules(t, js)
	start := DateOf(2024, time.Month(1+rng.IntN(12)), 1+rng.IntN(28))
	fares := map[Date]Amount{}
	var taps []Tap
	for d := 0; d < horizon; d++ {
		if rng.IntN(3) == 0 {
			continue // days without travel
		}
		day := start + Date(d)
		y, m, dd := day.Civil()
		for n := rng.IntN(4); n >= 0; n-- {
			f := Amount(1 + rng.IntN(6))
			taps = append(taps, Tap{Token: "t", Time: time.Date(y, m, dd, 6+n*3, rng.IntN(60), 0, 0, time.UTC), Fare: f, HasFare: true})
			fares[day] += f
		}
	}
	rng.Shuffle(len(taps), func(i, j int) { taps[i], taps[j] = taps[j], taps[i] })
	return r, taps, fares
}

func randKinds(rng *rand.Rand, allowed []PeriodKind, anchors []Anchor) []passKind {
	n := 1 + rng.IntN(3)
	var ks []passKind
	wd := time.Weekday(rng.IntN(7))
	for i := 0; i < n; i++ {
		k := passKind{kind: allowed[rng.IntN(len(allowed))], price: Amount(2 + rng.IntN(30)), weekDay: wd}
		if k.kind == RollingDays {
			k.days = []int{1, 2, 3, 4, 5, 7}[rng.IntN(6)]
			k.anchor = anchors[rng.IntN(len(anchors))]
		}
		ks = append(ks, k)
	}
	return ks
}

// cases scales a property test's case count down under -short.
func cases(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

func rateTotal(t testing.TB, r *Rules, taps []Tap) Amount {
	t.Helper()
	var rd Rider
	require.NoError(t, NewEngine(r).Rate(&rd, taps))
	checkInvariants(t, r, &rd)
	return rd.Total
}

func TestBestFareSlidingEqualsOptimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < cases(2000); i++ {
		kinds := randKinds(rng, []PeriodKind{ServiceDay, RollingDays}, []Anchor{Sliding})
		r, taps, fares := bestFareCase(t, rng, kinds, 1+rng.IntN(16))
		got, want := rateTotal(t, r, taps), optimum(fares, kinds)
		require.Equal(t, want, got, "case %d: caps %+v fares %v", i, kinds, fares)
	}
}

// Calendar caps are passes aligned to their calendar: with any mix of
// service-day, calendar-week (any first day), calendar-month and sliding
// caps, capping charges exactly the cheapest combination of such passes.
func TestBestFareFixedWindowsEqualOptimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := []PeriodKind{ServiceDay, CalendarWeek, CalendarMonth, RollingDays}
	for i := 0; i < cases(1500); i++ {
		kinds := randKinds(rng, all, []Anchor{Sliding})
		r, taps, fares := bestFareCase(t, rng, kinds, 1+rng.IntN(40))
		got, want := rateTotal(t, r, taps), optimum(fares, kinds)
		require.Equal(t, want, got, "case %d: caps %+v fares %v", i, kinds, fares)
	}
}

// With caps anchored at the first tap, capping never charges more than single
// fares and never less than the optimum where every anchored cap is a pass
// that may start on any day; it can charge more than that optimum (see
// TestBestFareCounterExamples).
func TestBestFareAnchoredBounded(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	all := []PeriodKind{ServiceDay, CalendarWeek, CalendarMonth, RollingDays}
	for i := 0; i < cases(1000); i++ {
		kinds := randKinds(rng, all, []Anchor{FirstTap, Sliding})
		r, taps, fares := bestFareCase(t, rng, kinds, 1+rng.IntN(21))
		got := rateTotal(t, r, taps)
		var singles Amount
		for _, f := range fares {
			singles += f
		}
		require.LessOrEqual(t, got, singles, "case %d", i)
		require.GreaterOrEqual(t, got, optimum(fares, kinds), "case %d: caps %+v", i, kinds)
	}
}

// The documented counter-examples (docs/capping.md, "Where capping differs
// from the optimum").
func TestBestFareCounterExamples(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 4, d, 9, 0, 0, 0, time.UTC) }
	t.Run("anchored window", func(t *testing.T) {
		// 7-day cap 25 anchored at the first tap; fares: day 1 10, days 7..13
		// 10 each. Anchored: window 1..7 charges 10+10, window 8..14 reaches
		// 25: 45. Optimum: a single 10 + a 7-day pass on days 7..13: 35,
		// which the sliding cap charges.
		fares := map[Date]Amount{}
		var taps []Tap
		for _, d := range []int{1, 7, 8, 9, 10, 11, 12, 13} {
			taps = append(taps, Tap{Token: "t", Time: day(d), Fare: 10, HasFare: true})
			fares[DateOf(2024, 4, d)] = 10
		}
		anchored := mustRules(t, `{"currency":"JPY","time_zone":"UTC","caps":[{"id":"a","amount":"25","period":{"kind":"rolling_days","days":7,"anchor":"first_tap"}}]}`)
		sliding := mustRules(t, `{"currency":"JPY","time_zone":"UTC","caps":[{"id":"s","amount":"25","period":{"kind":"rolling_days","days":7}}]}`)
		require.Equal(t, Amount(45), rateTotal(t, anchored, taps))
		require.Equal(t, Amount(35), rateTotal(t, sliding, taps))
		require.Equal(t, Amount(35), optimum(fares, []passKind{{kind: RollingDays, days: 7, price: 25}}))
	})
	t.Run("calendar week against a 7-day pass", func(t *testing.T) {
		// Week cap 20 from Monday, fares 10 on Fri 2024-04-05 to Wed 04-10:
		// two calendar weeks reach the cap: 40. One 7-day pass from Friday
		// would cost 20, which a sliding 7-day cap charges.
		var taps []Tap
		fares := map[Date]Amount{}
		for d := 5; d <= 10; d++ {
			taps = append(taps, Tap{Token: "t", Time: day(d), Fare: 10, HasFare: true})
			fares[DateOf(2024, 4, d)] = 10
		}
		week := mustRules(t, `{"currency":"JPY","time_zone":"UTC","caps":[{"id":"w","amount":"20","period":{"kind":"calendar_week"}}]}`)
		sliding := mustRules(t, `{"currency":"JPY","time_zone":"UTC","caps":[{"id":"s","amount":"20","period":{"kind":"rolling_days","days":7}}]}`)
		require.Equal(t, Amount(40), rateTotal(t, week, taps))
		require.Equal(t, Amount(40), optimum(fares, []passKind{{kind: CalendarWeek, weekDay: time.Monday, price: 20}}))
		require.Equal(t, Amount(20), rateTotal(t, sliding, taps))
		require.Equal(t, Amount(20), optimum(fares, []passKind{{kind: RollingDays, days: 7, price: 20}}))
	})
	t.Run("crossing scopes", func(t *testing.T) {
		// Cap A (bus, tram) 5 and cap B (tram, rail) 5 per day; fares 5.
		// Tram first: one charge fills both caps, bus and rail ride free: 5.
		// Passes cannot do that: the cheapest combination is one pass plus
		// one single, 10. In the other order (bus, rail, tram) capping
		// charges 10. Capping never charges more than the pass optimum, but
		// with crossing scopes it can charge less, depending on the order.
		r := mustRules(t, `{"currency":"JPY","time_zone":"UTC","caps":[
			{"id":"A","amount":"5","period":{"kind":"service_day"},"modes":["bus","tram"]},
			{"id":"B","amount":"5","period":{"kind":"service_day"},"modes":["tram","rail"]}]}`)
		leg := func(h int, mode string) Tap {
			return Tap{Token: "t", Time: time.Date(2024, 4, 1, h, 0, 0, 0, time.UTC), Mode: mode, Fare: 5, HasFare: true}
		}
		require.Equal(t, Amount(5), rateTotal(t, r, []Tap{leg(8, "tram"), leg(9, "bus"), leg(10, "rail")}))
		require.Equal(t, Amount(10), rateTotal(t, r, []Tap{leg(8, "bus"), leg(9, "rail"), leg(10, "tram")}))
	})
}
