package emv

import (
	"errors"
	"fmt"
)

// Status words callers act on, matched with errors.Is against the
// *StatusError a command returns: the card has no such application or
// file, or it refuses the command in its present state (a contactless card
// that wants another interface). Any other word is in StatusError.SW.
var (
	ErrNotFound               = errors.New("emv: file or application not found (6A82)")
	ErrConditionsNotSatisfied = errors.New("emv: conditions of use not satisfied (6985)")
)

var statusSentinels = map[uint16]error{
	0x6A82: ErrNotFound,
	0x6985: ErrConditionsNotSatisfied,
}

// statusText names the other status words a card commonly answers, for
// error messages.
var statusText = map[uint16]string{
	0x6283: "selected file invalidated",
	0x6700: "wrong length",
	0x6982: "security status not satisfied",
	0x6983: "authentication method blocked",
	0x6984: "referenced data invalidated",
	0x6A81: "function not supported",
	0x6A83: "record not found",
	0x6A86: "incorrect parameters P1-P2",
	0x6A88: "referenced data not found",
	0x6D00: "instruction not supported",
	0x6E00: "class not supported",
	0x6F00: "no precise diagnosis",
}

// StatusError is a card's answer other than 9000. errors.Is matches it
// against the sentinel of its status word; errors.As exposes the word.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	if s, ok := statusSentinels[e.SW]; ok {
		return s.Error()
	}
	if s, ok := statusText[e.SW]; ok {
		return fmt.Sprintf("emv: %s (%04X)", s, e.SW)
	}
	return fmt.Sprintf("emv: card status %04X", e.SW)
}

// Unwrap maps the status words callers act on to their sentinels.
func (e *StatusError) Unwrap() error { return statusSentinels[e.SW] }

// SW1 and SW2 of the status word.
func (e *StatusError) SW1() byte { return byte(e.SW >> 8) }
func (e *StatusError) SW2() byte { return byte(e.SW) }

// StatusWord returns the status word of err when it is a *StatusError.
func StatusWord(err error) (uint16, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.SW, true
	}
	return 0, false
}
