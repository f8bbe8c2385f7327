package capping

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Tap is one tap of a token at a reader. Mode, Category, Zones, Fare and
// Received are optional. Token is an opaque rider identity (never a PAN).
type Tap struct {
	Token    string
	Time     time.Time
	Mode     string
	Category string
	// Fare is the tap's own price (distance or zone fares computed upstream);
	// when HasFare is false the rules' fares price the leg by mode and category.
	Fare    Amount
	HasFare bool
	Zones   []string
	// Received is when the back office got the tap; zero means on time
	// (received when tapped). It decides which settlement run sees the tap.
	Received time.Time
	// Line is the tap's line in its source file (0 if none), for errors.
	Line int

	// Resolved by Rules.Resolve.
	by       *Rules
	modeBit  uint64
	catBit   uint64
	zoneMask uint64
	base     Amount
}

// Limits on a taps file.
const (
	maxToken   = 256
	maxZones   = 16
	maxTapLine = 4096
)

var tapColumns = []string{"token", "time", "mode", "category", "fare", "zones", "received"}

// Resolve checks a tap against the rules and pre-resolves what the engine
// needs (mode, category and zone bits, the base fare) so that rating does no
// lookups. ParseTaps calls it; callers building taps in code may call it
// once per tap or leave it to the engine.
func (r *Rules) Resolve(t *Tap) error {
	if t.Token == "" {
		return errors.New("token: empty")
	}
	if t.Time.IsZero() {
		return errors.New("time: missing")
	}
	t.modeBit = bit(r.modes, t.Mode)
	t.catBit = bit(r.categories, t.Category)
	t.zoneMask = 0
	for _, z := range t.Zones {
		t.zoneMask |= bit(r.zones, z)
	}
	if t.HasFare {
		if t.Fare < 0 || t.Fare > maxAmount {
			return fmt.Errorf("fare: %w: out of range", ErrAmount)
		}
		t.base = t.Fare
	} else {
		found := false
		for i := range r.Fares {
			f := &r.Fares[i]
			if f.modeMask&t.modeBit != 0 && f.catMask&t.catBit != 0 {
				t.base, found = f.Price, true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: no fare column and no fare rule for mode %q, category %q", ErrNoFare, t.Mode, t.Category)
		}
	}
	t.by = r
	return nil
}

// ParseTaps reads a TAPS.csv file: a header row naming the columns (token,
// time, mode, category, fare, zones, received, in any order; token and time
// required), then one tap per row. Times are RFC 3339 with an offset; fare is
// a decimal in the rules' currency; zones are separated by ';'. Every tap is
// resolved against the rules. Errors are *TapsError values naming the line.
func ParseTaps(rd io.Reader, r *Rules) ([]Tap, error) {
	cr := csv.NewReader(&lineLimiter{r: rd, max: maxTapLine})
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &TapsError{Line: 1, Err: errors.New("empty file: expected a header row")}
	}
	if err != nil {
		return nil, csvErr(err, 1)
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range tapColumns {
			known = known || c == name
		}
		if !known {
			return nil, &TapsError{Line: 1, Column: fmt.Sprintf("column %d", i+1), Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(tapColumns, ","))}
		}
		if _, dup := col[name]; dup {
			return nil, &TapsError{Line: 1, Column: name, Err: errors.New("duplicate column")}
		}
		col[name] = i
	}
	for _, req := range []string{"token", "time"} {
		if _, ok := col[req]; !ok {
			return nil, &TapsError{Line: 1, Column: req, Err: errors.New("required column missing")}
		}
	}
	cr.FieldsPerRecord = len(header)
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var taps []Tap
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return taps, nil
		}
		if err != nil {
			return nil, csvErr(err, line+1)
		}
		line, _ = cr.FieldPos(0)
		t := Tap{Line: line}
		fail := func(column string, err error) error {
			return &TapsError{Line: line, Column: column, Err: err}
		}
		t.Token = get(rec, "token")
		if t.Token == "" || len(t.Token) > maxToken {
			return nil, fail("token", fmt.Errorf("must be 1 to %d bytes", maxToken))
		}
		if t.Time, err = parseTime(get(rec, "time")); err != nil {
			return nil, fail("time", err)
		}
		t.Mode = get(rec, "mode")
		t.Category = get(rec, "category")
		if len(t.Mode) > maxName || len(t.Category) > maxName {
			return nil, fail("mode", fmt.Errorf("mode and category must be at most %d bytes", maxName))
		}
		if s := get(rec, "fare"); s != "" {
			if t.Fare, err = r.Currency.ParseAmount(s); err != nil {
				return nil, fail("fare", err)
			}
			t.HasFare = true
		}
		if s := get(rec, "zones"); s != "" {
			parts := strings.Split(s, ";")
			if len(parts) > maxZones {
				return nil, fail("zones", fmt.Errorf("more than %d zones", maxZones))
			}
			for _, z := range parts {
				z = strings.TrimSpace(z)
				if z == "" || len(z) > maxName {
					return nil, fail("zones", fmt.Errorf("zone names must be 1 to %d bytes, separated by ';'", maxName))
				}
				t.Zones = append(t.Zones, z)
			}
		}
		if s := get(rec, "received"); s != "" {
			if t.Received, err = parseTime(s); err != nil {
				return nil, fail("received", err)
			}
		}
		if err := r.Resolve(&t); err != nil {
			return nil, fail("", err)
		}
		taps = append(taps, t)
	}
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not RFC 3339 with an offset (2024-03-04T08:15:00+00:00)", clip(s))
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%q is out of range", clip(s))
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func csvErr(err error, line int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			msg = "wrong number of fields (must match the header)"
		}
		return &TapsError{Line: pe.Line, Err: errors.New(msg)}
	}
	return &TapsError{Line: line, Err: err}
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxTapLine)

// lineLimiter fails a read when any line exceeds max bytes, so a hostile
// file without newlines cannot make the CSV reader buffer without bound.
type lineLimiter struct {
	r   io.Reader
	max int
	cur int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.cur = 0
			continue
		}
		l.cur++
		if l.cur > l.max {
			return 0, errLineTooLong
		}
	}
	return n, err
}
