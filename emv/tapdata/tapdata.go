// Package tapdata is the one model of what a tap reads from an EMV card,
// shared by the kernel (package emv), which gathers it, and offline data
// authentication (package oda), which checks it: records, the ODA methods,
// the Application Interchange Profile (82) and the Application File
// Locator (94).
//
// It is its own package because oda must not import the kernel (the
// verifier also runs on recorded files, with no kernel at all), while the
// kernel hands oda what it gathered: both import this package and neither
// converts the other's copy.
package tapdata

import (
	"errors"
	"fmt"
	"time"
)

// Record is one record READ RECORD returned, as the card sent it, without
// the status word: a template 70 for SFI 1–10, anything for SFI 11–30.
type Record struct {
	SFI    int    `json:"sfi"`
	Number int    `json:"record"`
	Data   []byte `json:"-"`
	// ODA marks records the AFL flags for offline data authentication.
	ODA bool `json:"oda"`
}

// Method is a method of offline data authentication.
type Method string

// Methods. MethodNone: the kernel chose none (the card or the terminal
// supports none). MethodAuto: the verifier chooses from the AIP and the
// data (oda.Verify).
const (
	MethodNone Method = "none"
	MethodAuto Method = "auto"
	MethodSDA  Method = "SDA"
	MethodDDA  Method = "DDA"
	MethodFDDA Method = "fDDA"
	MethodCDA  Method = "CDA"
)

// ParseMethod reads a method a verifier can be asked for, as the CLI writes
// it ("auto", "SDA", "DDA", "fDDA", "CDA"); the empty string is auto.
func ParseMethod(s string) (Method, bool) {
	switch Method(s) {
	case "", MethodAuto:
		return MethodAuto, true
	case MethodSDA, MethodDDA, MethodFDDA, MethodCDA:
		return Method(s), true
	}
	return "", false
}

// UnmarshalText accepts what ParseMethod accepts, and "none".
func (m *Method) UnmarshalText(b []byte) error {
	if Method(b) == MethodNone {
		*m = MethodNone
		return nil
	}
	v, ok := ParseMethod(string(b))
	if !ok {
		return fmt.Errorf("tapdata: ODA method %q: want auto, SDA, DDA, fDDA or CDA", b)
	}
	*m = v
	return nil
}

// AIP is the Application Interchange Profile (82): what the card supports.
type AIP [2]byte

// AIP byte 1 bits (EMV Book 3, C1).
const (
	aipSDA = 0x40
	aipDDA = 0x20
	aipCDA = 0x01
)

// SDA, DDA and CDA report the card's offline data authentication methods.
// fDDA is DDA in the contactless kernels 3 and 7.
func (a AIP) SDA() bool { return a[0]&aipSDA != 0 }
func (a AIP) DDA() bool { return a[0]&aipDDA != 0 }
func (a AIP) CDA() bool { return a[0]&aipCDA != 0 }

// AFLEntry is one 4-byte entry of the Application File Locator: records
// First to Last of file SFI, the first ODA of them flagged for offline data
// authentication.
type AFLEntry struct {
	SFI, First, Last, ODA int
}

// ErrAFL is matched by every error of ParseAFL.
var ErrAFL = errors.New("tapdata: malformed application file locator")

// ParseAFL splits an AFL (94) into its entries and checks each: SFI 1–30
// with the low three bits clear, first record at least 1, last not before
// first, no more ODA records than records. An empty AFL has no entries.
func ParseAFL(b []byte) ([]AFLEntry, error) {
	return AppendAFL(make([]AFLEntry, 0, len(b)/4), b)
}

// AppendAFL is ParseAFL appending to dst: a caller with a small array on
// its stack parses without allocating.
func AppendAFL(dst []AFLEntry, b []byte) ([]AFLEntry, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: length is not a multiple of 4", ErrAFL)
	}
	for i := 0; i < len(b); i += 4 {
		e := AFLEntry{SFI: int(b[i] >> 3), First: int(b[i+1]), Last: int(b[i+2]), ODA: int(b[i+3])}
		if b[i]&0x07 != 0 || e.SFI < 1 || e.SFI > 30 || e.First < 1 || e.Last < e.First || e.ODA > e.Last-e.First+1 {
			return nil, fmt.Errorf("%w: entry %d is invalid", ErrAFL, i/4)
		}
		dst = append(dst, e)
	}
	return dst, nil
}

// Flagged reports whether record number n of the entry is one of those
// flagged for offline data authentication.
func (e AFLEntry) Flagged(n int) bool { return n >= e.First && n < e.First+e.ODA }

// ErrDate is matched by errors of ParseDate.
var ErrDate = errors.New("tapdata: transaction date 9A is not a YYMMDD date")

// ParseDate reads a Transaction Date (9A, n6 YYMMDD; years 00–49 are
// 20xx, 50–99 19xx) as midnight UTC of that day.
func ParseDate(b []byte) (time.Time, error) {
	if len(b) != 3 {
		return time.Time{}, fmt.Errorf("%w: %d bytes, want 3", ErrDate, len(b))
	}
	var v [3]int
	for i, c := range b {
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return time.Time{}, ErrDate
		}
		v[i] = int(hi)*10 + int(lo)
	}
	year := 2000 + v[0]
	if v[0] >= 50 {
		year = 1900 + v[0]
	}
	d := time.Date(year, time.Month(v[1]), v[2], 0, 0, 0, 0, time.UTC)
	if v[1] < 1 || v[1] > 12 || d.Day() != v[2] {
		return time.Time{}, ErrDate
	}
	return d, nil
}
