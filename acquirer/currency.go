package acquirer

import (
	"fmt"

	"github.com/faregate/faregate/capping"
)

// currencyNumeric maps the ISO 4217 alphabetic codes that capping knows to
// the numeric codes field 49 carries.
var currencyNumeric = map[string]string{
	"USD": "840", "GBP": "826", "EUR": "978", "AUD": "036", "CAD": "124", "NZD": "554",
	"CHF": "756", "SEK": "752", "NOK": "578", "DKK": "208", "PLN": "985", "CZK": "203",
	"HUF": "348", "RON": "946", "SGD": "702", "HKD": "344", "CNY": "156", "INR": "356",
	"BRL": "986", "MXN": "484", "ZAR": "710", "ILS": "376", "TWD": "901", "THB": "764",
	"MYR": "458", "PHP": "608", "AED": "784", "SAR": "682", "TRY": "949", "COP": "170",
	"PEN": "604", "ARS": "032", "EGP": "818", "NGN": "566", "KES": "404", "JPY": "392",
	"KRW": "410", "CLP": "152", "ISK": "352", "VND": "704", "PYG": "600", "UGX": "800",
	"IDR": "360", "XOF": "952", "XAF": "950", "BHD": "048", "KWD": "414", "OMR": "512",
	"JOD": "400", "TND": "788", "LYD": "434", "IQD": "368",
}

var currencyAlpha = func() map[string]string {
	m := make(map[string]string, len(currencyNumeric))
	for a, n := range currencyNumeric {
		m[n] = a
	}
	return m
}()

// CurrencyNumeric returns the ISO 4217 numeric code of c for field 49.
func CurrencyNumeric(c capping.Currency) (string, error) {
	n, ok := currencyNumeric[c.Code]
	if !ok {
		return "", fmt.Errorf("%w: no numeric code for currency %q", ErrRequest, c.Code)
	}
	return n, nil
}

// CurrencyFromNumeric returns the currency of a field 49 value.
func CurrencyFromNumeric(n string) (capping.Currency, error) {
	a, ok := currencyAlpha[n]
	if !ok {
		return capping.Currency{}, fmt.Errorf("%w: unknown currency code %q", ErrMessage, n)
	}
	return capping.LookupCurrency(a)
}
