package oda

import (
	"errors"
	"fmt"
)

// Summary is the outcome of one verification in the form `faregate oda
// verify` prints: moduli and the ICC dynamic number in upper-case hex, set
// for every stage that succeeded, also when a later one failed; stage and
// reason empty when OK.
type Summary struct {
	Method           string `json:"method"`
	OK               bool   `json:"ok"`
	Stage            string `json:"stage"`
	Reason           string `json:"reason"`
	IssuerPKModulus  string `json:"issuer_pk_modulus"`
	ICCPKModulus     string `json:"icc_pk_modulus"`
	ICCDynamicNumber string `json:"icc_dynamic_number"`
}

// Summarize turns what Verify returned into a Summary. An error that is not
// an *Error is reported as stage input, reason malformed.
func Summarize(res *Result, err error) Summary {
	var s Summary
	if res != nil {
		s.Method = string(res.Method)
		s.IssuerPKModulus = fmt.Sprintf("%X", res.IssuerPKModulus)
		s.ICCPKModulus = fmt.Sprintf("%X", res.ICCPKModulus)
		s.ICCDynamicNumber = fmt.Sprintf("%X", res.ICCDynamicNumber)
	}
	if err == nil {
		s.OK = true
		return s
	}
	var e *Error
	if errors.As(err, &e) {
		s.Stage, s.Reason = string(e.Stage), string(e.Reason)
	} else {
		s.Stage, s.Reason = string(StageInput), string(ReasonMalformed)
	}
	return s
}
