package validator

import (
	"errors"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/emv"
)

// Verdict is what the gate does.
type Verdict string

const (
	Open   Verdict = "open"
	Reject Verdict = "reject"
	// Retry: the tap was torn (card pulled away, reader failure). Nothing
	// is opened and nothing recorded; the rider taps again.
	Retry Verdict = "retry"
)

// Reason says why. Kernel reasons (emv.Reason) pass through unchanged.
type Reason string

const (
	ReasonOK             Reason = "ok"
	ReasonODAFailed      Reason = "oda_failed"      // the card failed offline data authentication
	ReasonODAUnavailable Reason = "oda_unavailable" // the card offers no ODA method the gate accepts
	ReasonCardExpired    Reason = "card_expired"    // application expiry before the transaction date
	ReasonDenied         Reason = "denied"          // the card's token is on the deny list
	ReasonDenyListStale  Reason = "denylist_stale"  // StaleReject, and no fresh signed head vouches for the deny list
)

// StalePolicy is what a gate does while its deny list is stale: no fresh
// signed head statement vouches for it (dlsync.Client.Stale; the back
// office is unreachable, or someone in between is freezing the gate).
type StalePolicy uint8

const (
	// StaleKeepDeciding, the default, goes on deciding on the last list:
	// riders keep travelling through a back-office outage, and the
	// faregate_denylist_stale metric raises the alert.
	StaleKeepDeciding StalePolicy = iota
	// StaleReject refuses every tap while the list is stale, for agencies
	// that would rather close than admit cards the gate may not know are
	// denied.
	StaleReject
)

// Decision is the gate's answer to one tap.
type Decision struct {
	Verdict Verdict `json:"decision"`
	Reason  Reason  `json:"reason"`
}

// DenyList answers whether a rider token is deny-listed. A
// *denylist.Replica is one.
type DenyList interface {
	Contains(denylist.Token) bool
}

// Rules are the gate's acceptance rules. The zero value requires ODA and
// checks no deny list.
type Rules struct {
	// AllowWithoutODA opens for cards offering no ODA method. Off by
	// default: a transit gate that cannot authenticate a card offline has
	// no protection against cloned cards.
	AllowWithoutODA bool
	// DenyList, when set, rejects deny-listed tokens; TokenKey is the
	// agency key the tokens are computed with.
	DenyList DenyList
	TokenKey []byte
	// DenyListStale, when set, reports whether the deny list is stale
	// (dlsync.Client.Stale); StalePolicy says what the gate does then.
	DenyListStale func() bool
	StalePolicy   StalePolicy
}

// Decide turns the outcome of a kernel tap into a decision. err is the
// error Kernel.Tap returned with t.
func (r Rules) Decide(t *emv.Tap, err error) Decision {
	if err != nil {
		var te *emv.TapError
		if errors.As(err, &te) {
			if te.Torn() {
				return Decision{Verdict: Retry, Reason: Reason(te.Reason)}
			}
			return Decision{Verdict: Reject, Reason: Reason(te.Reason)}
		}
		return Decision{Verdict: Retry, Reason: Reason(emv.ReasonCommunication)}
	}
	switch {
	case !t.ODA.Performed && !r.AllowWithoutODA:
		return Decision{Verdict: Reject, Reason: ReasonODAUnavailable}
	case t.ODA.Performed && !t.ODA.OK:
		return Decision{Verdict: Reject, Reason: ReasonODAFailed}
	case t.Expired():
		return Decision{Verdict: Reject, Reason: ReasonCardExpired}
	case r.StalePolicy == StaleReject && r.DenyListStale != nil && r.DenyListStale():
		return Decision{Verdict: Reject, Reason: ReasonDenyListStale}
	case r.DenyList != nil && r.DenyList.Contains(denylist.Token(t.Card.Token(r.TokenKey))):
		return Decision{Verdict: Reject, Reason: ReasonDenied}
	}
	return Decision{Verdict: Open, Reason: ReasonOK}
}
