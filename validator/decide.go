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
	case r.DenyList != nil && r.DenyList.Contains(denylist.Token(t.Card.Token(r.TokenKey))):
		return Decision{Verdict: Reject, Reason: ReasonDenied}
	}
	return Decision{Verdict: Open, Reason: ReasonOK}
}
