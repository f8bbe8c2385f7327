package capping

import (
	"errors"
	"fmt"
	"io"
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
	// Role is "on" (tap-on, entering) or "off" (tap-off, leaving) for a
	// gated journey, "" for a tap rated on its own: the gates'
	// tap.Location.Role. Stop is the station (tap.Location.Stop).
	Role string
	Stop string
	// Received is when the back office got the tap; zero means on time
	// (received when tapped). It decides which settlement run sees the tap.
	Received time.Time
	// Line is the tap's line in its source file (0 if none), for errors.
	Line int

	stamp stamp // the time as written, when read from a file

	// Resolved by Rules.Resolve.
	by       *Rules
	modeBit  uint64
	catBit   uint64
	zoneMask uint64
	base     Amount
	role     uint8
	jr       int8   // journeys rule of a tap with a role, -1 none
	stopID   uint16 // station named by od_fares, 0 other
}

// Limits on a taps file.
const (
	maxToken   = 256
	maxZones   = 16
	maxTapLine = 4096
)

// AppendTime appends the tap's time as RFC 3339: exactly as it was written
// when the tap was read from a file (its own offset, fraction digits and
// letter case), otherwise Time in RFC 3339 with nanoseconds.
func (t *Tap) AppendTime(dst []byte) []byte {
	if t.stamp.set && t.stamp.sec == t.Time.Unix() {
		return t.stamp.appendText(dst)
	}
	return t.Time.AppendFormat(dst, time.RFC3339Nano)
}

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
	return r.resolve(t)
}

func (r *Rules) resolve(t *Tap) error {
	t.modeBit = bit(r.modes, t.Mode)
	t.catBit = bit(r.categories, t.Category)
	t.zoneMask = 0
	for _, z := range t.Zones {
		t.zoneMask |= bit(r.zones, z)
	}
	t.role, t.jr, t.stopID = roleNone, -1, 0
	if t.Role != "" {
		if t.role = roleOf(t.Role); t.role == roleNone {
			return fmt.Errorf("direction: %q is not on or off", clip(t.Role))
		}
		if len(t.Stop) > maxName {
			return fmt.Errorf("station: at most %d bytes", maxName)
		}
		t.jr = int8(r.journeyRule(t.modeBit))
		t.stopID = r.stations[t.Stop]
	}
	if t.jr >= 0 {
		// Priced as a journey (or by the fare column for a tap-off).
		t.base = 0
		if t.HasFare && (t.Fare < 0 || t.Fare > maxAmount) {
			return fmt.Errorf("fare: %w: out of range", ErrAmount)
		}
	} else if t.HasFare {
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
// time, mode, category, fare, zones, received, direction, station, in any
// order; token and time required), then one tap per row. Times are RFC 3339 with an offset; fare is
// a decimal in the rules' currency; zones are separated by ';'. Every tap is
// resolved against the rules. Errors are *TapsError values naming the line.
// ReadTapTable reads the same files for rating at scale.
func ParseTaps(rd io.Reader, r *Rules) ([]Tap, error) {
	br := &blockReader{r: rd}
	lay, err := br.readHeader()
	if err != nil {
		return nil, err
	}
	var taps []Tap
	var rec tapRecord
	zones := map[int16]*time.Location{}
	buf := make([]byte, 0, 64<<10)
	for {
		block, first, err := br.next(buf)
		if err == io.EOF {
			return taps, nil
		}
		if err != nil {
			return nil, err
		}
		err = eachLine(block, first, func(line []byte, n int) error {
			if err := lay.parseRecord(&rec, line, n, r.Currency); err != nil {
				return err
			}
			t, err := r.tapOf(&rec, n, zones)
			if err != nil {
				return err
			}
			taps = append(taps, t)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
}

// tapOf builds and resolves the Tap of a parsed row. Its Time carries the
// row's offset (one *time.Location per offset, kept in zones).
func (r *Rules) tapOf(rec *tapRecord, line int, zones map[int16]*time.Location) (Tap, error) {
	t := Tap{Line: line, Token: string(rec.token), Mode: string(rec.mode), Category: string(rec.category),
		Fare: rec.fare, HasFare: rec.hasFare, stamp: rec.time, Role: rec.role, Stop: string(rec.stop)}
	t.Time = rec.time.time().In(zoneOf(zones, rec.time.off))
	if rec.received.set {
		t.Received = rec.received.time().In(zoneOf(zones, rec.received.off))
	}
	for _, z := range rec.zones {
		t.Zones = append(t.Zones, string(z))
	}
	if err := r.resolve(&t); err != nil {
		return t, &TapsError{Line: line, Err: err}
	}
	return t, nil
}

func zoneOf(zones map[int16]*time.Location, off int16) *time.Location {
	if off == 0 {
		return time.UTC
	}
	loc, ok := zones[off]
	if !ok {
		loc = time.FixedZone("", int(off)*60)
		zones[off] = loc
	}
	return loc
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
