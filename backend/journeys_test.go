package backend

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// testJourneysJSON: testRulesJSON's bus fares and caps, and rail by
// journey: zone-pair fares between a tap-on and its tap-off, the maximum
// fare from the tap-on's station for an incomplete journey (outside the
// caps), the maximum fare for a tap-off without a tap-on.
const testJourneysJSON = `{
  "currency": "GBP",
  "time_zone": "Europe/London",
  "service_day_start": "04:30",
  "week_start": "monday",
  "fares": [
    {"id": "bus", "modes": ["bus"], "price": "1.75"}
  ],
  "caps": [
    {"id": "bus-day", "amount": "5.25", "period": {"kind": "service_day"}, "modes": ["bus"]},
    {"id": "z1-3-day", "amount": "9.60", "period": {"kind": "service_day"}, "zones": ["1", "2", "3"]}
  ],
  "transfers": [
    {"id": "hopper", "window_minutes": 60, "measured_from": "first_tap",
     "from_modes": ["bus"], "to_modes": ["bus"], "price": "free", "counts_toward_caps": true}
  ],
  "journeys": [{"id": "rail", "modes": ["rail"], "max_minutes": 90,
                "same_station_minutes": 2, "same_station_price": "0.00",
                "incomplete_price": "max", "unmatched_exit_price": "max",
                "incomplete_caps": "outside"}],
  "od_fares": [
    {"id": "z1-1", "modes": ["rail"], "from_zone": "1", "to_zone": "1", "price": "2.40"},
    {"id": "z1-2", "modes": ["rail"], "from_zone": "1", "to_zone": "2", "price": "3.10"},
    {"id": "z1-3", "modes": ["rail"], "from_zone": "1", "to_zone": "3", "price": "4.70"},
    {"id": "z2-2", "modes": ["rail"], "from_zone": "2", "to_zone": "2", "price": "1.90"},
    {"id": "z2-3", "modes": ["rail"], "from_zone": "2", "to_zone": "3", "price": "2.20"},
    {"id": "z3-3", "modes": ["rail"], "from_zone": "3", "to_zone": "3", "price": "1.80"}
  ]
}`

// testStation is a rail station and its fare zones.
type testStation struct {
	name  string
	zones []string
}

var testStations = []testStation{
	{"Bank", []string{"1"}}, {"Victoria", []string{"1"}}, {"Oval", []string{"1", "2"}},
	{"Brixton", []string{"2"}}, {"Morden", []string{"3"}}, {"Wimbledon", []string{"3"}},
}

// journeyTap is one tap of a journeys workload and the day it is uploaded
// (after its own service day for a gate that was offline).
type journeyTap struct {
	rec tap.Record
	due capping.Date
}

// railTap journals a rail tap-on or tap-off at a station.
func (g *testGate) railTap(t testing.TB, c card, at time.Time, role tap.Role, st testStation) tap.Record {
	r := g.tap(t, c, at, "rail", st.zones...)
	r.Location.Role, r.Location.Stop = role, st.name
	return r
}

// journeysWorkload makes riders' days of bus boardings and rail journeys:
// most journeys complete, some without a tap-off (incomplete), some
// tap-offs without a tap-on, some at one station, some tap-offs uploaded
// two days late, and one journey across the end of a service day.
func journeysWorkload(t testing.TB, rng *rand.Rand, gates []*testGate, riders int, first capping.Date, days int, rules *capping.Rules) [][]journeyTap {
	out := make([][]journeyTap, days)
	for d := range days {
		day := first + capping.Date(d)
		start, end := DayBounds(rules, day)
		add := func(r tap.Record, due capping.Date) { out[d] = append(out[d], journeyTap{r, due}) }
		for i := range riders {
			c := testCard(i)
			at := start.Add(time.Duration(rng.IntN(3*3600)) * time.Second)
			for range 1 + rng.IntN(5) {
				g := gates[rng.IntN(len(gates))]
				on, off := testStations[rng.IntN(len(testStations))], testStations[rng.IntN(len(testStations))]
				ride := time.Duration(5+rng.IntN(80)) * time.Minute
				switch k := rng.IntN(20); {
				case k < 6:
					add(g.tap(t, c, at, "bus"), day)
				case k < 8: // incomplete: no tap-off
					add(g.railTap(t, c, at, tap.RoleEntry, on), day)
				case k < 9: // a tap-off without a tap-on
					add(g.railTap(t, c, at, tap.RoleExit, off), day)
				case k < 10: // out again at the same station
					add(g.railTap(t, c, at, tap.RoleEntry, on), day)
					add(g.railTap(t, c, at.Add(time.Minute), tap.RoleExit, on), day)
				case k < 12: // the exit gate uploads two days late
					add(g.railTap(t, c, at, tap.RoleEntry, on), day)
					add(g.railTap(t, c, at.Add(ride), tap.RoleExit, off), day+2)
				default:
					add(g.railTap(t, c, at, tap.RoleEntry, on), day)
					add(g.railTap(t, c, at.Add(ride), tap.RoleExit, off), day)
				}
				at = at.Add(ride + time.Duration(20+rng.IntN(240))*time.Minute)
				if at.After(start.Add(22 * time.Hour)) {
					break
				}
			}
		}
		// Rider 0 taps on ten minutes before the service day ends and off
		// ten minutes after: the first run sees an incomplete journey.
		g := gates[0]
		add(g.railTap(t, testCard(0), end.Add(-10*time.Minute), tap.RoleEntry, testStations[0]), day)
		add(g.railTap(t, testCard(0), end.Add(10*time.Minute), tap.RoleExit, testStations[4]), day+1)
		slices.SortFunc(out[d], func(a, b journeyTap) int { return a.rec.Time.Compare(b.rec.Time) })
	}
	return out
}

// TestSettlementJourneysEqualCap: gates' tap-ons and tap-offs, uploaded on
// time and late, settled day by day in two shards, charge every rider
// exactly what the capping engine (`faregate cap` with the direction and
// station columns) computes on the same taps, run by run: complete
// journeys at their zone fares, incomplete ones at the maximum fare and
// refunded when the late tap-off arrives.
func TestSettlementJourneysEqualCap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := newBackoffice(t, s, IngestOptions{})
		rules, err := capping.ParseRules([]byte(testJourneysJSON))
		require.NoError(t, err)
		b.rules, b.settler.Rules = rules, rules
		rng := rand.New(rand.NewPCG(5, 6))
		var gates []*testGate
		for _, id := range []string{"G-1", "G-2", "G-3"} {
			gates = append(gates, newTestGate(t, s, id, b.vault.key.PublicKey()))
		}
		first := capping.DateOf(2026, 10, 21)
		const days = 6
		riders := 30
		if raceOn {
			riders = 10
		}
		work := journeysWorkload(t, rng, gates, riders, first, days, rules)

		var capAll []capping.Tap
		upload := func(g *testGate, at time.Time, recs []tap.Record) {
			g.upload(t, b.srv.URL, at, recs)
			for _, r := range recs {
				// The taps file `faregate cap` reads: every opened tap of a
				// rider, with its direction and station.
				capAll = append(capAll, capping.Tap{Token: r.Token.String(), Time: r.Time, Mode: r.Location.Mode, Zones: r.Location.Zones,
					Role: string(r.Location.Role), Stop: r.Location.Stop, Received: at})
			}
		}
		gateOf := func(id string) *testGate {
			return gates[slices.IndexFunc(gates, func(g *testGate) bool { return g.id == id })]
		}
		var late []journeyTap
		for d := range days + 2 {
			day := first + capping.Date(d)
			start, end := DayBounds(rules, day)
			if d < days {
				// Today's taps, each uploaded when it is made.
				for _, jt := range work[d] {
					if jt.due != day {
						late = append(late, jt)
						continue
					}
					b.clock.t = jt.rec.Time
					upload(gateOf(jt.rec.Gate), b.clock.t, []tap.Record{jt.rec})
				}
			}
			// Late taps due today arrive at noon, in one batch per gate.
			b.clock.t = start.Add(8 * time.Hour)
			for _, g := range gates {
				var batch []tap.Record
				for _, l := range late {
					if l.due == day && l.rec.Gate == g.id {
						batch = append(batch, l.rec)
					}
				}
				if len(batch) > 0 {
					upload(g, b.clock.t, batch)
				}
			}
			b.clock.t = end.Add(time.Hour)
			for i := range 2 {
				_, err := b.settler.Settle(ctx, day, Shard{i, 2})
				require.NoError(t, err)
			}
		}

		for i := range capAll {
			require.NoError(t, rules.Resolve(&capAll[i]))
		}
		st, err := capping.Settle(rules, capAll)
		require.NoError(t, err)
		want := map[string]capping.Amount{} // token/run → charged
		kinds := map[capping.Outcome]int{}
		for _, rd := range st.Riders {
			for _, run := range rd.Settlements {
				if run.Charged != 0 {
					want[rd.Token+"/"+run.Run.String()] += run.Charged
				}
			}
			for _, l := range rd.Legs {
				kinds[l.Journey]++
			}
		}
		got := map[string]capping.Amount{}
		refunds := 0
		for d := range days + 2 {
			cs, err := s.Charges(ctx, first+capping.Date(d))
			require.NoError(t, err)
			for _, c := range cs {
				if c.Amount != 0 {
					got[c.Token.String()+"/"+c.Day.String()] = c.Amount
				}
				if c.Amount < 0 {
					refunds++
				}
			}
		}
		for _, k := range []capping.Outcome{capping.JourneyComplete, capping.JourneyIncomplete, capping.JourneyUnmatchedExit, capping.JourneySameStation} {
			require.Positive(t, kinds[k], "the workload has journeys of outcome %d", k)
		}
		require.Greater(t, len(want), 3*riders, "a workload worth the name")
		require.Equal(t, want, got, "every run's charge equals the capping engine's")
		require.Positive(t, refunds, "late tap-offs refunded maximum fares")
	})
}

// TestSettleTapOffWithoutJourneys: a tap-off of a mode no journeys rule
// pairs (a bus with exit readers) ends a journey priced at its boarding:
// settlement charges the boarding alone, where a tap-off of rail (paired by
// the rules' journeys) completes a journey.
func TestSettleTapOffWithoutJourneys(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := newBackoffice(t, s, IngestOptions{})
		rules, err := capping.ParseRules([]byte(testJourneysJSON))
		require.NoError(t, err)
		b.rules, b.settler.Rules = rules, rules
		g := newTestGate(t, s, "G-1", b.vault.key.PublicKey())
		day := capping.DateOf(2026, 10, 21)
		start, end := DayBounds(rules, day)
		c := testCard(1)
		on := g.tap(t, c, start.Add(3*time.Hour), "bus")
		off := g.tap(t, c, start.Add(3*time.Hour+70*time.Minute), "bus") // past the Hopper
		off.Location.Role = tap.RoleExit
		railOn := g.railTap(t, c, start.Add(5*time.Hour), tap.RoleEntry, testStations[0])
		railOff := g.railTap(t, c, start.Add(5*time.Hour+30*time.Minute), tap.RoleExit, testStations[3])
		b.clock.t = start.Add(6 * time.Hour)
		g.upload(t, b.srv.URL, b.clock.t, []tap.Record{on, off, railOn, railOff})
		b.clock.t = end.Add(time.Hour)
		_, err = b.settler.Settle(ctx, day, Shard{0, 1})
		require.NoError(t, err)
		cs, err := s.Charges(ctx, day)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		require.Equal(t, "4.85", rules.Currency.Format(cs[0].Amount), "one bus fare (1.75) and Bank–Brixton (zones 1–2, 3.10)")
	})
}
