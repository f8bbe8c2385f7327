package capping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// streamAll reads a taps file through ReadTapTable and RateStream and
// returns the riders (deep copies) in emit order.
func streamAll(t testing.TB, r *Rules, csv []byte, workers int) ([]Rider, [][]Tap, error) {
	tt, err := ReadTapTable(context.Background(), bytes.NewReader(csv), r, workers)
	if err != nil {
		return nil, nil, err
	}
	var riders []Rider
	var taps [][]Tap
	emit := func(rt *Rated) error {
		rd := *rt.Rider
		rd.Legs = append([]Leg(nil), rd.Legs...)
		rd.Days = append([]DayCharge(nil), rd.Days...)
		rd.Settlements = append([]Run(nil), rd.Settlements...)
		rd.Windows = append([]CapWindow(nil), rd.Windows...)
		riders = append(riders, rd)
		taps = append(taps, append([]Tap(nil), rt.Taps...))
		return nil
	}
	// Both ways of rating a table: through its TokenSource and directly.
	if workers%2 == 0 {
		err = RateStream(context.Background(), r, tt.Source(), StreamOptions{Workers: workers}, emit)
	} else {
		err = tt.Rate(context.Background(), StreamOptions{Workers: workers}, emit)
	}
	return riders, taps, err
}

// requireSameRating checks the streamed riders against Settle over
// ParseTaps: same tokens in the same order, same legs, days and runs.
func requireSameRating(t *testing.T, r *Rules, csv []byte, workers int) {
	t.Helper()
	want, wantErr := ParseTaps(bytes.NewReader(csv), r)
	got, gotTaps, gotErr := streamAll(t, r, csv, workers)
	if wantErr != nil {
		require.Error(t, gotErr)
		require.Equal(t, wantErr.Error(), gotErr.Error())
		return
	}
	require.NoError(t, gotErr)
	st := mustSettle(t, r, want)
	require.Len(t, got, len(st.Riders))
	for i := range got {
		w, g := &st.Riders[i], &got[i]
		require.Equal(t, w.Token, g.Token)
		require.Equal(t, w.Total, g.Total, w.Token)
		require.Equal(t, w.Fares, g.Fares)
		require.Equal(t, w.Days, g.Days)
		require.Equal(t, w.Settlements, g.Settlements)
		require.Equal(t, w.Windows, g.Windows)
		require.Len(t, g.Legs, len(w.Legs))
		for k := range g.Legs {
			wl, gl := w.Legs[k], g.Legs[k]
			require.True(t, wl.Time.Equal(gl.Time))
			require.Equal(t, string(want[wl.Tap].AppendTime(nil)), string(gotTaps[i][gl.Tap].AppendTime(nil)))
			require.Equal(t, want[wl.Tap].Line, gotTaps[i][gl.Tap].Line)
			wl.Tap, gl.Tap, wl.Time = 0, 0, gl.Time
			require.Equal(t, wl, gl)
		}
	}
}

func TestStreamMatchesSettleOnExamples(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(examplesDir, "*", "rules.json"))
	require.NoError(t, err)
	for _, rules := range dirs {
		dir := filepath.Dir(rules)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(rules)
			require.NoError(t, err)
			r, err := ParseRules(data)
			require.NoError(t, err)
			csv, err := os.ReadFile(filepath.Join(dir, "taps.csv"))
			require.NoError(t, err)
			for _, w := range []int{1, 2, 3} {
				requireSameRating(t, r, csv, w)
			}
		})
	}
}

// randomTapsFile writes n taps of a few tokens in random order, with the
// variations a taps file may have: quoted fields, CRLF, empty lines, spaces,
// fractions, lower-case t and z, offsets, times before 1970.
func randomTapsFile(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	b.WriteString("\ufeffToken, time ,mode,category,fare,zones,received\r\n")
	modes := []string{"bus", "tube", "tram", `"tube"`, "rail"}
	for i := 0; i < n; i++ {
		tok := fmt.Sprintf("t%02d", rng.IntN(23))
		if rng.IntN(7) == 0 {
			tok = `"` + tok + `"`
		}
		sec := rng.Int64N(40*86400) - 20*86400
		if rng.IntN(5) == 0 {
			sec -= 60 * 365 * 86400
		}
		s := stamp{sec: 1741600000 + sec, off: int16(rng.IntN(5)-2) * 90, set: true}
		switch rng.IntN(4) {
		case 0:
			s.form = stampZulu
			s.off = 0
		case 1:
			s.form = stampZulu | stampLowerZ | stampLowerT
			s.off = 0
		case 2:
			s.form = uint8(1 + rng.IntN(9))
			s.nsec = int32(rng.IntN(1e9)) / 1000 * 1000
		}
		fare := ""
		if rng.IntN(3) > 0 {
			fare = fmt.Sprintf("%d.%02d", rng.IntN(4), rng.IntN(100))
		}
		zones := []string{"", "1", "1;2", " 2 ; 3"}[rng.IntN(4)]
		recv := ""
		if rng.IntN(6) == 0 {
			recv = string(stamp{sec: s.sec + rng.Int64N(5*86400), form: stampZulu, set: true}.appendText(nil))
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s", tok, s.appendText(nil), modes[rng.IntN(len(modes))], []string{"", "adult", "child"}[rng.IntN(3)], fare, zones, recv)
		switch rng.IntN(10) {
		case 0:
			b.WriteString("\r\n")
		case 1:
			b.WriteString("\n\n")
		default:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

func TestStreamMatchesSettleRandom(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(examplesDir, "tfl", "rules.json"))
	require.NoError(t, err)
	r, err := ParseRules(data)
	require.NoError(t, err)
	defer func(n int) { tableBlockSize = n }(tableBlockSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 40; i++ {
		csv := randomTapsFile(rng, rng.IntN(400))
		tableBlockSize = 64 + rng.IntN(2000)
		requireSameRating(t, r, csv, 1+rng.IntN(3))
	}
}

// Both readers report the same first error, however the file is cut.
func TestTapTableErrorsMatchParseTaps(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"bus","modes":["bus"],"price":"1"}]}`)
	defer func(n int) { tableBlockSize = n }(tableBlockSize)
	good := strings.Repeat("a,2024-05-01T09:00:00Z,bus\n", 50)
	bad := []string{
		"a,yesterday,bus\n", "a,2024-05-01T09:00:00,bus\n", ",2024-05-01T09:00:00Z,bus\n",
		"a,2024-05-01T09:00:00Z,ferry\n", "a,2024-05-01T09:00:00Z\n", "a,\"2024-05-01T09:00:00Z,bus\n",
		"a," + strings.Repeat("x", 5000) + ",bus\n", "a,2024-05-01T09:00:00Z,b\"us\n",
	}
	for _, bl := range bad {
		for _, size := range []int{64, 300, 1 << 20} {
			tableBlockSize = size
			csv := []byte("token,time,mode\n" + good + bl + good + bad[0])
			_, err := ParseTaps(bytes.NewReader(csv), r)
			require.Error(t, err)
			_, err2 := ReadTapTable(context.Background(), bytes.NewReader(csv), r, 3)
			require.Error(t, err2)
			require.Equal(t, err.Error(), err2.Error())
			var te *TapsError
			require.True(t, errors.As(err2, &te))
			require.Equal(t, 52, te.Line, err2.Error())
		}
	}
}

func TestRateStreamStopsOnErrors(t *testing.T) {
	r := mustRules(t, `{"currency":"USD","time_zone":"UTC","fares":[{"id":"bus","price":"1"}]}`)
	boom := errors.New("boom")
	n := 0
	src := func(dst []Tap) ([]Tap, error) {
		n++
		if n > 10000 {
			return dst, boom
		}
		return append(dst, Tap{Token: fmt.Sprintf("t%06d", n), Time: ts("2024-05-01T09:00:00Z")}), nil
	}
	emitted := 0
	err := RateStream(context.Background(), r, src, StreamOptions{Workers: 2}, func(rt *Rated) error {
		emitted++
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Less(t, emitted, 10000)

	// emit's error ends the stream; so does a cancelled context.
	n = 0
	stop := errors.New("stop")
	err = RateStream(context.Background(), r, src, StreamOptions{}, func(rt *Rated) error {
		if rt.Rider.Token == "t000500" {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n = 0
	err = RateStream(ctx, r, src, StreamOptions{}, func(*Rated) error { return nil })
	require.ErrorIs(t, err, context.Canceled)

	// A source at its end from the start: nothing emitted, no error.
	err = RateStream(context.Background(), r, func(dst []Tap) ([]Tap, error) { return dst, io.EOF }, StreamOptions{}, func(*Rated) error {
		t.Fatal("emitted")
		return nil
	})
	require.NoError(t, err)
}
