package capping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PeriodKind is how a cap's window is laid over time.
type PeriodKind uint8

// Period kinds of the RULES.json contract.
const (
	// ServiceDay: one service day (from the rules' service_day_start to the next).
	ServiceDay PeriodKind = iota + 1
	// CalendarWeek: seven service days from the rules' week_start.
	CalendarWeek
	// CalendarMonth: the service days of one calendar month.
	CalendarMonth
	// RollingDays: N service days, sliding or anchored at the first tap.
	RollingDays
)

// Anchor says where a rolling window starts.
type Anchor uint8

const (
	// Sliding: the window is always the trailing N service days.
	Sliding Anchor = iota + 1
	// FirstTap: N whole service days from the service day of the first leg the
	// cap applies to; the next such leg after it ends starts a new window.
	FirstTap
)

// HolidayFilter limits a cap with respect to public holidays.
type HolidayFilter uint8

const (
	// HolidaysInclude: no holiday filter (the default).
	HolidaysInclude HolidayFilter = iota
	// HolidaysExclude: the cap never applies on a public holiday.
	HolidaysExclude
	// HolidaysOnly: the cap applies only on public holidays.
	HolidaysOnly
)

// TransferPrice is how a transfer leg is priced.
type TransferPrice uint8

const (
	// TransferFree: the transfer leg costs nothing.
	TransferFree TransferPrice = iota + 1
	// TransferDifference: the leg costs what its fare exceeds the highest fare
	// already paid in the window (never negative).
	TransferDifference
	// TransferFixedDiscount: the leg costs its fare less a fixed Discount
	// (never negative; Opal's $2 between modes).
	TransferFixedDiscount
	// TransferPercentDiscount: the leg costs its fare less Percent per cent
	// (the discount rounded up to the minor unit, in the rider's favour).
	TransferPercentDiscount
)

// MeasuredFrom is where a transfer window is measured from.
type MeasuredFrom uint8

const (
	// FromPaidTap: the window restarts at every tap that pays a fare, including
	// a transfer that pays a difference.
	FromPaidTap MeasuredFrom = iota + 1
	// FromFirstTap: the window runs from the tap that opened the journey;
	// transfers never extend it.
	FromFirstTap
)

// Fare prices a leg by mode and rider category. Nil lists mean "all".
type Fare struct {
	ID         string
	Modes      []string
	Categories []string
	Price      Amount

	modeMask, catMask uint64
}

// Period is the window of a cap.
type Period struct {
	Kind   PeriodKind
	Days   int    // RollingDays only
	Anchor Anchor // RollingDays only
}

// Cap limits what the legs it applies to cost in each window of its period:
// Amount > 0 for a money cap, Rides > 0 for "free after N paid rides".
// Nil filter lists mean "all".
type Cap struct {
	ID         string
	Amount     Amount
	Rides      int
	Period     Period
	Modes      []string
	Categories []string
	DaysOfWeek []time.Weekday
	Holidays   HolidayFilter
	Zones      []string

	modeMask, catMask, zoneMask uint64
	dowMask                     uint8
}

// Transfer turns a leg tapped within a window after a paid leg into a
// transfer: free or paying the difference.
type Transfer struct {
	ID               string
	Window           time.Duration
	MeasuredFrom     MeasuredFrom
	FromModes        []string
	ToModes          []string
	Max              int // 0: unlimited
	Price            TransferPrice
	CountsTowardCaps bool
	// CappedTapOpensWindow: a leg charged 0 because a cap was reached still
	// opens (or restarts) this rule's window, as a paid tap would.
	CappedTapOpensWindow bool
	// Discount (TransferFixedDiscount) or Percent (TransferPercentDiscount).
	Discount Amount
	Percent  int
	// DifferentMode: the leg must be of another mode than the leg before it
	// in the journey (Opal: "every transfer between modes").
	DifferentMode bool

	fromMask, toMask uint64
	window           int64 // seconds
}

// Rules is a validated, pre-resolved fare rule set. Build it with
// ParseRules; it is immutable afterwards and safe for concurrent use.
type Rules struct {
	Currency       Currency
	Location       *time.Location
	DayStart       time.Duration // offset of the service day start from local midnight
	WeekStart      time.Weekday
	PublicHolidays []Date // sorted, unique
	Fares          []Fare
	Caps           []Cap
	Transfers      []Transfer
	// Journeys pair tap-ons with tap-offs (see journeys.go); ODFares price
	// them by station or zone pair; Peak says when a tap-on is at peak.
	Journeys []JourneyRule
	ODFares  []ODFare
	Peak     []PeakWindow

	modes, categories, zones map[string]uint8
	stations                 map[string]uint16 // stations named by od_fares, 1-based
	dayStartH, dayStartM     int
}

// otherBit stands for every mode, category or zone that no rule names: it
// is outside every filter list and inside every "all".
const (
	otherBit   = uint64(1) << 63
	maxNames   = 63
	maxCaps    = 64
	maxXfers   = 64
	maxFares   = 4096
	maxHoliday = 10000
	maxName    = 64
)

// Limits of a rules document.
const (
	MaxRulesSize   = 1 << 20 // bytes
	maxRollingDays = 366
	maxRides       = 1_000_000
	maxWindowMin   = maxRollingDays * 24 * 60 // 366 days: the longest cap period
)

// JSON shapes of the RULES.json contract. Lists are pointers so that an
// omitted list ("all") differs from an empty one (rejected).
type rulesJSON struct {
	Currency        string    `json:"currency"`
	TimeZone        string    `json:"time_zone"`
	ServiceDayStart *string   `json:"service_day_start"`
	WeekStart       *string   `json:"week_start"`
	PublicHolidays  *[]string `json:"public_holidays"`
	Peak            []element[peakJSON]
}

type fareJSON struct {
	ID         string    `json:"id"`
	Modes      *[]string `json:"modes"`
	Categories *[]string `json:"categories"`
	Price      string    `json:"price"`
}

type periodJSON struct {
	Kind   string `json:"kind"`
	Days   *int   `json:"days"`
	Anchor string `json:"anchor"`
}

type capJSON struct {
	ID         string      `json:"id"`
	Amount     *string     `json:"amount"`
	Rides      *int        `json:"rides"`
	Period     *periodJSON `json:"period"`
	Modes      *[]string   `json:"modes"`
	Categories *[]string   `json:"categories"`
	DaysOfWeek *[]string   `json:"days_of_week"`
	Holidays   string      `json:"holidays"`
	Zones      *[]string   `json:"zones"`
}

type transferJSON struct {
	ID                   string    `json:"id"`
	WindowMinutes        *int      `json:"window_minutes"`
	MeasuredFrom         string    `json:"measured_from"`
	FromModes            *[]string `json:"from_modes"`
	ToModes              *[]string `json:"to_modes"`
	Max                  *int      `json:"max"`
	Price                string    `json:"price"`
	CountsTowardCaps     bool      `json:"counts_toward_caps"`
	CappedTapOpensWindow *bool     `json:"capped_tap_opens_window"`
	Discount             string    `json:"discount"`
	Percent              *int      `json:"percent"`
	DifferentMode        bool      `json:"different_mode"`
}

// element is one decoded array element and the line it starts on.
type element[T any] struct {
	v    T
	line int
}

type rulesDoc struct {
	top       rulesJSON
	topLines  map[string]int
	fares     []element[fareJSON]
	caps      []element[capJSON]
	transfers []element[transferJSON]
	journeys  []element[journeyJSON]
	odFares   []element[odFareJSON]
}

// ParseRules decodes and validates a RULES.json document. Errors are
// *RulesError values naming the line, the element and the problem.
func ParseRules(data []byte) (*Rules, error) {
	if len(data) > MaxRulesSize {
		return nil, &RulesError{Err: fmt.Errorf("document larger than %d bytes", MaxRulesSize)}
	}
	doc, err := decodeRules(data)
	if err != nil {
		return nil, err
	}
	return compileRules(doc)
}

func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// skipSep returns the offset of the next value after whitespace and commas.
func skipSep(data []byte, off int64) int64 {
	for off < int64(len(data)) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// jsonErr turns a decoder error into a RulesError with the best line known.
// base is the offset of the value being decoded: type errors count from it.
func jsonErr(data []byte, err error, line int, base int64, path string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line = lineAt(data, se.Offset)
		err = fmt.Errorf("malformed JSON: %s", se.Error())
	case errors.As(err, &te):
		line = lineAt(data, base+te.Offset)
		f := te.Field
		if f != "" && path != "" {
			path += "." + f
		} else if f != "" {
			path = f
		}
		err = fmt.Errorf("expected %s, got JSON %s", te.Type.String(), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		line = lineAt(data, int64(len(data)))
		err = errors.New("unexpected end of JSON")
	default:
		// "json: unknown field" and friends.
		err = errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return &RulesError{Line: line, Path: path, Err: err}
}

func decodeRules(data []byte) (*rulesDoc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	doc := &rulesDoc{topLines: map[string]int{}}
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(data, err, 1, 0, "")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &RulesError{Line: lineAt(data, dec.InputOffset()), Err: errors.New("expected a JSON object")}
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(data, err, 0, 0, "")
		}
		key, _ := tok.(string)
		base := skipSep(data, dec.InputOffset())
		line := lineAt(data, base)
		if seen[key] {
			return nil, &RulesError{Line: line, Path: key, Err: errors.New("duplicate key")}
		}
		seen[key] = true
		doc.topLines[key] = line
		var derr error
		switch key {
		case "currency":
			derr = dec.Decode(&doc.top.Currency)
		case "time_zone":
			derr = dec.Decode(&doc.top.TimeZone)
		case "service_day_start":
			derr = dec.Decode(&doc.top.ServiceDayStart)
		case "week_start":
			derr = dec.Decode(&doc.top.WeekStart)
		case "public_holidays":
			derr = dec.Decode(&doc.top.PublicHolidays)
		case "fares":
			doc.fares, derr = decodeArray[fareJSON](dec, data, key)
		case "caps":
			doc.caps, derr = decodeArray[capJSON](dec, data, key)
		case "transfers":
			doc.transfers, derr = decodeArray[transferJSON](dec, data, key)
		case "journeys":
			doc.journeys, derr = decodeArray[journeyJSON](dec, data, key)
		case "od_fares":
			doc.odFares, derr = decodeArray[odFareJSON](dec, data, key)
		case "peak":
			doc.top.Peak, derr = decodeArray[peakJSON](dec, data, key)
		default:
			return nil, &RulesError{Line: line, Path: key, Err: errors.New("unknown key")}
		}
		if derr != nil {
			var re *RulesError
			if errors.As(derr, &re) {
				return nil, re
			}
			return nil, jsonErr(data, derr, line, base, key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonErr(data, err, 0, 0, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &RulesError{Line: lineAt(data, dec.InputOffset()), Err: errors.New("data after the rules object")}
	}
	return doc, nil
}

func decodeArray[T any](dec *json.Decoder, data []byte, key string) ([]element[T], error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil // null: omitted
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &RulesError{Line: lineAt(data, dec.InputOffset()), Path: key, Err: errors.New("expected a JSON array")}
	}
	var out []element[T]
	for dec.More() {
		if len(out) >= maxFares {
			return nil, &RulesError{Line: lineAt(data, dec.InputOffset()), Path: key, Err: fmt.Errorf("more than %d elements", maxFares)}
		}
		base := skipSep(data, dec.InputOffset())
		line := lineAt(data, base)
		var v T
		if err := dec.Decode(&v); err != nil {
			return nil, jsonErr(data, err, line, base, fmt.Sprintf("%s[%d]", key, len(out)))
		}
		out = append(out, element[T]{v: v, line: line})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

var weekdayNames = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday,
	"saturday": time.Saturday,
	"sun":      time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// names interns mode, category and zone names into bit positions.
type names struct {
	kind string
	ids  map[string]uint8
}

// mask returns the bitmask of a filter list; nil means "all".
func (n *names) mask(list *[]string) (uint64, []string, error) {
	if list == nil {
		return ^uint64(0), nil, nil
	}
	if len(*list) == 0 {
		return 0, nil, fmt.Errorf("empty %s list (omit the list to mean all)", n.kind)
	}
	var m uint64
	for _, s := range *list {
		if s == "" || len(s) > maxName {
			return 0, nil, fmt.Errorf("%s name %q must be 1 to %d bytes", n.kind, s, maxName)
		}
		id, ok := n.ids[s]
		if !ok {
			if len(n.ids) >= maxNames {
				return 0, nil, fmt.Errorf("more than %d distinct %ss", maxNames, n.kind)
			}
			id = uint8(len(n.ids))
			n.ids[s] = id
		}
		m |= 1 << id
	}
	return m, slices.Clone(*list), nil
}

// ruleAt is where a rules element sits, for its errors: the one error
// helper of the rules compiler.
type ruleAt struct {
	line int
	path string
}

func (at ruleAt) fail(format string, args ...any) error {
	return &RulesError{Line: at.line, Path: at.path, Err: fmt.Errorf(format, args...)}
}

// ruleCompiler turns a decoded rules document into Rules, step by step.
type ruleCompiler struct {
	doc                *rulesDoc
	r                  *Rules
	modes, cats, zones *names
	ids                map[string]bool // "fare:id", "cap:id", "transfer:id"
}

func compileRules(doc *rulesDoc) (*Rules, error) {
	c := &ruleCompiler{
		doc:   doc,
		r:     &Rules{WeekStart: time.Monday},
		modes: &names{kind: "mode", ids: map[string]uint8{}},
		cats:  &names{kind: "category", ids: map[string]uint8{}},
		zones: &names{kind: "zone", ids: map[string]uint8{}},
		ids:   map[string]bool{},
	}
	if err := c.top(); err != nil {
		return nil, err
	}
	for i, el := range doc.fares {
		if err := c.fare(i, el); err != nil {
			return nil, err
		}
	}
	if len(doc.caps) > maxCaps {
		return nil, c.at("caps").fail("more than %d caps", maxCaps)
	}
	for i, el := range doc.caps {
		if err := c.cap(i, el); err != nil {
			return nil, err
		}
	}
	if len(doc.transfers) > maxXfers {
		return nil, c.at("transfers").fail("more than %d transfer rules", maxXfers)
	}
	for i, el := range doc.transfers {
		if err := c.transfer(i, el); err != nil {
			return nil, err
		}
	}
	if err := c.journeyRules(); err != nil {
		return nil, err
	}
	c.r.modes, c.r.categories, c.r.zones = c.modes.ids, c.cats.ids, c.zones.ids
	return c.r, nil
}

// at locates a top-level key.
func (c *ruleCompiler) at(key string) ruleAt { return ruleAt{line: c.doc.topLines[key], path: key} }

// top compiles the top-level keys: currency, zone, service day, week,
// holidays.
func (c *ruleCompiler) top() error {
	top, r := c.doc.top, c.r
	if top.Currency == "" {
		return c.at("currency").fail("missing (an ISO 4217 code such as \"USD\")")
	}
	cur, err := LookupCurrency(top.Currency)
	if err != nil {
		return c.at("currency").fail("%w", err)
	}
	r.Currency = cur
	if top.TimeZone == "" {
		return c.at("time_zone").fail("missing (an IANA zone such as \"Europe/London\")")
	}
	loc, err := time.LoadLocation(top.TimeZone)
	if err != nil || strings.EqualFold(top.TimeZone, "local") {
		return c.at("time_zone").fail("unknown IANA time zone %q", top.TimeZone)
	}
	r.Location = loc
	if top.ServiceDayStart != nil {
		h, m, ok := parseHHMM(*top.ServiceDayStart)
		if !ok {
			return c.at("service_day_start").fail("%q is not HH:MM between 00:00 and 23:59", *top.ServiceDayStart)
		}
		r.dayStartH, r.dayStartM = h, m
		r.DayStart = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	}
	if top.WeekStart != nil {
		wd, ok := weekdayNames[strings.ToLower(*top.WeekStart)]
		if !ok {
			return c.at("week_start").fail("%q is not a day of the week", *top.WeekStart)
		}
		r.WeekStart = wd
	}
	return c.holidays()
}

func (c *ruleCompiler) holidays() error {
	list := c.doc.top.PublicHolidays
	if list == nil {
		return nil
	}
	if len(*list) > maxHoliday {
		return c.at("public_holidays").fail("more than %d dates", maxHoliday)
	}
	for i, s := range *list {
		d, err := ParseDate(s)
		if err != nil {
			return ruleAt{c.doc.topLines["public_holidays"], fmt.Sprintf("public_holidays[%d]", i)}.fail("%w", err)
		}
		c.r.PublicHolidays = append(c.r.PublicHolidays, d)
	}
	slices.Sort(c.r.PublicHolidays)
	c.r.PublicHolidays = slices.Compact(c.r.PublicHolidays)
	return nil
}

// elem checks an element's id (1 to maxName bytes, unique in its kind)
// and returns its location named by index and id.
func (c *ruleCompiler) elem(kind, key string, i, line int, id string) (ruleAt, error) {
	at := ruleAt{line: line, path: fmt.Sprintf("%s[%d]", key, i)}
	if id == "" || len(id) > maxName {
		return at, at.fail("id must be 1 to %d bytes", maxName)
	}
	at.path = fmt.Sprintf("%s[%d] %q", key, i, id)
	if c.ids[kind+":"+id] {
		return at, at.fail("duplicate %s id", kind)
	}
	c.ids[kind+":"+id] = true
	return at, nil
}

func (c *ruleCompiler) fare(i int, el element[fareJSON]) error {
	f := el.v
	at, err := c.elem("fare", "fares", i, el.line, f.ID)
	if err != nil {
		return err
	}
	fare := Fare{ID: f.ID}
	if fare.modeMask, fare.Modes, err = c.modes.mask(f.Modes); err != nil {
		return at.fail("modes: %w", err)
	}
	if fare.catMask, fare.Categories, err = c.cats.mask(f.Categories); err != nil {
		return at.fail("categories: %w", err)
	}
	if f.Price == "" {
		return at.fail("price: missing")
	}
	if fare.Price, err = c.r.Currency.ParseAmount(f.Price); err != nil {
		return at.fail("price: %w", err)
	}
	c.r.Fares = append(c.r.Fares, fare)
	return nil
}

func (c *ruleCompiler) cap(i int, el element[capJSON]) error {
	j := el.v
	at, err := c.elem("cap", "caps", i, el.line, j.ID)
	if err != nil {
		return err
	}
	cp := Cap{ID: j.ID}
	steps := []func(ruleAt, *capJSON, *Cap) error{c.capLimit, capPeriod, c.capFilters, capDays}
	for _, step := range steps {
		if err := step(at, &j, &cp); err != nil {
			return err
		}
	}
	c.r.Caps = append(c.r.Caps, cp)
	return nil
}

// capLimit: amount or rides.
func (c *ruleCompiler) capLimit(at ruleAt, j *capJSON, cp *Cap) error {
	var err error
	switch {
	case j.Amount != nil && j.Rides != nil:
		return at.fail("give either amount or rides, not both")
	case j.Amount != nil:
		if cp.Amount, err = c.r.Currency.ParseAmount(*j.Amount); err != nil {
			return at.fail("amount: %w", err)
		}
		if cp.Amount == 0 {
			return at.fail("amount: must be greater than zero")
		}
	case j.Rides != nil:
		if *j.Rides < 1 || *j.Rides > maxRides {
			return at.fail("rides: must be between 1 and %d", maxRides)
		}
		cp.Rides = *j.Rides
	default:
		return at.fail("missing amount or rides")
	}
	return nil
}

func capPeriod(at ruleAt, j *capJSON, cp *Cap) error {
	p := j.Period
	if p == nil {
		return at.fail("period: missing")
	}
	if err := cp.Period.Kind.UnmarshalText([]byte(p.Kind)); err != nil {
		return at.fail("period.kind: %w", err)
	}
	if cp.Period.Kind != RollingDays {
		if p.Days != nil {
			return at.fail("period.days: only for rolling_days")
		}
		if p.Anchor != "" {
			return at.fail("period.anchor: only for rolling_days")
		}
		return nil
	}
	if p.Days == nil {
		return at.fail("period.days: required for rolling_days")
	}
	if *p.Days < 1 || *p.Days > maxRollingDays {
		return at.fail("period.days: must be between 1 and %d", maxRollingDays)
	}
	cp.Period.Days = *p.Days
	cp.Period.Anchor = Sliding
	if p.Anchor != "" {
		if err := cp.Period.Anchor.UnmarshalText([]byte(p.Anchor)); err != nil {
			return at.fail("period.anchor: %w", err)
		}
	}
	return nil
}

// capFilters: modes, categories, zones and holidays.
func (c *ruleCompiler) capFilters(at ruleAt, j *capJSON, cp *Cap) error {
	var err error
	if cp.modeMask, cp.Modes, err = c.modes.mask(j.Modes); err != nil {
		return at.fail("modes: %w", err)
	}
	if cp.catMask, cp.Categories, err = c.cats.mask(j.Categories); err != nil {
		return at.fail("categories: %w", err)
	}
	cp.zoneMask = ^uint64(0)
	if j.Zones != nil {
		if cp.zoneMask, cp.Zones, err = c.zones.mask(j.Zones); err != nil {
			return at.fail("zones: %w", err)
		}
	}
	cp.Holidays = HolidaysInclude
	if j.Holidays != "" {
		if err := cp.Holidays.UnmarshalText([]byte(j.Holidays)); err != nil {
			return at.fail("holidays: %w", err)
		}
	}
	return nil
}

func capDays(at ruleAt, j *capJSON, cp *Cap) error {
	cp.dowMask = 0x7f
	if j.DaysOfWeek == nil {
		return nil
	}
	if len(*j.DaysOfWeek) == 0 {
		return at.fail("days_of_week: empty list (omit the list to mean all)")
	}
	cp.dowMask = 0
	for _, s := range *j.DaysOfWeek {
		wd, ok := weekdayNames[strings.ToLower(s)]
		if !ok {
			return at.fail("days_of_week: %q is not a day of the week", s)
		}
		if cp.dowMask&(1<<wd) == 0 {
			cp.DaysOfWeek = append(cp.DaysOfWeek, wd)
		}
		cp.dowMask |= 1 << wd
	}
	return nil
}

func (c *ruleCompiler) transfer(i int, el element[transferJSON]) error {
	t := el.v
	at := ruleAt{line: el.line, path: fmt.Sprintf("transfers[%d]", i)}
	tr := Transfer{ID: t.ID, CountsTowardCaps: t.CountsTowardCaps, CappedTapOpensWindow: true}
	if tr.ID == "" {
		tr.ID = "transfers[" + strconv.Itoa(i) + "]"
	} else if len(tr.ID) > maxName {
		return at.fail("id must be at most %d bytes", maxName)
	}
	if c.ids["transfer:"+tr.ID] {
		return at.fail("duplicate transfer id %q", tr.ID)
	}
	c.ids["transfer:"+tr.ID] = true
	if t.WindowMinutes == nil {
		return at.fail("window_minutes: missing")
	}
	if *t.WindowMinutes < 1 || *t.WindowMinutes > maxWindowMin {
		return at.fail("window_minutes: must be between 1 and %d", maxWindowMin)
	}
	tr.Window = time.Duration(*t.WindowMinutes) * time.Minute
	tr.window = int64(*t.WindowMinutes) * 60
	tr.MeasuredFrom = FromPaidTap
	if t.MeasuredFrom != "" {
		if err := tr.MeasuredFrom.UnmarshalText([]byte(t.MeasuredFrom)); err != nil {
			return at.fail("measured_from: %w", err)
		}
	}
	var err error
	if tr.fromMask, tr.FromModes, err = c.modes.mask(t.FromModes); err != nil {
		return at.fail("from_modes: %w", err)
	}
	if tr.toMask, tr.ToModes, err = c.modes.mask(t.ToModes); err != nil {
		return at.fail("to_modes: %w", err)
	}
	if t.Max != nil {
		if *t.Max < 1 || *t.Max > maxRides {
			return at.fail("max: must be between 1 and %d (omit it for unlimited)", maxRides)
		}
		tr.Max = *t.Max
	}
	if t.Price == "" {
		return at.fail("price: missing (free, difference, fixed_discount or percent_discount)")
	}
	if err := tr.Price.UnmarshalText([]byte(t.Price)); err != nil {
		return at.fail("price: %w", err)
	}
	if err := c.transferDiscount(at, &t, &tr); err != nil {
		return err
	}
	tr.DifferentMode = t.DifferentMode
	if t.CappedTapOpensWindow != nil {
		tr.CappedTapOpensWindow = *t.CappedTapOpensWindow
	}
	c.r.Transfers = append(c.r.Transfers, tr)
	return nil
}

func parseHHMM(s string) (int, int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 || s[0] == '+' || s[3] == '+' || s[0] == '-' || s[3] == '-' {
		return 0, 0, false
	}
	return h, m, true
}

// bit returns the mask bit of a name, otherBit for names no rule mentions.
func bit(ids map[string]uint8, s string) uint64 {
	if id, ok := ids[s]; ok {
		return 1 << id
	}
	return otherBit
}

// isHoliday reports whether d is a public holiday.
func (r *Rules) isHoliday(d Date) bool {
	_, ok := slices.BinarySearch(r.PublicHolidays, d)
	return ok
}

// dayStart returns the instant service day d starts: the first instant of
// date d whose wall clock reads service_day_start or later. When that wall
// time falls in a DST gap the day starts at the jump; when it happens twice
// (clocks go back) the day starts at the first occurrence.
func (r *Rules) dayStart(d Date) int64 {
	y, m, dd := d.Civil()
	t := time.Date(y, m, dd, r.dayStartH, r.dayStartM, 0, 0, r.Location)
	if h, mi, _ := t.Clock(); h != r.dayStartH || mi != r.dayStartM {
		// In a gap, time.Date returns an instant outside the gap with a
		// different wall clock; the day starts at the zone change.
		start, end := t.ZoneBounds()
		if h*60+mi < r.dayStartH*60+r.dayStartM && !end.IsZero() {
			return end.Unix()
		}
		if !start.IsZero() {
			return start.Unix()
		}
		return t.Unix()
	}
	// Repeated hour: is there an earlier instant with the same wall clock?
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		_, off := t.Zone()
		_, prevOff := start.Add(-time.Second).Zone()
		if prevOff > off {
			alt := t.Add(-time.Duration(prevOff-off) * time.Second)
			if alt.Before(start) {
				if h, mi, _ := alt.Clock(); h == r.dayStartH && mi == r.dayStartM {
					return alt.Unix()
				}
			}
		}
	}
	return t.Unix()
}

// ServiceDay returns the service day that instant t belongs to: day D runs
// from D's start (service_day_start local time) to D+1's start, so a day is
// 23 or 25 hours long across a DST change.
func (r *Rules) ServiceDay(t time.Time) Date {
	return r.serviceDaySlow(t.Unix())
}

func (r *Rules) serviceDaySlow(u int64) Date {
	lt := time.Unix(u, 0).In(r.Location)
	d := DateOf(lt.Date())
	for u < r.dayStart(d) {
		d--
	}
	for u >= r.dayStart(d+1) {
		d++
	}
	return d
}
