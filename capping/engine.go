package capping

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Leg is one rated tap.
type Leg struct {
	Tap        int // index of the tap in the slice given to Rate or Settle
	Time       time.Time
	ServiceDay Date
	// Journey is what journey construction made of the tap (NoJourney for
	// a tap rated on its own); its station is the tap's Stop. (Here it
	// fills padding: a Leg stays two cache lines.)
	Journey  Outcome
	Mode     string
	Category string
	Base     Amount // the tap's fare before transfer pricing
	Fare     Amount // after transfer pricing, before caps
	Charged  Amount // after caps
	CappedBy string // id of the cap that bound the leg; "" if none did
	Transfer string // id of the transfer rule that priced the leg; "" if none
}

// DayCharge is what one service day cost a rider in the final rating.
type DayCharge struct {
	Day     Date
	Taps    int
	Fares   Amount // sum of leg fares (after transfers, before caps)
	Charged Amount
}

// Run is one settlement run: the run at the end of service day Run charged
// Charged (negative: a refund) for the taps received by then. Taps counts
// the taps this run saw for the first time.
type Run struct {
	Run     Date
	Charged Amount
	Taps    int
}

// CapWindow is one window of one cap as a rider used it: the receipt data
// for a weekly cap manifest. For a sliding cap there is one window per
// service day the cap applied on (the trailing N days ending that day).
type CapWindow struct {
	Cap      string
	From, To Date
	Charged  Amount // charged for the legs the cap covers in the window
	Rides    int    // paid rides (charged > 0) in the window
	Legs     int    // legs the cap covered in the window
	Reached  bool   // head-room hit zero
	Saved    Amount // what the cap took off the legs it bound
	capIndex int
}

// Rider is the rating of one token.
type Rider struct {
	Token       string
	Total       Amount
	Fares       Amount // before caps; Fares-Total is what capping saved
	Legs        []Leg  // in time order
	Days        []DayCharge
	Settlements []Run // in run order; they add up to Total
	Windows     []CapWindow
}

func (rd *Rider) reset() {
	rd.Token = ""
	rd.Total, rd.Fares = 0, 0
	rd.Legs = rd.Legs[:0]
	rd.Days = rd.Days[:0]
	rd.Settlements = rd.Settlements[:0]
	rd.Windows = rd.Windows[:0]
}

// CapsReached returns the ids of the caps whose head-room hit zero in some
// window, in rules order.
func (rd *Rider) CapsReached() []string {
	return rd.AppendCapsReached(make([]string, 0, 4))
}

// AppendCapsReached appends CapsReached to dst without allocating when dst
// has room.
func (rd *Rider) AppendCapsReached(dst []string) []string {
	// Caps are at most maxCaps: a bit set in rules order.
	var reached [maxCaps / 64]uint64
	for _, w := range rd.Windows {
		if w.Reached {
			reached[w.capIndex/64] |= 1 << (w.capIndex % 64)
		}
	}
	for ci := 0; ci < maxCaps; ci++ {
		if reached[ci/64]&(1<<(ci%64)) == 0 {
			continue
		}
		for _, w := range rd.Windows {
			if w.capIndex == ci {
				dst = append(dst, w.Cap)
				break
			}
		}
	}
	return dst
}

// prepLeg is a tap reduced to what rating needs.
type prepLeg struct {
	tap      int32
	role     uint8
	jr       int8    // journeys rule, -1: rated on its own
	kind     Outcome // set by buildJourneys
	unix     int64
	day      Date
	run      Date // service day whose settlement run first sees the tap
	modeBit  uint64
	catBit   uint64
	zoneMask uint64
	base     Amount
}

type slideEntry struct {
	day   Date
	sum   Amount
	rides int32
}

// noWindow marks a cap state without a current window: no service day is
// ever this early, so the first applicable leg always opens a window.
const noWindow = Date(math.MinInt32)

type capState struct {
	from, to Date // current window; noWindow: none yet
	sum      Amount
	rides    int
	win      int32 // index of the current window in Rider.Windows, -1 none
	q        []slideEntry
	qh       int
	dayOK    bool
	dFrom    Date // calendar window of the current day
	dTo      Date
}

type xferState struct {
	open   bool
	until  int64
	count  int
	credit Amount
	mode   uint64 // mode of the last leg in the window (different_mode)
}

// Engine rates the taps of one token at a time. It keeps scratch buffers
// between calls so that rating allocates nothing once warm; an Engine is
// therefore not safe for concurrent use: use one per goroutine.
type Engine struct {
	r     *Rules
	legs  []prepLeg
	sub   []prepLeg
	rtaps []Tap // resolved copies of taps given unresolved
	runs  []Date
	keys  []uint64
	caps  []capState
	xfers []xferState
	days  dayTable
	appl  [maxCaps]uint8 // caps that apply to the leg being rated
	// journeys: some tap of the token has a role in a journeys rule.
	journeys bool
	err      error // first pricing error of journey construction
}

// NewEngine returns an engine for the rules.
func NewEngine(r *Rules) *Engine {
	return &Engine{r: r, caps: make([]capState, len(r.Caps)), xfers: make([]xferState, len(r.Transfers))}
}

// Rate rates the taps of one token (in any order) into rd, reusing rd's
// slices. It forms journeys by the transfer rules, charges every leg
// min(fare, head-room of every applicable cap), and lays out the settlement
// runs that the taps' received times imply.
func (e *Engine) Rate(rd *Rider, taps []Tap) error {
	rd.reset()
	if len(taps) == 0 {
		return nil
	}
	taps, late, err := e.prepare(taps)
	if err != nil {
		return err
	}
	rd.Token = taps[0].Token
	e.err = nil
	rd.Total = e.rateLegs(e.legs, taps, rd)
	if e.err != nil {
		err := e.err
		rd.reset()
		return err
	}
	if e.journeys && !late {
		late = e.journeySpansRuns()
	}
	if !late {
		// Every tap arrived within its own service day: the run at the end
		// of day D charges exactly day D's legs (rating is causal).
		for _, dc := range rd.Days {
			rd.Settlements = append(rd.Settlements, Run{Run: dc.Day, Charged: dc.Charged, Taps: dc.Taps})
		}
		return nil
	}
	e.rateRuns(taps, rd)
	if e.err != nil { // a run's taps paired into a journey no fare prices
		err := e.err
		rd.reset()
		return err
	}
	return nil
}

// prepare reduces the taps to e.legs in time order, each with its service
// day and the run that first sees it; late reports whether any tap was
// received after its own service day.
func (e *Engine) prepare(taps []Tap) (use []Tap, late bool, err error) {
	token := taps[0].Token
	e.legs = e.legs[:0]
	e.journeys = false
	sorted := true
	resolved := false
	for i := range taps {
		t := &taps[i]
		if t.Token != token {
			return nil, false, fmt.Errorf("%w: %q and %q", ErrMixedTokens, clip(token), clip(t.Token))
		}
		if t.by != e.r {
			// Resolve a copy: journey construction reads the resolved
			// taps, and the caller's stay untouched.
			if !resolved {
				e.rtaps = append(e.rtaps[:0], taps...)
				taps, resolved = e.rtaps, true
			}
			t = &taps[i]
			if err := e.r.Resolve(t); err != nil {
				return nil, false, &TapsError{Line: t.Line, Err: err}
			}
		}
		u := t.Time.Unix()
		l := prepLeg{tap: int32(i), unix: u, modeBit: t.modeBit, catBit: t.catBit, zoneMask: t.zoneMask, base: t.base, role: t.role, jr: t.jr}
		if t.jr >= 0 {
			e.journeys = true
		}
		l.day = e.day(u)
		l.run = l.day
		if !t.Received.IsZero() {
			if rday := e.day(t.Received.Unix()); rday > l.run {
				l.run, late = rday, true
			}
		}
		if n := len(e.legs); n > 0 && e.legs[n-1].unix > u {
			sorted = false
		}
		e.legs = append(e.legs, l)
	}
	if !sorted {
		e.sortLegs()
	}
	return taps, late, nil
}

// journeySpansRuns reports whether a journey's tap-off is first seen by a
// later run than its tap-on: the tap-on's run then prices an incomplete
// journey and the later run pays the difference back.
func (e *Engine) journeySpansRuns() bool {
	var onRun Date
	for i := range e.legs {
		l := &e.legs[i]
		switch l.kind {
		case JourneyComplete, JourneySameStation:
			onRun = l.run
		case JourneyExit:
			if l.run > onRun {
				return true
			}
		}
	}
	return false
}

// rateRuns lays out the settlement runs when taps came late: each run
// re-rates everything received by its end from the start and charges the
// difference to what earlier runs charged.
func (e *Engine) rateRuns(taps []Tap, rd *Rider) {
	e.runs = e.runs[:0]
	for i := range e.legs {
		e.runs = append(e.runs, e.legs[i].run)
	}
	slices.Sort(e.runs)
	e.runs = slices.Compact(e.runs)
	var prev Amount
	for _, run := range e.runs {
		e.sub = e.sub[:0]
		n := 0
		for i := range e.legs {
			if e.legs[i].run <= run {
				e.sub = append(e.sub, e.legs[i])
				if e.legs[i].run == run {
					n++
				}
			}
		}
		total := e.rateLegs(e.sub, taps, nil)
		rd.Settlements = append(rd.Settlements, Run{Run: run, Charged: total - prev, Taps: n})
		prev = total
	}
}

// sortLegs orders e.legs by time, ties in input order. It sorts packed
// (time, index) keys rather than the legs themselves: moving 8-byte keys is
// several times cheaper than moving legs.
func (e *Engine) sortLegs() {
	n := len(e.legs)
	const idxBits = 24
	lo := e.legs[0].unix
	hi := lo
	for i := range e.legs {
		lo, hi = min(lo, e.legs[i].unix), max(hi, e.legs[i].unix)
	}
	if n >= 1<<idxBits || uint64(hi-lo) >= 1<<(64-idxBits) {
		slices.SortStableFunc(e.legs, func(a, b prepLeg) int { return cmp.Compare(a.unix, b.unix) })
		return
	}
	e.keys = e.keys[:0]
	for i := range e.legs {
		e.keys = append(e.keys, uint64(e.legs[i].unix-lo)<<idxBits|uint64(i))
	}
	if k := e.keys; len(k) <= 24 {
		// Insertion sort: a token's taps are few and often nearly in order.
		for i := 1; i < len(k); i++ {
			v := k[i]
			j := i
			for ; j > 0 && k[j-1] > v; j-- {
				k[j] = k[j-1]
			}
			k[j] = v
		}
	} else {
		slices.Sort(e.keys)
	}
	e.sub = append(e.sub[:0], e.legs...)
	for i, k := range e.keys {
		e.legs[i] = e.sub[k&(1<<idxBits-1)]
	}
}

// rateLegs rates legs in time order and returns the total. With rd non-nil
// it records legs, days and cap windows.
func (e *Engine) rateLegs(legs []prepLeg, taps []Tap, rd *Rider) Amount {
	e.resetState()
	if e.journeys {
		e.buildJourneys(legs, taps)
	}
	var total Amount
	curDay := Date(math.MinInt32)
	for li := range legs {
		l := &legs[li]
		if l.day != curDay {
			curDay = l.day
			e.enterDay(curDay)
		}
		var price, charged Amount
		binding, xr := -1, -1
		switch l.kind {
		case NoJourney:
			// A tap on its own: the hot path, inline.
			xr = e.transferFor(l)
			price = l.base
			subject := true
			if xr >= 0 {
				tr := &e.r.Transfers[xr]
				price, subject = tr.price(l.base, e.xfers[xr].credit), tr.CountsTowardCaps
				// A transfer never costs more than a new journey: outside
				// capping it could cost more than the same leg under the caps.
				if !subject && price > 0 && e.capRoom(l, l.base) < price {
					xr, price, subject = -1, l.base, true
				}
			}
			charged = price
			if subject {
				charged, binding = e.capLeg(l, price, rd)
			}
			if xr >= 0 || (price > 0 && len(e.r.Transfers) > 0) {
				e.updateTransfers(l, l.unix, xr, price, charged)
			}
		case JourneyExit:
			// Priced at its tap-on.
		default:
			// A journey ends at its tap-off, the next leg (any other tap
			// between would have ended it as incomplete).
			end := l.unix
			if (l.kind == JourneyComplete || l.kind == JourneySameStation) && li+1 < len(legs) {
				end = legs[li+1].unix
			}
			price, charged, binding, xr = e.priceJourney(l, end, rd)
		}
		total += charged
		if rd == nil {
			continue
		}
		// Record the leg, filled in place: building it on the stack and
		// copying it in costs a typed (pointer-aware) copy per leg.
		t := &taps[l.tap]
		leg := grow(&rd.Legs)
		leg.Tap, leg.Time, leg.ServiceDay = int(l.tap), t.Time, l.day
		leg.Mode, leg.Category = t.Mode, t.Category
		leg.Base, leg.Fare, leg.Charged = l.base, price, charged
		leg.CappedBy, leg.Transfer = "", ""
		leg.Journey = l.kind
		if binding >= 0 {
			leg.CappedBy = e.r.Caps[binding].ID
		}
		if xr >= 0 {
			leg.Transfer = e.r.Transfers[xr].ID
		}
		e.addToDay(rd, l.day, price, charged)
	}
	return total
}

// priceJourney prices a journey's leg (transfers, then caps by the
// journeys rule's incomplete_caps for penalties) and moves the transfer
// windows: what the leg costs before and after caps, the cap that bound it
// (-1 none) and the transfer rule that priced it (-1 none). end is when the
// journey ended (its tap-off), the leg's time for a penalty.
func (e *Engine) priceJourney(l *prepLeg, end int64, rd *Rider) (price, charged Amount, binding, xr int) {
	xr = e.transferFor(l)
	price, subject := l.base, true
	if xr >= 0 {
		tr := &e.r.Transfers[xr]
		price, subject = tr.price(l.base, e.xfers[xr].credit), tr.CountsTowardCaps
		if !subject && price > 0 && e.capRoom(l, l.base) < price {
			xr, price, subject = -1, l.base, true
		}
	}
	charged, binding = price, -1
	switch {
	case l.kind == JourneyIncomplete || l.kind == JourneyUnmatchedExit:
		switch e.r.Journeys[l.jr].PenaltyCaps {
		case PenaltyCount:
			charged, binding = e.capLeg(l, price, rd)
		case PenaltyBounded:
			charged = e.capRoom(l, price)
		}
	case subject:
		charged, binding = e.capLeg(l, price, rd)
	}
	if xr >= 0 || (price > 0 && len(e.r.Transfers) > 0) {
		e.updateTransfers(l, end, xr, price, charged)
	}
	return price, charged, binding, xr
}

// price is what a transfer leg of base price base costs under the rule,
// credit being the highest base paid in its window.
func (tr *Transfer) price(base, credit Amount) Amount {
	switch tr.Price {
	case TransferFree:
		return 0
	case TransferFixedDiscount:
		return max(0, base-tr.Discount)
	case TransferPercentDiscount:
		return base - (base*Amount(tr.Percent)+99)/100
	}
	return max(0, base-credit)
}

// capRoom returns min(price, head-room of every cap that applies to the
// leg) without charging anything or moving any window.
func (e *Engine) capRoom(l *prepLeg, price Amount) Amount {
	r := e.r
	for ci := range r.Caps {
		cp := &r.Caps[ci]
		cs := &e.caps[ci]
		if !cs.dayOK || cp.modeMask&l.modeBit == 0 || cp.catMask&l.catBit == 0 || l.zoneMask&^cp.zoneMask != 0 {
			continue
		}
		sum, rides := e.windowAt(ci, l.day)
		var room Amount
		if cp.Rides > 0 {
			if rides < cp.Rides {
				continue
			}
		} else {
			room = cp.Amount - sum
		}
		price = min(price, max(room, 0))
	}
	return price
}

// windowAt returns what cap ci's window covering day d holds so far: what
// roll would leave, without rolling.
func (e *Engine) windowAt(ci int, d Date) (Amount, int) {
	cp := &e.r.Caps[ci]
	cs := &e.caps[ci]
	switch {
	case cp.Period.Kind != RollingDays:
		if cs.from != cs.dFrom || cs.to != cs.dTo {
			return 0, 0
		}
	case cp.Period.Anchor == FirstTap:
		if d > cs.to {
			return 0, 0
		}
	default:
		sum, rides := cs.sum, cs.rides
		from := d - Date(cp.Period.Days-1)
		for k := cs.qh; k < len(cs.q) && cs.q[k].day < from; k++ {
			sum -= cs.q[k].sum
			rides -= int(cs.q[k].rides)
		}
		return sum, rides
	}
	return cs.sum, cs.rides
}

// resetState clears every cap and transfer state for a fresh rating.
func (e *Engine) resetState() {
	for i := range e.caps {
		c := &e.caps[i]
		c.from, c.to, c.sum, c.rides, c.win = noWindow, noWindow, 0, 0, -1
		c.q, c.qh = c.q[:0], 0
	}
	clear(e.xfers)
}

// transferFor returns the first transfer rule whose window is open,
// unexpired (inclusive edge), not exhausted and accepts the leg's mode; -1
// when none does.
func (e *Engine) transferFor(l *prepLeg) int {
	for j := range e.r.Transfers {
		st := &e.xfers[j]
		tr := &e.r.Transfers[j]
		if st.open && l.unix <= st.until && (tr.Max == 0 || st.count < tr.Max) && tr.toMask&l.modeBit != 0 &&
			!(tr.DifferentMode && st.mode == l.modeBit) {
			return j
		}
	}
	return -1
}

// capLeg charges min(price, head-room of every applicable cap) and adds
// the charge to those caps; binding is the cap that bound the leg, -1 none.
func (e *Engine) capLeg(l *prepLeg, price Amount, rd *Rider) (charged Amount, binding int) {
	r := e.r
	charged, binding = price, -1
	appl := &e.appl
	n := 0
	for ci := range r.Caps {
		cp := &r.Caps[ci]
		cs := &e.caps[ci]
		if !cs.dayOK || cp.modeMask&l.modeBit == 0 || cp.catMask&l.catBit == 0 || l.zoneMask&^cp.zoneMask != 0 {
			continue
		}
		appl[n] = uint8(ci)
		n++
		if cp.Period.Kind == RollingDays || cs.from != cs.dFrom {
			e.roll(ci, l.day, rd)
		}
		var room Amount
		if cp.Rides > 0 {
			if cs.rides < cp.Rides {
				continue
			}
		} else {
			room = cp.Amount - cs.sum
		}
		if room < charged {
			charged, binding = room, ci
		}
	}
	// Add the charge (and the ride if paid) to every applicable cap.
	var ride int32
	if charged > 0 {
		ride = 1
	}
	for k := 0; k < n; k++ {
		ci := int(appl[k])
		cp := &r.Caps[ci]
		cs := &e.caps[ci]
		cs.sum += charged
		cs.rides += int(ride)
		if cp.Period.Kind == RollingDays && cp.Period.Anchor == Sliding {
			if q := len(cs.q); q > cs.qh && cs.q[q-1].day == l.day {
				cs.q[q-1].sum += charged
				cs.q[q-1].rides += ride
			} else {
				cs.q = append(cs.q, slideEntry{day: l.day, sum: charged, rides: ride})
			}
		}
		if rd == nil {
			continue
		}
		w := &rd.Windows[cs.win]
		w.Charged = cs.sum
		w.Rides = cs.rides
		w.Legs++
		if cp.Rides > 0 {
			w.Reached = w.Reached || cs.rides >= cp.Rides
		} else {
			w.Reached = w.Reached || cs.sum >= cp.Amount
		}
		if binding == ci {
			w.Saved += price - charged
			w.Reached = true
		}
	}
	return charged, binding
}

// updateTransfers moves the transfer windows once a leg's charge is known:
// a transfer counts against its rule; a paid leg opens windows.
func (e *Engine) updateTransfers(l *prepLeg, end int64, xr int, price, charged Amount) {
	r := e.r
	if xr >= 0 {
		st := &e.xfers[xr]
		tr := &r.Transfers[xr]
		st.count++
		st.mode = l.modeBit
		if price > 0 {
			st.credit = max(st.credit, l.base)
			if tr.MeasuredFrom == FromPaidTap && (charged > 0 || tr.CappedTapOpensWindow) {
				st.until = end + tr.window
			}
		}
		return
	}
	if price <= 0 {
		return
	}
	for j := range r.Transfers {
		tr := &r.Transfers[j]
		if tr.fromMask&l.modeBit == 0 || (charged == 0 && !tr.CappedTapOpensWindow) {
			continue
		}
		e.xfers[j] = xferState{open: true, until: end + tr.window, credit: l.base, mode: l.modeBit}
	}
}

// addToDay adds a leg to its service day's charge.
func (e *Engine) addToDay(rd *Rider, day Date, price, charged Amount) {
	if nd := len(rd.Days); nd == 0 || rd.Days[nd-1].Day != day {
		rd.Days = append(rd.Days, DayCharge{Day: day})
	}
	dc := &rd.Days[len(rd.Days)-1]
	dc.Taps++
	dc.Fares += price
	dc.Charged += charged
	rd.Fares += price
}

// enterDay prepares the per-day view of every cap: whether its day and
// holiday filters let it apply, and its calendar window.
func (e *Engine) enterDay(d Date) {
	r := e.r
	wd := d.Weekday()
	hol := len(r.PublicHolidays) > 0 && r.isHoliday(d)
	for ci := range r.Caps {
		cp := &r.Caps[ci]
		cs := &e.caps[ci]
		cs.dayOK = cp.dowMask&(1<<wd) != 0 &&
			!(cp.Holidays == HolidaysExclude && hol) && !(cp.Holidays == HolidaysOnly && !hol)
		switch cp.Period.Kind {
		case ServiceDay:
			cs.dFrom, cs.dTo = d, d
		case CalendarWeek:
			from := d - Date((int(wd)-int(r.WeekStart)+7)%7)
			cs.dFrom, cs.dTo = from, from+6
		case CalendarMonth:
			cs.dFrom, cs.dTo = d.monthBounds()
		}
	}
}

// roll moves cap ci's window to cover day d.
func (e *Engine) roll(ci int, d Date, rd *Rider) {
	cp := &e.r.Caps[ci]
	cs := &e.caps[ci]
	fresh := false
	switch {
	case cp.Period.Kind != RollingDays:
		if cs.from != cs.dFrom || cs.to != cs.dTo {
			cs.from, cs.to = cs.dFrom, cs.dTo
			fresh = true
		}
	case cp.Period.Anchor == FirstTap:
		if d > cs.to {
			cs.from, cs.to = d, d+Date(cp.Period.Days-1)
			fresh = true
		}
	default: // sliding: drop the days that fell out of the trailing window
		from := d - Date(cp.Period.Days-1)
		for cs.qh < len(cs.q) && cs.q[cs.qh].day < from {
			cs.sum -= cs.q[cs.qh].sum
			cs.rides -= int(cs.q[cs.qh].rides)
			cs.qh++
		}
		if cs.qh == len(cs.q) {
			cs.q, cs.qh = cs.q[:0], 0
		}
		if rd != nil && (cs.win < 0 || rd.Windows[cs.win].To != d) {
			newWindow(rd, cs, cp.ID, ci, from, d)
			w := &rd.Windows[cs.win]
			w.Charged, w.Rides = cs.sum, cs.rides
		}
		return
	}
	if fresh {
		cs.sum, cs.rides = 0, 0
		if rd != nil {
			newWindow(rd, cs, cp.ID, ci, cs.from, cs.to)
		}
	}
}

// dayTable caches service-day start instants over a range of days so that
// finding a tap's service day is an index estimate and a comparison or two.
type dayTable struct {
	base   Date
	starts []int64 // starts[i] = start of service day base+i
}

const (
	dayTableSpan = 400   // days built around a miss
	dayTableMax  = 20000 // never cache more than ~55 years
)

// day returns the service day of unix time u.
func (e *Engine) day(u int64) Date {
	t := &e.days
	if n := len(t.starts); n >= 2 && u >= t.starts[0] && u < t.starts[n-1] {
		i := int((u - t.starts[0]) / 86400)
		if i > n-2 {
			i = n - 2
		}
		for i > 0 && u < t.starts[i] {
			i--
		}
		for i < n-2 && u >= t.starts[i+1] {
			i++
		}
		return t.base + Date(i)
	}
	d := e.r.serviceDaySlow(u)
	lo, hi := d-dayTableSpan, d+dayTableSpan
	if n := len(t.starts); n > 0 {
		lo, hi = min(lo, t.base), max(hi, t.base+Date(n-1))
	}
	if int(hi-lo) > dayTableMax {
		return d
	}
	starts := make([]int64, 0, int(hi-lo)+1)
	for x := lo; x <= hi; x++ {
		starts = append(starts, e.r.dayStart(x))
	}
	t.base, t.starts = lo, starts
	return d
}

// grow extends *s by one element and returns it, reusing capacity; the
// element keeps stale values, callers set every field.
func grow[T any](s *[]T) *T {
	if len(*s) < cap(*s) {
		*s = (*s)[:len(*s)+1]
	} else {
		var zero T
		*s = append(*s, zero)
	}
	return &(*s)[len(*s)-1]
}

func newWindow(rd *Rider, cs *capState, id string, ci int, from, to Date) {
	w := grow(&rd.Windows)
	w.Cap, w.From, w.To, w.capIndex = id, from, to, ci
	w.Charged, w.Rides, w.Legs, w.Reached, w.Saved = 0, 0, 0, false, 0
	cs.win = int32(len(rd.Windows) - 1)
}
