package qr

import (
	"errors"
	"fmt"
)

// Reason is a short, stable identifier of why a code was refused. It is
// what `faregate qr verify` prints as "reason" and what a gate journals.
type Reason string

// The refusal reasons. Every error the verifiers return for a refused code
// is an *Error carrying one of them.
const (
	ReasonMalformed          Reason = "malformed"            // not a well-formed payload (length, prefix, Base45, fields)
	ReasonUnsupportedVersion Reason = "unsupported_version"  // a payload version this verifier does not know
	ReasonUnknownKeyID       Reason = "unknown_key_id"       // no issuer key with the credential's key id
	ReasonBadIssuerSignature Reason = "bad_issuer_signature" // the back office did not sign this credential
	ReasonBadDeviceSignature Reason = "bad_device_signature" // the credential's device key did not sign this code
	ReasonNotYetValid        Reason = "not_yet_valid"        // the code's time is before the credential's validity
	ReasonExpired            Reason = "expired"              // the code's time is after the credential's validity
	ReasonClockSkew          Reason = "clock_skew"           // the code's time is outside the window around the verifier's clock
	ReasonChallenge          Reason = "challenge_mismatch"   // the gate asked for a challenge the code does not carry
	ReasonReplay             Reason = "replay"               // this device's counter was used before (at this gate, or anywhere for the back office)
	ReasonRevoked            Reason = "revoked"              // the token is deny-listed, or the device key was revoked at tap time
	ReasonNotIssued          Reason = "not_issued"           // back office: it never issued this device key to this token
)

// Sentinel errors, one per reason, for errors.Is.
var (
	ErrMalformed          = errors.New("qr: malformed payload")
	ErrUnsupportedVersion = errors.New("qr: unsupported payload version")
	ErrUnknownKeyID       = errors.New("qr: unknown issuer key id")
	// ErrBadIssuerSignature deliberately says nothing more than that.
	ErrBadIssuerSignature = errors.New("qr: bad issuer signature")
	// ErrBadDeviceSignature deliberately says nothing more than that.
	ErrBadDeviceSignature = errors.New("qr: bad device signature")
	ErrNotYetValid        = errors.New("qr: credential not yet valid")
	ErrExpired            = errors.New("qr: credential expired")
	ErrClockSkew          = errors.New("qr: code time outside the window")
	ErrChallenge          = errors.New("qr: challenge mismatch")
	ErrReplay             = errors.New("qr: counter already used")
	ErrRevoked            = errors.New("qr: revoked")
	ErrNotIssued          = errors.New("qr: device key not issued to this token")
)

var sentinels = map[Reason]error{
	ReasonMalformed:          ErrMalformed,
	ReasonUnsupportedVersion: ErrUnsupportedVersion,
	ReasonUnknownKeyID:       ErrUnknownKeyID,
	ReasonBadIssuerSignature: ErrBadIssuerSignature,
	ReasonBadDeviceSignature: ErrBadDeviceSignature,
	ReasonNotYetValid:        ErrNotYetValid,
	ReasonExpired:            ErrExpired,
	ReasonClockSkew:          ErrClockSkew,
	ReasonChallenge:          ErrChallenge,
	ReasonReplay:             ErrReplay,
	ReasonRevoked:            ErrRevoked,
	ReasonNotIssued:          ErrNotIssued,
}

// Error is a refused code: the reason, and a detail that never quotes the
// payload. It unwraps to the reason's sentinel.
type Error struct {
	Reason Reason
	Detail string // e.g. "payload is 12 bytes, want 197 to 213"; may be empty
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Unwrap().Error()
	}
	return fmt.Sprintf("%v: %s", e.Unwrap(), e.Detail)
}

// Unwrap returns the sentinel of e.Reason.
func (e *Error) Unwrap() error {
	if s, ok := sentinels[e.Reason]; ok {
		return s
	}
	return ErrMalformed
}

func refuse(r Reason, format string, args ...any) *Error {
	if format == "" {
		return &Error{Reason: r}
	}
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason of a refusal, or "" when err is nil or not
// a refusal (an I/O error of a store, say).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
