package capping

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func seedFiles(f *testing.F, name string) {
	paths, _ := filepath.Glob(filepath.Join(examplesDir, "*", name))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParseRules: any document is accepted or rejected with a *RulesError;
// never a panic.
func FuzzParseRules(f *testing.F) {
	seedFiles(f, "rules.json")
	f.Add([]byte(`{"currency":"USD","time_zone":"UTC","caps":[{"id":"c","rides":1,"period":{"kind":"rolling_days","days":366,"anchor":"first_tap"}}]}`))
	f.Add([]byte(`{"currency":"USD","time_zone":"UTC","transfers":[{"window_minutes":10080,"price":"difference","max":1000000}]}`))
	f.Add([]byte(`{"fares":[{"id":"a","price":"1"}],"fares":null}`))
	f.Add([]byte(`{"caps":[[],{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			if _, ok := err.(*RulesError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.Location == nil || r.Currency.Code == "" {
			t.Fatal("accepted rules without zone or currency")
		}
	})
}

// FuzzParseTaps: any taps file parses or fails with a *TapsError, and
// whatever parses rates without panicking, within the invariants.
func FuzzParseTaps(f *testing.F) {
	seedFiles(f, "taps.csv")
	f.Add([]byte("token,time,mode,category,fare,zones,received\na,2024-05-01T09:00:00Z,bus,adult,1.00,1;2,2024-05-09T09:00:00Z\n"))
	f.Add([]byte("token,time\na,0001-01-01T00:00:00Z\n"))
	f.Add([]byte("token,time,mode,direction,station,zones\na,2024-05-01T09:00:00Z,tube,on,Bank,1\na,2024-05-01T09:20:00Z,tube,Tap-Off,\"Oval\",2\n"))
	f.Add([]byte("token,time\na,9999-12-31T23:59:59+14:00\nb,1970-01-01T00:00:00-12:00\n"))
	fuzzTaps(f, "tfl")
}

// FuzzParseJourneyTaps: the same under rules with gated journeys, so that
// roles, stations and journey pricing are read and rated alike by both
// readers.
func FuzzParseJourneyTaps(f *testing.F) {
	seedFiles(f, "taps.csv")
	f.Add([]byte("token,time,mode,direction,station,zones,fare\na,2025-03-10T09:00:00Z,tube,on,Bank,1,\na,2025-03-10T09:20:00Z,tube,OFF,\"Oval\",2,3.10\na,2025-03-10T09:30:00Z,bus,on,x,,1.75\n"))
	fuzzTaps(f, "tfl-journeys")
}

func fuzzTaps(f *testing.F, example string) {
	rules, err := os.ReadFile(filepath.Join(examplesDir, example, "rules.json"))
	if err != nil {
		f.Fatal(err)
	}
	r, err := ParseRules(rules)
	if err != nil {
		f.Fatal(err)
	}
	defer func(n int) { tableBlockSize = n }(tableBlockSize)
	tableBlockSize = 97 // many blocks, cut anywhere
	f.Fuzz(func(t *testing.T, data []byte) {
		taps, err := ParseTaps(bytes.NewReader(data), r)
		// The parallel reader accepts and refuses exactly the same files.
		tt, err2 := ReadTapTable(context.Background(), bytes.NewReader(data), r, 2)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("ParseTaps: %v; ReadTapTable: %v", err, err2)
		}
		if err == nil && tt.Len() != len(taps) {
			t.Fatalf("ParseTaps: %d taps; ReadTapTable: %d", len(taps), tt.Len())
		}
		if err != nil {
			if _, ok := err.(*TapsError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(taps) > 200 {
			taps = taps[:200]
		}
		st, err := Settle(r, taps)
		if errors.Is(err, ErrNoFare) {
			return // a journey between stations no od_fares row prices
		}
		if err != nil {
			t.Fatal(err)
		}
		var total Amount
		for i := range st.Riders {
			checkInvariants(t, r, &st.Riders[i])
			total += st.Riders[i].Total
		}
		if total != st.Total {
			t.Fatal("riders do not add up to the total")
		}
	})
}

// FuzzSettle: any rules with any taps rate without panicking, within the
// invariants.
func FuzzSettle(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join(examplesDir, "*"))
	for _, d := range dirs {
		rules, err1 := os.ReadFile(filepath.Join(d, "rules.json"))
		taps, err2 := os.ReadFile(filepath.Join(d, "taps.csv"))
		if err1 == nil && err2 == nil {
			f.Add(rules, taps)
		}
	}
	f.Add([]byte(`{"currency":"USD","time_zone":"UTC","fares":[{"id":"f","price":"1"}],"caps":[{"id":"c","amount":"1.50","period":{"kind":"rolling_days","days":2,"anchor":"first_tap"}}],"transfers":[{"window_minutes":1,"price":"difference","counts_toward_caps":true}]}`),
		[]byte("token,time,fare,received\na,1970-01-02T00:00:00Z,,\na,1970-01-02T00:01:00Z,3,1970-01-09T00:00:00Z\n"))
	f.Fuzz(func(t *testing.T, rulesJSON, tapsCSV []byte) {
		r, err := ParseRules(rulesJSON)
		if err != nil {
			return
		}
		taps, err := ParseTaps(bytes.NewReader(tapsCSV), r)
		if err != nil {
			return
		}
		if len(taps) > 200 {
			taps = taps[:200]
		}
		st, err := Settle(r, taps)
		if errors.Is(err, ErrNoFare) {
			return // a journey between stations no od_fares row prices
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range st.Riders {
			checkInvariants(t, r, &st.Riders[i])
		}
	})
}
