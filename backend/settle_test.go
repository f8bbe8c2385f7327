package backend

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// testRulesJSON: London-like rules with a 04:30 service day, zone and bus
// caps per day and per Monday–Sunday week, and a one-hour bus Hopper.
const testRulesJSON = `{
  "currency": "GBP",
  "time_zone": "Europe/London",
  "service_day_start": "04:30",
  "week_start": "monday",
  "fares": [
    {"id": "bus", "modes": ["bus"], "price": "1.75"},
    {"id": "rail", "modes": ["rail"], "price": "2.90"}
  ],
  "caps": [
    {"id": "bus-day", "amount": "5.25", "period": {"kind": "service_day"}, "modes": ["bus"]},
    {"id": "z1-2-day", "amount": "8.90", "period": {"kind": "service_day"}, "zones": ["1", "2"]},
    {"id": "z1-2-week", "amount": "44.70", "period": {"kind": "calendar_week"}, "zones": ["1", "2"]}
  ],
  "transfers": [
    {"id": "hopper", "window_minutes": 60, "measured_from": "first_tap",
     "from_modes": ["bus"], "to_modes": ["bus"], "price": "free", "counts_toward_caps": true}
  ]
}`

func testRules(t testing.TB) *capping.Rules {
	r, err := capping.ParseRules([]byte(testRulesJSON))
	require.NoError(t, err)
	return r
}

// backoffice is a back office under test on one store, with a fake clock.
type backoffice struct {
	store   Store
	rules   *capping.Rules
	clock   *fakeClock
	ingest  *Ingest
	srv     *httptest.Server
	settler *Settler
	vault   *Vault
}

const testOperatorToken = "operator-secret"

func newBackoffice(t testing.TB, s Store, o IngestOptions) *backoffice {
	vaultKey, err := tap.GenerateVaultKey(nil)
	require.NoError(t, err)
	b := &backoffice{store: s, rules: testRules(t), clock: &fakeClock{t: st0}}
	if o.Now == nil {
		o.Now = b.clock.Now
	}
	b.ingest = NewIngest(s, NewMetrics(nil), o)
	read := &ReadAPI{Store: s, Rules: b.rules, Token: testOperatorToken, Now: b.clock.Now}
	b.srv = httptest.NewServer((&Server{Ingest: b.ingest, Read: read}).Handler())
	t.Cleanup(func() { b.srv.Close(); b.ingest.Close() })
	b.settler = &Settler{Store: s, Rules: b.rules, Now: b.clock.Now, FlushEvery: 7}
	b.vault = NewVault(s, vaultKey, testTokenKey)
	return b
}

// workload makes days of random travel for riders at gates: each rider
// taps 0–6 times a day by bus or rail in zones 1, 1–2 or 1–3.
func workload(t testing.TB, rng *rand.Rand, gates []*testGate, riders int, first capping.Date, days int, rules *capping.Rules) [][]tap.Record {
	out := make([][]tap.Record, days)
	for d := range days {
		start, _ := DayBounds(rules, first+capping.Date(d))
		for i := range riders {
			c := testCard(i)
			at := start.Add(time.Duration(rng.IntN(3*3600)) * time.Second)
			for range rng.IntN(7) {
				g := gates[rng.IntN(len(gates))]
				mode, zones := "rail", [][]string{{"1"}, {"1", "2"}, {"1", "2", "3"}}[rng.IntN(3)]
				if rng.IntN(2) == 0 {
					mode, zones = "bus", nil
				}
				out[d] = append(out[d], g.tap(t, c, at, mode, zones...))
				at = at.Add(time.Duration(20+rng.IntN(240)) * time.Minute)
				if at.After(start.Add(23 * time.Hour)) {
					break
				}
			}
		}
		slices.SortFunc(out[d], func(a, b tap.Record) int { return a.Time.Compare(b.Time) })
	}
	return out
}

// TestSettlementEqualsCap is the back office's promise: taps uploaded by
// gates (on time, and some days late) and settled day by day give every
// rider exactly the charges `faregate cap` computes on the same taps, run
// by run; re-running a day changes nothing.
func TestSettlementEqualsCap(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := newBackoffice(t, s, IngestOptions{})
		rng := rand.New(rand.NewPCG(1, 2))
		var gates []*testGate
		for _, id := range []string{"G-1", "G-2", "G-3"} {
			gates = append(gates, newTestGate(t, s, id, b.vault.key.PublicKey()))
		}
		// Nine days across the end of British Summer Time (25 October 2026)
		// and a week boundary.
		first := capping.DateOf(2026, 10, 21)
		const days = 9
		riders := 40
		if raceOn {
			riders = 12
		}
		work := workload(t, rng, gates, riders, first, days, b.rules)

		var capAll []capping.Tap
		type lateTap struct {
			rec tap.Record
			due capping.Date // uploaded during this day
		}
		var late []lateTap
		for d := range days {
			day := first + capping.Date(d)
			// Today's taps, each uploaded when it is made, one in ten held back
			// two days (a gate offline).
			for _, r := range work[d] {
				if rng.IntN(10) == 0 {
					late = append(late, lateTap{r, day + 2})
					continue
				}
				b.clock.t = r.Time
				g := gates[slices.IndexFunc(gates, func(g *testGate) bool { return g.id == r.Gate })]
				g.upload(t, b.srv.URL, b.clock.t, []tap.Record{r})
				capAll = append(capAll, withReceived(capTaps([]tap.Record{r}), r.Time)...)
			}
			// Late taps due today arrive at noon, in one batch per gate.
			start, end := DayBounds(b.rules, day)
			b.clock.t = start.Add(8 * time.Hour)
			for _, g := range gates {
				var batch []tap.Record
				for _, l := range late {
					if l.due == day && l.rec.Gate == g.id {
						batch = append(batch, l.rec)
					}
				}
				if len(batch) > 0 {
					g.upload(t, b.srv.URL, b.clock.t, batch)
					capAll = append(capAll, withReceived(capTaps(batch), b.clock.t)...)
				}
			}
			// Settle an hour after the day ends, in two shards.
			b.clock.t = end.Add(time.Hour)
			for i := range 2 {
				_, err := b.settler.Settle(ctx, day, Shard{i, 2})
				require.NoError(t, err)
			}
			again, err := b.settler.Settle(ctx, day, Shard{0, 1})
			require.NoError(t, err)
			require.Zero(t, again.Riders, "re-running a day changes nothing")
		}

		for _, r := range capAll {
			require.NoError(t, b.rules.Resolve(&r))
		}
		st, err := capping.Settle(b.rules, capAll)
		require.NoError(t, err)
		want := map[string]capping.Amount{} // token/run → charged
		var wantTotal capping.Amount
		for _, rd := range st.Riders {
			for _, run := range rd.Settlements {
				want[rd.Token+"/"+run.Run.String()] += run.Charged
			}
			wantTotal += rd.Total
		}
		got := map[string]capping.Amount{}
		var gotTotal capping.Amount
		adjustments := 0
		for d := range days {
			cs, err := s.Charges(ctx, first+capping.Date(d))
			require.NoError(t, err)
			for _, c := range cs {
				if c.Amount != 0 {
					got[c.Token.String()+"/"+c.Day.String()] = c.Amount
				}
				if c.Adjustment != 0 {
					adjustments++
				}
				gotTotal += c.Amount
			}
		}
		for k, v := range want {
			if v == 0 {
				delete(want, k)
			}
		}
		require.Greater(t, len(want), 5*riders, "a workload worth the name")
		require.Equal(t, wantTotal, gotTotal)
		require.Equal(t, want, got, "every run's charge equals faregate cap's")
		require.Positive(t, adjustments, "late taps gave adjustments")

		// The read API tells a rider's story with the same numbers.
		c := testCard(3)
		var rc ReceiptJSON
		getJSON(t, b.srv.URL+"/v1/riders/"+c.token.String()+"/receipts?from="+first.String()+"&to="+(first+days-1).String(), &rc)
		var charged capping.Amount
		cs, err := s.RiderCharges(ctx, c.token)
		require.NoError(t, err)
		for _, ch := range cs {
			charged += ch.Amount
		}
		require.Equal(t, b.rules.Currency.Format(charged), rc.Charged)
		require.Len(t, rc.Charges, len(cs))
		require.NotEmpty(t, rc.Legs)
		var dayTaps int
		for _, d := range rc.Days {
			dayTaps += d.Taps
		}
		require.Equal(t, len(rc.Legs), dayTaps)

		// The vault opens the newest card data of a token, and only there.
		cd, err := b.vault.CardData(ctx, c.token)
		require.NoError(t, err)
		require.Equal(t, c.pan, cd.PAN)
		tk, err := b.vault.TokenOf(c.pan, "")
		require.NoError(t, err)
		require.Equal(t, c.token, tk)
		_, err = b.vault.CardData(ctx, rider.Token{1})
		require.ErrorIs(t, err, ErrNoCardData)
	})
}

func withReceived(ts []capping.Tap, at time.Time) []capping.Tap {
	for i := range ts {
		ts[i].Received = at
	}
	return ts
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testOperatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestSettleRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := newBackoffice(t, s, IngestOptions{})
		day := capping.DateOf(2026, 11, 23)
		_, end := DayBounds(b.rules, day)
		b.clock.t = end.Add(-time.Second)
		_, err := b.settler.Settle(ctx, day, Shard{0, 1})
		require.ErrorIs(t, err, ErrDayNotOver)
		b.clock.t = end.Add(48 * time.Hour)
		_, err = b.settler.Settle(ctx, day, Shard{0, 1})
		require.NoError(t, err)
		_, err = b.settler.Settle(ctx, day+2, Shard{0, 1})
		require.ErrorIs(t, err, ErrRunOrder, "a gap")
		_, err = b.settler.Settle(ctx, day+1, Shard{0, 2})
		require.NoError(t, err)
		_, err = b.settler.Settle(ctx, day+2, Shard{0, 1})
		require.ErrorIs(t, err, ErrRunOrder, "the previous day is not complete")
		_, err = b.settler.Settle(ctx, day, Shard{2, 2})
		require.Error(t, err)
	})
}

func TestDayBoundsAcrossDST(t *testing.T) {
	r := testRules(t)
	start, end := DayBounds(r, capping.DateOf(2026, 10, 24)) // clocks go back at 02:00 BST on the 25th
	require.Equal(t, time.Date(2026, 10, 24, 3, 30, 0, 0, time.UTC), start)
	require.Equal(t, time.Date(2026, 10, 25, 4, 30, 0, 0, time.UTC), end)
	require.Equal(t, 25*time.Hour, end.Sub(start))
}
