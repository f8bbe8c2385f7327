package capping

import (
	"fmt"
	"strconv"
	"strings"
)

// Amount is money in the minor units of a currency (cents, pence; yen for
// JPY). Fare arithmetic never uses floating point.
type Amount int64

// maxAmount bounds every parsed amount (10^13 minor units) so that sums over
// any realistic number of legs cannot overflow int64.
const maxAmount = Amount(10_000_000_000_000)

// Currency is an ISO 4217 code with its number of minor-unit digits.
type Currency struct {
	Code   string
	Digits int
}

// minorDigits holds the ISO 4217 minor units of the currencies the supported
// agencies and their neighbours use. Codes not listed are rejected so that a
// typo never silently prices fares in the wrong unit.
var minorDigits = map[string]int{
	"USD": 2, "GBP": 2, "EUR": 2, "AUD": 2, "CAD": 2, "NZD": 2, "CHF": 2,
	"SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2,
	"SGD": 2, "HKD": 2, "CNY": 2, "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2,
	"ILS": 2, "TWD": 2, "THB": 2, "MYR": 2, "PHP": 2, "AED": 2, "SAR": 2,
	"TRY": 2, "COP": 2, "PEN": 2, "ARS": 2, "EGP": 2, "NGN": 2, "KES": 2,
	"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "PYG": 0, "UGX": 0,
	"IDR": 2, "XOF": 0, "XAF": 0,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

// LookupCurrency returns the currency for an ISO 4217 code (upper case).
func LookupCurrency(code string) (Currency, error) {
	d, ok := minorDigits[code]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q", ErrCurrency, code)
	}
	return Currency{Code: code, Digits: d}, nil
}

// ParseAmount parses a non-negative decimal string in the currency's units
// ("1.75", "2", "0.5" for 2 digits; "200" for JPY) into minor units. It
// rejects signs, exponents, separators and more fraction digits than the
// currency has.
func (c Currency) ParseAmount(s string) (Amount, error) {
	return parseAmountOf(c, s)
}

func (c Currency) parseAmount(s []byte) (Amount, error) {
	return parseAmountOf(c, s)
}

func parseAmountOf[S string | []byte](c Currency, s S) (Amount, error) {
	if len(s) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrAmount)
	}
	if len(s) > 24 {
		return 0, fmt.Errorf("%w: too long", ErrAmount)
	}
	dot := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dot = i
			break
		}
	}
	intPart, frac := s, s[len(s):]
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:]
	}
	if len(intPart) == 0 || (dot >= 0 && len(frac) == 0) {
		return 0, fmt.Errorf("%w: %q", ErrAmount, s)
	}
	if len(frac) > c.Digits {
		return 0, fmt.Errorf("%w: %q has more than %d decimal places for %s", ErrAmount, s, c.Digits, c.Code)
	}
	var v int64
	for _, part := range [2]S{intPart, frac} {
		for i := 0; i < len(part); i++ {
			ch := part[i]
			if ch < '0' || ch > '9' {
				return 0, fmt.Errorf("%w: %q", ErrAmount, s)
			}
			v = v*10 + int64(ch-'0')
			if Amount(v) > maxAmount {
				return 0, fmt.Errorf("%w: %q too large", ErrAmount, s)
			}
		}
	}
	for i := len(frac); i < c.Digits; i++ {
		v *= 10
	}
	if Amount(v) > maxAmount {
		return 0, fmt.Errorf("%w: %q too large", ErrAmount, s)
	}
	return Amount(v), nil
}

// Format prints an amount with the currency's minor-unit digits: "2.90",
// "0.00", "-1.75"; "200" for JPY.
func (c Currency) Format(a Amount) string {
	return formatAmount(a, c.Digits)
}

// AppendFormat appends Format(a) to dst without allocating.
func (c Currency) AppendFormat(dst []byte, a Amount) []byte {
	u := uint64(a)
	if a < 0 {
		dst = append(dst, '-')
		u = uint64(-a)
	}
	var buf [24]byte
	i := len(buf)
	for k := 0; u > 0 || k <= c.Digits; k++ {
		if k == c.Digits && c.Digits > 0 {
			i--
			buf[i] = '.'
		}
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	return append(dst, buf[i:]...)
}

func formatAmount(a Amount, digits int) string {
	neg := a < 0
	u := uint64(a)
	if neg {
		u = uint64(-a)
	}
	s := strconv.FormatUint(u, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
