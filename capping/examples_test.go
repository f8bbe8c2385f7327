package capping

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// examplesDir holds the published worked examples: one directory per case
// with rules.json, taps.csv, SOURCE.md (source and quoted text) and
// expect.json (hand-computed expectations).
const examplesDir = "../testdata/capping"

type expectRider struct {
	Total       string `json:"total"`
	Charged     string `json:"charged"`
	CappedBy    string `json:"capped_by"`
	Days        string `json:"days"`
	Settlements string `json:"settlements"`
	CapsReached string `json:"caps_reached"`
	Journeys    string `json:"journeys"` // per leg: complete, exit, incomplete, …; "-" for a tap on its own
}

type expectFile struct {
	Total  string                 `json:"total"`
	Riders map[string]expectRider `json:"riders"`
}

// expand turns "1.00*3 0.50 -*2" into "1.00 1.00 1.00 0.50 - -".
func expand(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		v, n, ok := strings.Cut(f, "*")
		if !ok {
			out = append(out, f)
			continue
		}
		k, err := strconv.Atoi(n)
		if err != nil {
			out = append(out, f)
			continue
		}
		for i := 0; i < k; i++ {
			out = append(out, v)
		}
	}
	return strings.Join(out, " ")
}

func TestPublishedExamples(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(examplesDir, "*", "expect.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(dirs), 5)
	for _, exp := range dirs {
		dir := filepath.Dir(exp)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, "SOURCE.md"))
			require.NoError(t, err, "every example names its source")
			require.Contains(t, string(src), "Source", "SOURCE.md names its source")
			require.Contains(t, string(src), "> ", "SOURCE.md quotes the example's text")
			rulesJSON, err := os.ReadFile(filepath.Join(dir, "rules.json"))
			require.NoError(t, err)
			r, err := ParseRules(rulesJSON)
			require.NoError(t, err)
			f, err := os.Open(filepath.Join(dir, "taps.csv"))
			require.NoError(t, err)
			defer f.Close()
			taps, err := ParseTaps(f, r)
			require.NoError(t, err)
			st, err := Settle(r, taps)
			require.NoError(t, err)

			raw, err := os.ReadFile(exp)
			require.NoError(t, err)
			var want expectFile
			require.NoError(t, json.Unmarshal(raw, &want))
			c := r.Currency
			got := map[string]*Rider{}
			for i := range st.Riders {
				got[st.Riders[i].Token] = &st.Riders[i]
			}
			require.Len(t, got, len(want.Riders), "riders")
			for tok, w := range want.Riders {
				rd := got[tok]
				require.NotNil(t, rd, "rider %s", tok)
				require.Equal(t, w.Total, c.Format(rd.Total), "%s total", tok)
				if w.Charged != "" {
					require.Equal(t, expand(w.Charged), fmtCharges(r, rd), "%s charges", tok)
				}
				if w.CappedBy != "" {
					var cb []string
					for _, l := range rd.Legs {
						cb = append(cb, dash(l.CappedBy))
					}
					require.Equal(t, expand(w.CappedBy), strings.Join(cb, " "), "%s capped_by", tok)
				}
				if w.Days != "" {
					var ds []string
					for _, d := range rd.Days {
						ds = append(ds, d.Day.String()+"="+c.Format(d.Charged))
					}
					require.Equal(t, w.Days, strings.Join(ds, " "), "%s days", tok)
				}
				if w.Settlements != "" {
					var ss []string
					for _, s := range rd.Settlements {
						ss = append(ss, s.Run.String()+"="+c.Format(s.Charged))
					}
					require.Equal(t, w.Settlements, strings.Join(ss, " "), "%s settlements", tok)
				}
				if w.Journeys != "" {
					var js []string
					for _, l := range rd.Legs {
						js = append(js, dash(l.Journey.String()))
					}
					require.Equal(t, expand(w.Journeys), strings.Join(js, " "), "%s journeys", tok)
				}
				if w.CapsReached != "" {
					require.Equal(t, w.CapsReached, strings.Join(rd.CapsReached(), " "), "%s caps reached", tok)
				}
				checkInvariants(t, r, rd)
			}
			require.Equal(t, want.Total, c.Format(st.Total), "statement total")
		})
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// checkInvariants holds for every rating: charges never exceed fares nor go
// negative, days and settlement runs add up to the total, and runs are in
// order.
func checkInvariants(t testing.TB, r *Rules, rd *Rider) {
	t.Helper()
	var legs, days, runs Amount
	for _, l := range rd.Legs {
		require.GreaterOrEqual(t, l.Charged, Amount(0))
		require.LessOrEqual(t, l.Charged, l.Fare)
		require.LessOrEqual(t, l.Fare, l.Base)
		legs += l.Charged
	}
	for _, d := range rd.Days {
		days += d.Charged
	}
	for i, s := range rd.Settlements {
		runs += s.Charged
		if i > 0 {
			require.Less(t, rd.Settlements[i-1].Run, s.Run)
		}
	}
	require.Equal(t, rd.Total, legs)
	require.Equal(t, rd.Total, days)
	require.Equal(t, rd.Total, runs)
	for _, w := range rd.Windows {
		ci := w.capIndex
		if r.Caps[ci].Amount > 0 {
			require.LessOrEqual(t, w.Charged, r.Caps[ci].Amount, "cap %s window %s", w.Cap, w.From)
		}
	}
}
