package capping

import (
	"fmt"
	"strings"
	"time"
)

// Journeys: gated systems charge by journey, not by tap. A rider taps on
// at the entry gate and off at the exit; the fare depends on the stations
// or zones between. A JourneyRule names the modes that work this way; their
// taps carry a Role ("on" or "off", as the gates record tap.Location.Role)
// and a Stop (the station). Taps without a Role are rated per tap as before.

// Roles of a tap, as the gates record them (tap.RoleEntry, tap.RoleExit).
const (
	RoleOn  = "on"
	RoleOff = "off"
)

// PenaltyCaps says how incomplete journeys and unmatched exits meet the caps.
type PenaltyCaps uint8

const (
	// PenaltyOutside: charged as priced, adding to no cap (TfL: "Maximum
	// fares do not count towards capping").
	PenaltyOutside PenaltyCaps = iota + 1
	// PenaltyCount: charged like any journey, limited by and added to caps.
	PenaltyCount
	// PenaltyBounded: never more than the head-room of the caps, adding to
	// none of them (Opal: "Default fares never exceed your Daily Travel Cap
	// and don't count towards the Weekly Travel Reward").
	PenaltyBounded
)

// TimeBand limits an origin-destination fare to peak or off-peak tap-ons.
type TimeBand uint8

const (
	AnyTime TimeBand = iota
	Peak
	OffPeak
)

// Outcome is what journey construction made of a tap.
type Outcome uint8

const (
	// NoJourney: a tap rated on its own (no role, or a mode without journeys).
	NoJourney Outcome = iota
	// JourneyComplete: a tap-on matched by a tap-off; the tap-on's leg
	// carries the journey's price.
	JourneyComplete
	// JourneyExit: the tap-off of a complete or same-station journey; its
	// leg costs nothing (the journey is priced at its tap-on).
	JourneyExit
	// JourneyIncomplete: a tap-on with no tap-off within the maximum journey
	// time (or another tap first): priced as the rule's incomplete fare.
	JourneyIncomplete
	// JourneyUnmatchedExit: a tap-off with no tap-on.
	JourneyUnmatchedExit
	// JourneySameStation: tap-on and tap-off at one station within
	// SameStation.
	JourneySameStation
)

// JourneyRule pairs the tap-ons and tap-offs of its modes into journeys.
type JourneyRule struct {
	ID          string
	Modes       []string
	MaxTime     time.Duration // a tap-off later than this is not the journey's end
	SameStation time.Duration // 0: no same-station rule
	// Prices of the outcomes; a UseMax price is the highest origin-destination
	// fare from the station (for the mode, category and time band).
	SameStationPrice Amount
	IncompletePrice  Amount
	UnmatchedPrice   Amount
	SameStationMax   bool
	IncompleteMax    bool
	UnmatchedMax     bool
	PenaltyCaps      PenaltyCaps
	modeMask         uint64
	maxSec, sameSec  int64
}

// ODFare prices a journey by origin and destination: a station pair or a
// zone pair (both ways), for modes, categories and a time band.
type ODFare struct {
	ID                     string
	Modes, Categories      []string
	FromStation, ToStation string
	FromZone, ToZone       string
	Time                   TimeBand
	Price                  Amount
	modeMask, catMask      uint64
	fromSt, toSt           uint16
	fromZoneBit, toZoneBit uint64
}

// PeakWindow is a peak period: wall-clock From (inclusive) to To
// (exclusive) in the rules' time zone, on the service days its DaysOfWeek
// and Holidays filters let through.
type PeakWindow struct {
	DaysOfWeek []time.Weekday
	Holidays   HolidayFilter
	From, To   time.Duration // since local midnight; To up to 24:00
	dowMask    uint8
}

type journeyJSON struct {
	ID                 string    `json:"id"`
	Modes              *[]string `json:"modes"`
	MaxMinutes         *int      `json:"max_minutes"`
	SameStationMinutes *int      `json:"same_station_minutes"`
	SameStationPrice   string    `json:"same_station_price"`
	IncompletePrice    string    `json:"incomplete_price"`
	UnmatchedExitPrice string    `json:"unmatched_exit_price"`
	IncompleteCaps     string    `json:"incomplete_caps"`
}

type odFareJSON struct {
	ID          string    `json:"id"`
	Modes       *[]string `json:"modes"`
	Categories  *[]string `json:"categories"`
	FromStation string    `json:"from_station"`
	ToStation   string    `json:"to_station"`
	FromZone    string    `json:"from_zone"`
	ToZone      string    `json:"to_zone"`
	Time        string    `json:"time"`
	Price       string    `json:"price"`
}

type peakJSON struct {
	DaysOfWeek *[]string `json:"days_of_week"`
	Holidays   string    `json:"holidays"`
	From       string    `json:"from"`
	To         string    `json:"to"`
}

const maxStations = 1<<16 - 1

// transferDiscount compiles the discount of a discount transfer.
func (c *ruleCompiler) transferDiscount(at ruleAt, t *transferJSON, tr *Transfer) error {
	switch tr.Price {
	case TransferFixedDiscount:
		if t.Discount == "" || t.Percent != nil {
			return at.fail("discount: fixed_discount needs discount (an amount) and no percent")
		}
		d, err := c.r.Currency.ParseAmount(t.Discount)
		if err != nil {
			return at.fail("discount: %w", err)
		}
		tr.Discount = d
	case TransferPercentDiscount:
		if t.Percent == nil || t.Discount != "" {
			return at.fail("percent: percent_discount needs percent (1 to 100) and no discount")
		}
		if *t.Percent < 1 || *t.Percent > 100 {
			return at.fail("percent: must be between 1 and 100")
		}
		tr.Percent = *t.Percent
	default:
		if t.Discount != "" || t.Percent != nil {
			return at.fail("discount and percent: only for fixed_discount and percent_discount")
		}
	}
	return nil
}

// journeyRules compiles peak, journeys and od_fares.
func (c *ruleCompiler) journeyRules() error {
	for i, el := range c.doc.top.Peak {
		if err := c.peak(i, el); err != nil {
			return err
		}
	}
	for i, el := range c.doc.journeys {
		if err := c.journey(i, el); err != nil {
			return err
		}
	}
	c.r.stations = map[string]uint16{}
	for i, el := range c.doc.odFares {
		if err := c.odFare(i, el); err != nil {
			return err
		}
	}
	if len(c.doc.odFares) > 0 && len(c.r.Journeys) == 0 {
		return c.at("od_fares").fail("od_fares price journeys: add a journeys rule for their modes")
	}
	return nil
}

func (c *ruleCompiler) peak(i int, el element[peakJSON]) error {
	p := el.v
	at := ruleAt{line: el.line, path: fmt.Sprintf("peak[%d]", i)}
	var w PeakWindow
	h, m, ok := parseHHMM(p.From)
	if !ok {
		return at.fail("from: %q is not HH:MM", p.From)
	}
	w.From = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	if p.To == "24:00" {
		w.To = 24 * time.Hour
	} else if h, m, ok = parseHHMM(p.To); ok {
		w.To = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	} else {
		return at.fail("to: %q is not HH:MM (or 24:00)", p.To)
	}
	if w.To <= w.From {
		return at.fail("to must be after from (split a window that crosses midnight in two)")
	}
	var cp Cap
	if err := capDays(at, &capJSON{DaysOfWeek: p.DaysOfWeek}, &cp); err != nil {
		return err
	}
	w.DaysOfWeek, w.dowMask = cp.DaysOfWeek, cp.dowMask
	if p.Holidays != "" {
		if err := w.Holidays.UnmarshalText([]byte(p.Holidays)); err != nil {
			return at.fail("holidays: %w", err)
		}
	}
	c.r.Peak = append(c.r.Peak, w)
	return nil
}

// outcomePrice reads "max" or an amount.
func (c *ruleCompiler) outcomePrice(s, def string) (Amount, bool, error) {
	if s == "" {
		s = def
	}
	if s == "max" {
		return 0, true, nil
	}
	a, err := c.r.Currency.ParseAmount(s)
	return a, false, err
}

func (c *ruleCompiler) journey(i int, el element[journeyJSON]) error {
	j := el.v
	at, err := c.elem("journey", "journeys", i, el.line, j.ID)
	if err != nil {
		return err
	}
	jr := JourneyRule{ID: j.ID, PenaltyCaps: PenaltyOutside}
	if jr.modeMask, jr.Modes, err = c.modes.mask(j.Modes); err != nil {
		return at.fail("modes: %w", err)
	}
	for _, o := range c.r.Journeys {
		if o.modeMask&jr.modeMask != 0 {
			return at.fail("modes: overlap journeys rule %q (a mode has one journeys rule)", o.ID)
		}
	}
	if j.MaxMinutes == nil || *j.MaxMinutes < 1 || *j.MaxMinutes > 24*60 {
		return at.fail("max_minutes: required, between 1 and %d", 24*60)
	}
	jr.MaxTime = time.Duration(*j.MaxMinutes) * time.Minute
	jr.maxSec = int64(*j.MaxMinutes) * 60
	if j.SameStationMinutes != nil {
		if *j.SameStationMinutes < 1 || *j.SameStationMinutes > *j.MaxMinutes {
			return at.fail("same_station_minutes: between 1 and max_minutes")
		}
		if j.SameStationPrice == "" {
			return at.fail("same_station_price: required with same_station_minutes (an amount or \"max\")")
		}
		jr.SameStation = time.Duration(*j.SameStationMinutes) * time.Minute
		jr.sameSec = int64(*j.SameStationMinutes) * 60
	} else if j.SameStationPrice != "" {
		return at.fail("same_station_price: only with same_station_minutes")
	}
	if jr.SameStationPrice, jr.SameStationMax, err = c.outcomePrice(j.SameStationPrice, "0"); err != nil {
		return at.fail("same_station_price: %w", err)
	}
	if jr.IncompletePrice, jr.IncompleteMax, err = c.outcomePrice(j.IncompletePrice, "max"); err != nil {
		return at.fail("incomplete_price: %w", err)
	}
	if jr.UnmatchedPrice, jr.UnmatchedMax, err = c.outcomePrice(j.UnmatchedExitPrice, "max"); err != nil {
		return at.fail("unmatched_exit_price: %w", err)
	}
	if j.IncompleteCaps != "" {
		if err := jr.PenaltyCaps.UnmarshalText([]byte(j.IncompleteCaps)); err != nil {
			return at.fail("incomplete_caps: %w", err)
		}
	}
	c.r.Journeys = append(c.r.Journeys, jr)
	return nil
}

func (c *ruleCompiler) station(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > maxName {
		return 0, fmt.Errorf("station name must be at most %d bytes", maxName)
	}
	id, ok := c.r.stations[s]
	if !ok {
		if len(c.r.stations) >= maxStations {
			return 0, fmt.Errorf("more than %d stations", maxStations)
		}
		id = uint16(len(c.r.stations) + 1)
		c.r.stations[s] = id
	}
	return id, nil
}

func (c *ruleCompiler) odFare(i int, el element[odFareJSON]) error {
	o := el.v
	at, err := c.elem("od_fare", "od_fares", i, el.line, o.ID)
	if err != nil {
		return err
	}
	f := ODFare{ID: o.ID, FromStation: o.FromStation, ToStation: o.ToStation, FromZone: o.FromZone, ToZone: o.ToZone}
	if f.modeMask, f.Modes, err = c.modes.mask(o.Modes); err != nil {
		return at.fail("modes: %w", err)
	}
	if f.catMask, f.Categories, err = c.cats.mask(o.Categories); err != nil {
		return at.fail("categories: %w", err)
	}
	byStation := o.FromStation != "" || o.ToStation != ""
	byZone := o.FromZone != "" || o.ToZone != ""
	switch {
	case byStation && byZone:
		return at.fail("give a station pair or a zone pair, not both")
	case byStation:
		if o.FromStation == "" || o.ToStation == "" {
			return at.fail("from_station and to_station: both required")
		}
		if f.fromSt, err = c.station(o.FromStation); err == nil {
			f.toSt, err = c.station(o.ToStation)
		}
		if err != nil {
			return at.fail("%w", err)
		}
	case byZone:
		if o.FromZone == "" || o.ToZone == "" {
			return at.fail("from_zone and to_zone: both required")
		}
		zs := []string{o.FromZone, o.ToZone}
		// Interns both zones (their bits are what journeys are matched by).
		_, _, err := c.zones.mask(&zs)
		if err != nil {
			return at.fail("zones: %w", err)
		}
		f.fromZoneBit, f.toZoneBit = bit(c.zones.ids, o.FromZone), bit(c.zones.ids, o.ToZone)
	default:
		return at.fail("from_station/to_station or from_zone/to_zone: required")
	}
	if o.Time != "" {
		if err := f.Time.UnmarshalText([]byte(o.Time)); err != nil {
			return at.fail("time: %w", err)
		}
	}
	if o.Price == "" {
		return at.fail("price: missing")
	}
	if f.Price, err = c.r.Currency.ParseAmount(o.Price); err != nil {
		return at.fail("price: %w", err)
	}
	c.r.ODFares = append(c.r.ODFares, f)
	return nil
}

// journeyRule returns the index of the journeys rule for a mode, -1 none.
func (r *Rules) journeyRule(modeBit uint64) int {
	for i := range r.Journeys {
		if r.Journeys[i].modeMask&modeBit != 0 {
			return i
		}
	}
	return -1
}

// parseRole reads a direction cell: on/off (tap-on/tap-off, in/out, entry/exit).
func parseRole(b []byte) (string, error) {
	switch strings.ToLower(string(b)) {
	case "":
		return "", nil
	case "on", "tap-on", "tap_on", "in", "entry":
		return RoleOn, nil
	case "off", "tap-off", "tap_off", "out", "exit":
		return RoleOff, nil
	}
	return "", fmt.Errorf("%q is not on or off", clip(string(b)))
}

var errNoODFare = fmt.Errorf("%w: no od_fares row for the journey", ErrNoFare)

// isPeak reports whether a tap-on at unix time u on service day d is at peak.
func (r *Rules) isPeak(u int64, d Date) bool {
	if len(r.Peak) == 0 {
		return false
	}
	lt := time.Unix(u, 0).In(r.Location)
	h, m, s := lt.Clock()
	tod := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second
	wd := d.Weekday()
	hol := len(r.PublicHolidays) > 0 && r.isHoliday(d)
	for i := range r.Peak {
		p := &r.Peak[i]
		if p.dowMask&(1<<wd) == 0 || (p.Holidays == HolidaysExclude && hol) || (p.Holidays == HolidaysOnly && !hol) {
			continue
		}
		if tod >= p.From && tod < p.To {
			return true
		}
	}
	return false
}

// odEnd is one end of a journey for fare lookup.
type odEnd struct {
	st    uint16
	zones uint64
}

func (f *ODFare) matches(mode, cat uint64, peak bool) bool {
	if f.modeMask&mode == 0 || f.catMask&cat == 0 {
		return false
	}
	return f.Time == AnyTime || (f.Time == Peak) == peak
}

// endMatch reports whether a row's end (station or zone bit) matches.
func (f *ODFare) endMatch(st uint16, zb uint64, e odEnd) bool {
	if f.fromSt != 0 {
		return st == e.st
	}
	return zb&e.zones != 0
}

// odPrice returns the lowest matching fare from a to b (either direction):
// station pairs first, then zone pairs.
func (r *Rules) odPrice(a, b odEnd, mode, cat uint64, peak bool) (Amount, bool) {
	var best Amount
	found := false
	for pass := 0; pass < 2 && !found; pass++ {
		for i := range r.ODFares {
			f := &r.ODFares[i]
			if (f.fromSt != 0) != (pass == 0) || !f.matches(mode, cat, peak) {
				continue
			}
			fwd := f.endMatch(f.fromSt, f.fromZoneBit, a) && f.endMatch(f.toSt, f.toZoneBit, b)
			rev := f.endMatch(f.fromSt, f.fromZoneBit, b) && f.endMatch(f.toSt, f.toZoneBit, a)
			if (fwd || rev) && (!found || f.Price < best) {
				best, found = f.Price, true
			}
		}
	}
	return best, found
}

// odMax returns the highest matching fare with one end at a: the maximum
// fare from a station.
func (r *Rules) odMax(a odEnd, mode, cat uint64, peak bool) (Amount, bool) {
	var best Amount
	found := false
	for i := range r.ODFares {
		f := &r.ODFares[i]
		if !f.matches(mode, cat, peak) {
			continue
		}
		if f.endMatch(f.fromSt, f.fromZoneBit, a) || f.endMatch(f.toSt, f.toZoneBit, a) {
			if !found || f.Price > best {
				best, found = f.Price, true
			}
		}
	}
	return best, found
}

// buildJourneys pairs the journey taps of legs (in time order) and prices
// every one: the tap-on's leg carries the journey, the tap-off's costs 0.
// It rewrites base, zoneMask and kind of every journey leg from taps,
// so legs may be rated again as a different subset.
func (e *Engine) buildJourneys(legs []prepLeg, taps []Tap) {
	pending := -1
	for i := range legs {
		l := &legs[i]
		if l.jr < 0 {
			if pending >= 0 {
				e.penalty(legs, pending, taps, JourneyIncomplete)
				pending = -1
			}
			continue
		}
		if l.role == roleOn {
			if pending >= 0 {
				e.penalty(legs, pending, taps, JourneyIncomplete)
			}
			pending = i
			continue
		}
		if pending >= 0 && legs[pending].jr == l.jr && l.unix-legs[pending].unix <= e.r.Journeys[l.jr].maxSec {
			e.complete(legs, pending, i, taps)
			pending = -1
			continue
		}
		if pending >= 0 {
			e.penalty(legs, pending, taps, JourneyIncomplete)
			pending = -1
		}
		e.penalty(legs, i, taps, JourneyUnmatchedExit)
	}
	if pending >= 0 {
		e.penalty(legs, pending, taps, JourneyIncomplete)
	}
}

func (e *Engine) end(l *prepLeg, taps []Tap) odEnd {
	t := &taps[l.tap]
	return odEnd{st: t.stopID, zones: t.zoneMask}
}

func (e *Engine) fail(t *Tap, err error) {
	if e.err == nil {
		e.err = &TapsError{Line: t.Line, Err: err}
	}
}

// penalty prices an incomplete journey (at its tap-on) or an unmatched exit.
func (e *Engine) penalty(legs []prepLeg, i int, taps []Tap, kind Outcome) {
	l := &legs[i]
	t := &taps[l.tap]
	jr := &e.r.Journeys[l.jr]
	l.kind, l.zoneMask = kind, t.zoneMask
	price, useMax := jr.IncompletePrice, jr.IncompleteMax
	if kind == JourneyUnmatchedExit {
		price, useMax = jr.UnmatchedPrice, jr.UnmatchedMax
	}
	if useMax {
		var ok bool
		if price, ok = e.r.odMax(e.end(l, taps), l.modeBit, l.catBit, e.r.isPeak(l.unix, l.day)); !ok {
			e.fail(t, fmt.Errorf("%w from station %q, zones %v (the maximum fare)", errNoODFare, clip(t.Stop), t.Zones))
		}
	}
	l.base = price
}

// complete prices a journey from legs[on] to legs[off].
func (e *Engine) complete(legs []prepLeg, on, off int, taps []Tap) {
	a, b := &legs[on], &legs[off]
	ta, tb := &taps[a.tap], &taps[b.tap]
	jr := &e.r.Journeys[a.jr]
	b.kind, b.base, b.zoneMask = JourneyExit, 0, tb.zoneMask
	a.zoneMask = ta.zoneMask | tb.zoneMask
	peak := e.r.isPeak(a.unix, a.day)
	if jr.sameSec > 0 && ta.Stop != "" && ta.Stop == tb.Stop && b.unix-a.unix <= jr.sameSec {
		a.kind, a.base = JourneySameStation, jr.SameStationPrice
		if jr.SameStationMax {
			var ok bool
			if a.base, ok = e.r.odMax(e.end(a, taps), a.modeBit, a.catBit, peak); !ok {
				e.fail(ta, fmt.Errorf("%w from station %q (the maximum fare)", errNoODFare, clip(ta.Stop)))
			}
		}
		return
	}
	a.kind = JourneyComplete
	if tb.HasFare {
		a.base = tb.Fare // priced upstream (distance fares)
		return
	}
	var ok bool
	if a.base, ok = e.r.odPrice(e.end(a, taps), e.end(b, taps), a.modeBit, a.catBit, peak); !ok {
		e.fail(tb, fmt.Errorf("%w from %q to %q", errNoODFare, clip(ta.Stop), clip(tb.Stop)))
	}
}

// Role values of prepLeg.
const (
	roleNone uint8 = iota
	roleOn
	roleOff
)

func roleOf(s string) uint8 {
	switch s {
	case RoleOn:
		return roleOn
	case RoleOff:
		return roleOff
	}
	return roleNone
}
