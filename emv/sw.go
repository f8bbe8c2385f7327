package emv

import (
	"errors"
	"fmt"
)

// Status words a card may answer with, as sentinels matched with errors.Is
// against the *StatusError a command returns.
var (
	ErrWarningFileInvalidated  = errors.New("emv: selected file invalidated (6283)")
	ErrWrongLength             = errors.New("emv: wrong length (6700)")
	ErrSecurityNotSatisfied    = errors.New("emv: security status not satisfied (6982)")
	ErrAuthMethodBlocked       = errors.New("emv: authentication method blocked (6983)")
	ErrReferencedDataInvalid   = errors.New("emv: referenced data invalidated (6984)")
	ErrConditionsNotSatisfied  = errors.New("emv: conditions of use not satisfied (6985)")
	ErrFunctionNotSupported    = errors.New("emv: function not supported (6A81)")
	ErrNotFound                = errors.New("emv: file or application not found (6A82)")
	ErrRecordNotFound          = errors.New("emv: record not found (6A83)")
	ErrIncorrectP1P2           = errors.New("emv: incorrect parameters P1-P2 (6A86)")
	ErrReferencedDataNotFound  = errors.New("emv: referenced data not found (6A88)")
	ErrInstructionNotSupported = errors.New("emv: instruction not supported (6D00)")
	ErrClassNotSupported       = errors.New("emv: class not supported (6E00)")
	ErrNoPreciseDiagnosis      = errors.New("emv: no precise diagnosis (6F00)")
)

var statusSentinels = map[uint16]error{
	0x6283: ErrWarningFileInvalidated,
	0x6700: ErrWrongLength,
	0x6982: ErrSecurityNotSatisfied,
	0x6983: ErrAuthMethodBlocked,
	0x6984: ErrReferencedDataInvalid,
	0x6985: ErrConditionsNotSatisfied,
	0x6A81: ErrFunctionNotSupported,
	0x6A82: ErrNotFound,
	0x6A83: ErrRecordNotFound,
	0x6A86: ErrIncorrectP1P2,
	0x6A88: ErrReferencedDataNotFound,
	0x6D00: ErrInstructionNotSupported,
	0x6E00: ErrClassNotSupported,
	0x6F00: ErrNoPreciseDiagnosis,
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
	return fmt.Sprintf("emv: card status %04X", e.SW)
}

// Unwrap maps known status words to their sentinels.
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
