package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/capping"
)

var update = flag.Bool("update", false, "rewrite golden files")

const capExamples = "../../testdata/capping"

// runCLI runs faregate in-process and returns stdout and the exit code.
func runCLI(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code, err
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file (go test ./cmd/faregate -run Cap -update)")
	require.Equal(t, string(want), got)
}

// Every published example through the CLI, against golden JSON (whose
// totals the capping package checks against hand-computed expectations).
func TestCapExamplesJSON(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(capExamples, "*", "rules.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, rules := range dirs {
		dir := filepath.Dir(rules)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", filepath.Join(dir, "taps.csv"), "--json")
			require.NoError(t, err)
			require.Equal(t, 0, code)
			golden(t, filepath.Join(dir, "want.json"), out)

			var doc struct {
				Currency string `json:"currency"`
				Total    string `json:"total"`
				Riders   []struct {
					Token string `json:"token"`
					Total string `json:"total"`
					Legs  []struct {
						Time, Mode, Fare, Charged string
						CappedBy                  *string `json:"capped_by"`
					} `json:"legs"`
					Days []struct {
						ServiceDay string `json:"service_day"`
						Charged    string `json:"charged"`
					} `json:"days"`
					Settlements []struct{ Run, Charged string } `json:"settlements"`
					CapsReached []string                        `json:"caps_reached"`
				} `json:"riders"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &doc))
			require.NotEmpty(t, doc.Currency)
			for _, r := range doc.Riders {
				require.NotEmpty(t, r.Legs)
				require.NotEmpty(t, r.Days)
				require.NotEmpty(t, r.Settlements)
				require.NotNil(t, r.CapsReached)
				for _, l := range r.Legs {
					require.NotNil(t, l.CappedBy)
				}
			}
		})
	}
}

func TestCapTable(t *testing.T) {
	dir := filepath.Join(capExamples, "tfl")
	out, code, err := runCLI(t, "cap", "--rules", filepath.Join(dir, "rules.json"), "--taps", filepath.Join(dir, "taps.csv"))
	require.NoError(t, err)
	require.Equal(t, 0, code)
	golden(t, filepath.Join("testdata", "cap-tfl.txt"), out)
}

func TestCapHeaderOnly(t *testing.T) {
	taps := filepath.Join(t.TempDir(), "taps.csv")
	require.NoError(t, os.WriteFile(taps, []byte("token,time,mode,category,fare,zones,received\n"), 0o644))
	rules := filepath.Join(capExamples, "seed", "rules.json")
	out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.JSONEq(t, `{"currency":"USD","total":"0.00","riders":[]}`, out)
	out, _, err = runCLI(t, "cap", "--rules", rules, "--taps", taps)
	require.NoError(t, err)
	require.Contains(t, out, "total 0.00 USD (0 riders, 0 taps)")
}

func TestCapBadInput(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := filepath.Join(capExamples, "seed", "rules.json")
	goodTaps := filepath.Join(capExamples, "seed", "taps.csv")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing flags", []string{"cap"}, 2, "--rules and --taps are required"},
		{"missing rules file", []string{"cap", "--rules", filepath.Join(tmp, "nope.json"), "--taps", goodTaps}, 2, "no such file"},
		{"bad rules", []string{"cap", "--rules", write("r.json", "{\n\"currency\": \"USD\",\n\"time_zone\": \"UTC\",\n\"caps\": [{\"id\": \"d\", \"amount\": \"-1\", \"period\": {\"kind\": \"service_day\"}}]\n}"), "--taps", goodTaps}, 2, "rules line 4: caps[0] \"d\": amount: invalid amount"},
		{"bad taps", []string{"cap", "--rules", good, "--taps", write("t.csv", "token,time\na,2024-03-04T08:00:00Z\nb,not-a-time\n")}, 2, "taps line 3: time"},
		{"unknown column", []string{"cap", "--rules", good, "--taps", write("u.csv", "token,time,price\n")}, 2, "taps line 1"},
		{"extra argument", []string{"cap", "x"}, 2, "unexpected argument"},
		{"unknown flag", []string{"cap", "--rulez", good}, 2, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, code, err := runCLI(t, tc.args...)
			require.Error(t, err)
			require.Equal(t, tc.code, code, err.Error())
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

// refCapJSON is the --json document built the simple way: Settle over
// ParseTaps, encoding/json. The streamed output must equal it byte for byte.
func refCapJSON(t *testing.T, rulesPath, tapsPath string) string {
	t.Helper()
	data, err := os.ReadFile(rulesPath)
	require.NoError(t, err)
	r, err := capping.ParseRules(data)
	require.NoError(t, err)
	f, err := os.Open(tapsPath)
	require.NoError(t, err)
	defer f.Close()
	taps, err := capping.ParseTaps(f, r)
	require.NoError(t, err)
	st, err := capping.Settle(r, taps)
	require.NoError(t, err)
	type leg struct {
		Time     string  `json:"time"`
		Mode     string  `json:"mode"`
		Fare     string  `json:"fare"`
		Charged  string  `json:"charged"`
		CappedBy string  `json:"capped_by"`
		Journey  string  `json:"journey,omitempty"` // gated journeys only
		Station  *string `json:"station,omitempty"` // present (maybe "") on journey legs
	}
	type day struct {
		ServiceDay string `json:"service_day"`
		Charged    string `json:"charged"`
	}
	type run struct {
		Run     string `json:"run"`
		Charged string `json:"charged"`
	}
	type rider struct {
		Token       string   `json:"token"`
		Total       string   `json:"total"`
		Legs        []leg    `json:"legs"`
		Days        []day    `json:"days"`
		Settlements []run    `json:"settlements"`
		CapsReached []string `json:"caps_reached"`
	}
	c := st.Currency
	doc := struct {
		Currency string  `json:"currency"`
		Total    string  `json:"total"`
		Riders   []rider `json:"riders"`
	}{c.Code, c.Format(st.Total), []rider{}}
	for _, rd := range st.Riders {
		rj := rider{Token: rd.Token, Total: c.Format(rd.Total), Legs: []leg{}, Days: []day{}, Settlements: []run{}, CapsReached: rd.CapsReached()}
		for _, l := range rd.Legs {
			lj := leg{Time: string(taps[l.Tap].AppendTime(nil)), Mode: l.Mode, Fare: c.Format(l.Fare), Charged: c.Format(l.Charged), CappedBy: l.CappedBy}
			if l.Journey != capping.NoJourney {
				stop := taps[l.Tap].Stop
				lj.Journey, lj.Station = l.Journey.String(), &stop
			}
			rj.Legs = append(rj.Legs, lj)
		}
		for _, d := range rd.Days {
			rj.Days = append(rj.Days, day{d.Day.String(), c.Format(d.Charged)})
		}
		for _, s := range rd.Settlements {
			rj.Settlements = append(rj.Settlements, run{s.Run.String(), c.Format(s.Charged)})
		}
		doc.Riders = append(doc.Riders, rj)
	}
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return string(out) + "\n"
}

func TestCapJSONMatchesReference(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(capExamples, "*", "rules.json"))
	require.NoError(t, err)
	for _, rules := range dirs {
		taps := filepath.Join(filepath.Dir(rules), "taps.csv")
		out, _, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--format", "json")
		require.NoError(t, err)
		require.Equal(t, refCapJSON(t, rules, taps), out, rules)
	}
}

// Times are printed as given: their own offset, fraction digits and case;
// lower-case t and z and years before 1970 are RFC 3339 too; a transfer
// window may be longer than a week.
func TestCapTimesAsGiven(t *testing.T) {
	tmp := t.TempDir()
	rules := filepath.Join(tmp, "rules.json")
	require.NoError(t, os.WriteFile(rules, []byte(`{"currency":"GBP","time_zone":"Europe/London","fares":[{"id":"f","price":"1.00"}],
		"transfers":[{"window_minutes":20160,"price":"free"}]}`), 0o644))
	times := []string{
		"1969-07-20T20:17:40+00:00", "1969-07-21t02:56:15.000z", "2025-03-10T08:00:00.000+00:00",
		"2025-03-10T09:00:00.5-05:00", "2025-03-20T08:00:00.123456789+05:30", "2025-03-20T08:00:00-00:00",
	}
	csv := "token,time\n"
	for _, tm := range times {
		csv += "a," + tm + "\n"
	}
	taps := filepath.Join(tmp, "taps.csv")
	require.NoError(t, os.WriteFile(taps, []byte(csv), 0o644))
	out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	var doc struct {
		Riders []struct {
			Legs []struct{ Time, Charged string } `json:"legs"`
		} `json:"riders"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.Riders, 1)
	var got, charged []string
	for _, l := range doc.Riders[0].Legs {
		got = append(got, l.Time)
		charged = append(charged, l.Charged)
	}
	require.Equal(t, times, got)
	// 1969: one paid leg opens a two-week window; 2025: the same again.
	require.Equal(t, []string{"1.00", "0.00", "1.00", "0.00", "0.00", "0.00"}, charged)
	require.Equal(t, refCapJSON(t, rules, taps), out)
}

func TestCapCharges(t *testing.T) {
	dir := filepath.Join(capExamples, "tfl")
	rules, taps := filepath.Join(dir, "rules.json"), filepath.Join(dir, "taps.csv")
	out, code, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--format", "charges")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	golden(t, filepath.Join("testdata", "cap-tfl-charges.csv"), out)

	// The same numbers as the JSON days, line for line, and nothing else.
	js, _, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json")
	require.NoError(t, err)
	var doc struct {
		Riders []struct {
			Token string
			Days  []struct {
				ServiceDay string `json:"service_day"`
				Charged    string
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(js), &doc))
	want := []string{"token,service_day,taps,fares,charged"}
	for _, r := range doc.Riders {
		for _, d := range r.Days {
			want = append(want, r.Token+","+d.ServiceDay+",")
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, len(want))
	for i := range lines {
		require.True(t, strings.HasPrefix(lines[i], want[i]), lines[i])
	}

	// Tokens that need quoting are quoted.
	tmp := t.TempDir()
	odd := filepath.Join(tmp, "taps.csv")
	require.NoError(t, os.WriteFile(odd, []byte("token,time,fare\n\"a,\"\"b\",2025-03-10T08:00:00Z,1.00\n"), 0o644))
	out, _, err = runCLI(t, "cap", "--rules", rules, "--taps", odd, "--format", "charges")
	require.NoError(t, err)
	require.Equal(t, "token,service_day,taps,fares,charged\n\"a,\"\"b\",2025-03-10,1,1.00,1.00\n", out)
}

func TestCapFormatFlags(t *testing.T) {
	rules := filepath.Join(capExamples, "seed", "rules.json")
	taps := filepath.Join(capExamples, "seed", "taps.csv")
	_, code, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--format", "xml")
	require.Error(t, err)
	require.Equal(t, 2, code)
	_, code, err = runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json", "--format", "charges")
	require.Error(t, err)
	require.Equal(t, 2, code)
	a, _, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--json", "--format", "json")
	require.NoError(t, err)
	b, _, err := runCLI(t, "cap", "--rules", rules, "--taps", taps, "--format", "json")
	require.NoError(t, err)
	require.Equal(t, a, b)
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "tok-1", "a\"b\\c", "<&>", "\x00\x1f\b\f\n\r\t", "\u2028\u2029", "\xff\xfe", "héllo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(jsonString(nil, s)))
	})
}

// The table's column layout is text/tabwriter's (padding 2, spaces), for
// any cells: wide, narrow, multi-byte.
func TestAlignedMatchesTabwriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	words := []string{"", "-", "bus", "2025-03-10T08:00:00+00:00", "zone-1;2", "café", "東京メトロ", strings.Repeat("x", 70)}
	for n := 0; n < 200; n++ {
		ncol := 1 + rng.IntN(8)
		var want bytes.Buffer
		tw := tabwriter.NewWriter(&want, 0, 0, 2, ' ', 0)
		a := new(aligned)
		a.reset(ncol)
		for r := rng.IntN(6); r >= 0; r-- {
			for c := 0; c < ncol; c++ {
				w := words[rng.IntN(len(words))]
				if w == "" {
					w = "e" // tabwriter treats a line of empty cells specially; the table never has one
				}
				a.cell(w)
				if c < ncol-1 {
					fmt.Fprint(tw, w, "\t")
				} else {
					fmt.Fprintln(tw, w)
				}
			}
		}
		require.NoError(t, tw.Flush())
		require.Equal(t, want.String(), string(a.appendTo(nil)))
	}
}

// The table shows a gated journey's outcome and station; a rider without
// journeys keeps the eight columns.
func TestCapTableJourneys(t *testing.T) {
	dir := filepath.Join(capExamples, "tfl-journeys")
	out, _, err := runCLI(t, "cap", "--rules", filepath.Join(dir, "rules.json"), "--taps", filepath.Join(dir, "taps.csv"))
	require.NoError(t, err)
	require.Contains(t, out, "journey")
	require.Regexp(t, `2025-03-12T10:00:00Z\s+2025-03-12\s+tube\s+-\s+8\.90\s+8\.90\s+-\s+-\s+incomplete\s+Bank`, out)
	require.Regexp(t, `2025-03-12T12:30:00Z\s+2025-03-12\s+tube\s+-\s+8\.90\s+8\.90\s+-\s+-\s+unmatched_exit\s+Brixton`, out)
	dir = filepath.Join(capExamples, "tfl")
	out, _, err = runCLI(t, "cap", "--rules", filepath.Join(dir, "rules.json"), "--taps", filepath.Join(dir, "taps.csv"))
	require.NoError(t, err)
	require.NotContains(t, out, "journey")
}
