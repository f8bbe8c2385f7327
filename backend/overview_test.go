package backend

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
	"github.com/stretchr/testify/require"
)

// TestOverview: GET /v1/overview counts the uploaded taps by hour and by
// decision, its fares, charges and savings are the sums of the riders'
// receipts, and its billing the sums of the days' charges.
func TestOverview(t *testing.T) {
	forEachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		b := newBackoffice(t, s, IngestOptions{})
		rng := rand.New(rand.NewPCG(3, 4))
		var gates []*testGate
		for _, id := range []string{"G-1", "G-2"} {
			gates = append(gates, newTestGate(t, s, id, b.vault.key.PublicKey()))
		}
		first := capping.DateOf(2026, 11, 23)
		const days = 3
		work := workload(t, rng, gates, 15, first, days, b.rules)
		hours := map[time.Time]int{}
		decisions := map[string]int64{}
		var taps, refused int64
		for d := range days {
			for i := range work[d] {
				if i%9 == 4 { // a refused tap: stored, counted, never charged
					r := &work[d][i]
					r.Decision, r.Reason, r.Sealed = tap.Reject, "denylisted", nil
				}
			}
			_, end := DayBounds(b.rules, first+capping.Date(d))
			b.clock.t = end.Add(-time.Minute)
			for _, g := range gates {
				var batch []tap.Record
				for _, r := range work[d] {
					if r.Gate == g.id {
						batch = append(batch, r)
						taps++
						hours[r.Time.UTC().Truncate(time.Hour)]++
						decisions[string(r.Decision)+"/"+r.Reason]++
						if r.Decision != tap.Open {
							refused++
						}
					}
				}
				g.upload(t, b.srv.URL, b.clock.t, batch)
			}
			b.clock.t = end.Add(time.Hour)
			_, err := b.settler.Settle(ctx, first+capping.Date(d), Shard{0, 1})
			require.NoError(t, err)
		}
		cs, err := s.Charges(ctx, first+1)
		require.NoError(t, err)
		require.NoError(t, s.RecordOutcome(ctx, cs[0].ID, Outcome{Status: ChargeDeclined, Code: "51", At: b.clock.t}))

		var ov OverviewJSON
		period := fmt.Sprintf("from=%s&to=%s", first, first+days-1)
		getJSON(t, b.srv.URL+"/v1/overview?"+period, &ov)
		require.Equal(t, taps, ov.Taps)
		require.Equal(t, refused, ov.Refused)
		require.Equal(t, taps-refused, ov.Opened)
		gotHours := map[time.Time]int{}
		for _, h := range ov.Hours {
			if h.Taps > 0 {
				gotHours[h.Hour.UTC()] = h.Taps
			}
		}
		require.Equal(t, hours, gotHours)
		start, _ := DayBounds(b.rules, first)
		_, end := DayBounds(b.rules, first+days-1)
		span := end.Sub(start.Truncate(time.Hour)) // 04:00 on the first day to 04:30 after the last
		require.Len(t, ov.Hours, int((span+time.Hour-1)/time.Hour), "every hour of the period, the partial ones too")
		gotDecisions := map[string]int64{}
		for _, d := range ov.Decisions {
			gotDecisions[d.Decision+"/"+d.Reason] = d.Taps
		}
		require.Equal(t, decisions, gotDecisions)

		// Fares, charged and saved: the sums of the riders' receipts.
		cur := b.rules.Currency
		var fares, charged, saved capping.Amount
		riders := 0
		for i := range 15 {
			var rc ReceiptJSON
			getJSON(t, b.srv.URL+"/v1/riders/"+testCard(i).token.String()+"/receipts?"+period, &rc)
			if len(rc.Legs) == 0 {
				continue
			}
			riders++
			for _, x := range []struct {
				s   string
				sum *capping.Amount
			}{{rc.Fares, &fares}, {rc.Charged, &charged}, {rc.Saved, &saved}} {
				v, err := cur.ParseAmount(x.s)
				require.NoError(t, err)
				*x.sum += v
			}
			require.Equal(t, testCard(i).pan[:6]+"******"+testCard(i).pan[12:], rc.MaskedPAN)
		}
		require.Equal(t, riders, ov.Riders)
		require.Equal(t, cur.Format(fares), ov.Fares)
		require.Equal(t, cur.Format(charged), ov.Charged)
		require.Equal(t, cur.Format(saved), ov.Saved)
		require.Equal(t, cur.Format(fares-charged), ov.Saved)
		require.Positive(t, saved, "the caps saved something")

		// Billing: the days' charges; no late taps, so billed = charged.
		var billed capping.Amount
		n := 0
		for d := range days {
			var cj ChargesJSON
			getJSON(t, b.srv.URL+fmt.Sprintf("/v1/charges?day=%s", first+capping.Date(d)), &cj)
			v, err := cur.ParseAmount(cj.Total)
			require.NoError(t, err)
			billed += v
			n += len(cj.Charges)
		}
		require.Equal(t, cur.Format(billed), ov.Billed)
		require.Equal(t, ov.Charged, ov.Billed)
		got := 0
		for _, st := range ov.Billing {
			got += st.Charges
		}
		require.Equal(t, n, got)
		require.Equal(t, StatusTotalJSON{Status: ChargeDeclined, Charges: 1, Amount: cur.Format(cs[0].Amount)}, ov.Declined)
		require.Nil(t, ov.Debt, "no deny list here")

		// Refusals: a bad period is 400; the deny-list status 404 without one.
		resp, _ := authGet(t, b.srv.URL+"/v1/overview?from=2026-11-25&to=2026-11-23")
		require.Equal(t, 400, resp)
		resp, _ = authGet(t, b.srv.URL+"/v1/denylist/status")
		require.Equal(t, 404, resp)
	})
}

// authGet returns the status and body of an operator's GET.
func authGet(t testing.TB, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testOperatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// BenchmarkOverview: GET /v1/overview's query (ReadAPI.Overview) over 7
// days of 200 riders on SQLite: a console page load.
func BenchmarkOverview(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	defer s.Close()
	bo := newBackoffice(b, s, IngestOptions{})
	rng := rand.New(rand.NewPCG(5, 6))
	gates := []*testGate{newTestGate(b, s, "G-1", nil), newTestGate(b, s, "G-2", nil)}
	first := capping.DateOf(2026, 11, 16)
	const days = 7
	taps := 0
	for d, recs := range workload(b, rng, gates, 200, first, days, bo.rules) {
		_, end := DayBounds(bo.rules, first+capping.Date(d))
		bo.clock.t = end.Add(-time.Minute)
		for _, g := range gates {
			var batch []tap.Record
			for _, r := range recs {
				if r.Gate == g.id {
					batch = append(batch, r)
				}
			}
			g.upload(b, bo.srv.URL, bo.clock.t, batch)
			taps += len(batch)
		}
		bo.clock.t = end.Add(time.Hour)
		_, err := bo.settler.Settle(ctx, first+capping.Date(d), Shard{0, 1})
		require.NoError(b, err)
	}
	api := &ReadAPI{Store: s, Rules: bo.rules, Now: bo.clock.Now}
	b.ResetTimer()
	for b.Loop() {
		ov, err := api.Overview(ctx, first, first+days-1)
		require.NoError(b, err)
		require.Equal(b, int64(taps), ov.Taps)
	}
	b.ReportMetric(float64(taps), "taps")
}
