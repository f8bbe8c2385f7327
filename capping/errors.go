package capping

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers can match with errors.Is. Parse errors come wrapped in a
// *RulesError or *TapsError that names the line and the field.
var (
	// ErrRules: the rules document is unusable.
	ErrRules = errors.New("capping: invalid rules")
	// ErrTaps: the taps file is unusable.
	ErrTaps = errors.New("capping: invalid taps")
	// ErrCurrency: the currency code is not a known ISO 4217 code.
	ErrCurrency = errors.New("capping: unknown currency")
	// ErrAmount: an amount is not a non-negative decimal in the currency's units.
	ErrAmount = errors.New("capping: invalid amount")
	// ErrDate: a date is not YYYY-MM-DD.
	ErrDate = errors.New("capping: invalid date")
	// ErrNoFare: a tap carries no fare and no fare rule matches its mode and category.
	ErrNoFare = errors.New("capping: no fare for tap")
	// ErrMixedTokens: Engine.Rate was given taps of more than one token.
	ErrMixedTokens = errors.New("capping: taps of several tokens")
)

// RulesError reports a problem in a rules document: the line (1-based, 0
// when unknown), the JSON path of the offending element and the problem.
type RulesError struct {
	Line int
	Path string
	Err  error
}

func (e *RulesError) Error() string {
	s := "capping: rules"
	if e.Line > 0 {
		s += fmt.Sprintf(" line %d", e.Line)
	}
	if e.Path != "" {
		s += ": " + e.Path
	}
	return s + ": " + problem(e.Err)
}

func (e *RulesError) Unwrap() error { return e.Err }

// Is makes every RulesError match ErrRules.
func (e *RulesError) Is(target error) bool { return target == ErrRules }

// TapsError reports a problem in a taps file: the line (1-based, counting the
// header as line 1), the column and the problem.
type TapsError struct {
	Line   int
	Column string
	Err    error
}

func (e *TapsError) Error() string {
	s := "capping: taps"
	if e.Line > 0 {
		s += fmt.Sprintf(" line %d", e.Line)
	}
	if e.Column != "" {
		s += ": " + e.Column
	}
	return s + ": " + problem(e.Err)
}

func (e *TapsError) Unwrap() error { return e.Err }

// Is makes every TapsError match ErrTaps.
func (e *TapsError) Is(target error) bool { return target == ErrTaps }

// problem drops the package prefix of a wrapped sentinel so that a message
// reads "capping: rules line 4: fares[0].price: invalid amount: …" once.
func problem(err error) string {
	return strings.ReplaceAll(err.Error(), "capping: ", "")
}
