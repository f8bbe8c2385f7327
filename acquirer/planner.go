package acquirer

import (
	"time"

	"github.com/faregate/faregate/capping"
)

// Category is how a response code is to be handled, after Visa's decline
// categories and Mastercard's merchant advice codes (MAC).
type Category int

const (
	// CategoryApproved: the charge is taken.
	CategoryApproved Category = iota
	// CategoryNotDecline: 91 (issuer unavailable), 96 (system malfunction)
	// and no answer at all. Not a decline: reverse and retry (Client.Do
	// already does; a charge still in this state is tried again at once).
	CategoryNotDecline
	// CategoryNeverRetry: the issuer will never approve (Visa category 1:
	// 04 07 12 15 41 43 46 57 R0 R1 R3; MAC 03, 21). Retrying is a scheme
	// violation; the debt stays until the rider pays it.
	CategoryNeverRetry
	// CategoryRetryLater: the issuer may approve later (Visa category 2:
	// 05 51 61 65 …; category 4, every code not listed; MAC 02 and 24–30
	// with their delays). Resubmit on a schedule within the scheme limits
	// and when the card taps again.
	CategoryRetryLater
	// CategoryUpdateCard: the card data is wrong or stale (Visa category
	// 3: 14 54 55 …; MAC 01). The rider has to update the card or pay.
	CategoryUpdateCard
)

var categoryNames = [...]string{"approved", "not_decline", "never_retry", "retry_later", "update_card"}

func (c Category) String() string {
	if int(c) < len(categoryNames) {
		return categoryNames[c]
	}
	return "unknown"
}

// Categorize returns the category of a response code and Mastercard
// merchant advice code (empty when none). An empty code means no answer.
// A MAC that forbids retries overrides the code.
func Categorize(code, mac string) Category {
	switch {
	case code == "":
		return CategoryNotDecline
	case IsApproval(code):
		return CategoryApproved
	}
	switch mac {
	case "03", "21":
		return CategoryNeverRetry
	case "01":
		return CategoryUpdateCard
	}
	switch code {
	case "91", "96":
		return CategoryNotDecline
	case "04", "07", "12", "15", "41", "43", "46", "57", "R0", "R1", "R3":
		return CategoryNeverRetry
	case "14", "54", "55", "70", "82", "1A", "N7", "6P":
		return CategoryUpdateCard
	}
	return CategoryRetryLater
}

// macDelay is the wait Mastercard asks for with MAC 24–30.
func macDelay(mac string) time.Duration {
	const day = 24 * time.Hour
	switch mac {
	case "24":
		return time.Hour
	case "25":
		return day
	case "26":
		return 2 * day
	case "27":
		return 4 * day
	case "28":
		return 6 * day
	case "29":
		return 8 * day
	case "30":
		return 10 * day
	}
	return 0
}

// Action is what the back office does next with a charge.
type Action int

const (
	// ActionClose: approved; the charge is done and the token leaves the
	// deny list if it was on it.
	ActionClose Action = iota
	// ActionRetryNow: not a decline; send again now.
	ActionRetryNow
	// ActionRetryAt: resubmit at Decision.RetryAt (or at the next tap,
	// whichever comes first, while the limits allow).
	ActionRetryAt
	// ActionAwaitRider: no more automatic attempts (never-retry, update
	// card, or the limits are used up); the debt stays and the token stays
	// deny-listed until the rider or an operator pays it.
	ActionAwaitRider
	// ActionWriteOff: first-ride risk — book the amount as a loss and do
	// not chase it. The token is still deny-listed.
	ActionWriteOff
)

var actionNames = [...]string{"close", "retry_now", "retry_at", "await_rider", "write_off"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Policy holds the scheme limits of debt recovery. The zero value is
// DefaultPolicy's limits with first-ride risk off.
type Policy struct {
	// MaxResubmissions within Window after the first decline (Visa: 6 in
	// 14 days). Resubmissions at a tap count.
	MaxResubmissions int
	Window           time.Duration
	// Schedule is the delay of the n-th scheduled resubmission after the
	// first decline.
	Schedule []time.Duration
	// FirstRideLimit: a decline that is the first since the last approval
	// for at most this amount is a first-ride-risk loss (0: off).
	FirstRideLimit capping.Amount
}

// DefaultPolicy: Visa's transit limits — 6 resubmissions in 14 days — on a
// schedule of 1, 2, 4, 7, 10 and 13 days after the first decline.
var DefaultPolicy = Policy{
	MaxResubmissions: 6,
	Window:           14 * 24 * time.Hour,
	Schedule: []time.Duration{
		24 * time.Hour, 2 * 24 * time.Hour, 4 * 24 * time.Hour,
		7 * 24 * time.Hour, 10 * 24 * time.Hour, 13 * 24 * time.Hour,
	},
}

func (p Policy) withDefaults() Policy {
	if p.MaxResubmissions == 0 {
		p.MaxResubmissions = DefaultPolicy.MaxResubmissions
	}
	if p.Window == 0 {
		p.Window = DefaultPolicy.Window
	}
	if len(p.Schedule) == 0 {
		p.Schedule = DefaultPolicy.Schedule
	}
	return p
}

// History is what the back office knows of a charge's and its token's
// past when an answer comes.
type History struct {
	// FirstDeclinedAt is the time of the charge's first decline; zero when
	// this answer is the first.
	FirstDeclinedAt time.Time
	// Resubmissions already made after the first decline.
	Resubmissions int
	// DeclinesSinceApproval counts the token's declines since its last
	// approved check or charge (before this answer).
	DeclinesSinceApproval int
}

// Decision is the recovery plan for one answer.
type Decision struct {
	Action   Action
	Category Category
	// RetryAt is the earliest next resubmission (ActionRetryAt).
	RetryAt time.Time
	// FirstDeclinedAt is History.FirstDeclinedAt, or now for a first
	// decline: the caller stores it.
	FirstDeclinedAt time.Time
	// NotBefore is the earliest any resubmission may go, a tap included
	// (Mastercard's MAC 24–30 delays); zero when there is none.
	NotBefore time.Time
	// DenyList: the token goes on the deny list with the amount owed.
	DenyList bool
}

// Plan decides what follows an answer (code "" for none) to a charge of
// amount at now. It is pure: everything it knows comes in its arguments.
func (p Policy) Plan(code, mac string, amount capping.Amount, h History, now time.Time) Decision {
	p = p.withDefaults()
	d := Decision{Category: Categorize(code, mac), FirstDeclinedAt: h.FirstDeclinedAt}
	switch d.Category {
	case CategoryApproved:
		d.Action = ActionClose
		return d
	case CategoryNotDecline:
		d.Action = ActionRetryNow
		return d
	}
	d.DenyList = true
	if d.FirstDeclinedAt.IsZero() {
		d.FirstDeclinedAt = now
	}
	if p.FirstRideLimit > 0 && h.DeclinesSinceApproval == 0 && h.FirstDeclinedAt.IsZero() && amount <= p.FirstRideLimit {
		d.Action = ActionWriteOff
		return d
	}
	if d.Category != CategoryRetryLater {
		d.Action = ActionAwaitRider
		return d
	}
	if md := macDelay(mac); md > 0 {
		d.NotBefore = now.Add(md)
	}
	at, ok := p.next(d.FirstDeclinedAt, h.Resubmissions, now)
	if ok {
		if d.NotBefore.After(at) {
			at = d.NotBefore
		}
		ok = at.Before(d.FirstDeclinedAt.Add(p.Window))
	}
	if !ok {
		d.Action = ActionAwaitRider
		return d
	}
	d.Action, d.RetryAt = ActionRetryAt, at
	return d
}

// next is the time of resubmission number n+1 on the schedule, not before
// now; false when the limits are used up.
func (p Policy) next(first time.Time, n int, now time.Time) (time.Time, bool) {
	if n >= p.MaxResubmissions || !now.Before(first.Add(p.Window)) {
		return time.Time{}, false
	}
	i := min(n, len(p.Schedule)-1)
	at := first.Add(p.Schedule[i])
	if at.Before(now) {
		at = now
	}
	return at, true
}

// RetryOnTap reports whether a deny-listed card tapping again at now may
// trigger an online resubmission of its debt (TfL: the next tap), given
// the last decision on the debt and its history.
func (p Policy) RetryOnTap(last Decision, h History, now time.Time) bool {
	p = p.withDefaults()
	if last.Category == CategoryNotDecline {
		return true
	}
	if last.Category != CategoryRetryLater || last.Action == ActionWriteOff || now.Before(last.NotBefore) {
		return false
	}
	_, ok := p.next(last.FirstDeclinedAt, h.Resubmissions, now)
	return ok
}
