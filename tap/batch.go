package tap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Batch is the body of POST /v1/taps: some of one gate's journaled taps in
// sequence order, and what the gate reports about itself.
type Batch struct {
	Gate string   `json:"gate"`
	Taps []Record `json:"taps"`
	// Backlog is how many taps the gate holds unacknowledged, this batch
	// included; OldestUnsent the time of the oldest of them.
	Backlog      int64      `json:"backlog"`
	OldestUnsent *time.Time `json:"oldest_unsent,omitempty"`
	// DenylistVersion is the deny-list version the gate runs.
	DenylistVersion uint64 `json:"denylist_version"`
}

// Ack is the back office's answer to an accepted batch: Stored names every
// tap of the batch now safely stored (the new ones and those it already
// had); Duplicates counts the latter. A gate marks a tap uploaded only when
// an Ack names it.
type Ack struct {
	Stored     []uuid.UUID `json:"stored"`
	Duplicates int         `json:"duplicates"`
}

// Refusal is the body of every 4xx/5xx answer to POST /v1/taps.
type Refusal struct {
	Error string      `json:"error"`
	Items []ItemError `json:"items,omitempty"` // 400: what is wrong with which tap
}

// ItemError says what is wrong with one tap of a batch.
type ItemError struct {
	Index int    `json:"index"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// Limits of the upload contract (docs/api.md).
const (
	MaxBatchTaps  = 1000    // taps in one batch
	MaxBatchBytes = 4 << 20 // bytes of one request body
	MaxField      = 64      // bytes of a gate id, location field, scheme, reason, …
	MaxZones      = 16
	MaxQR         = 1024
)

var (
	// ErrBatch: the body is not a batch (JSON, size or shape).
	ErrBatch = errors.New("tap: malformed batch")
	// ErrRecord: a tap record breaks the contract.
	ErrRecord = errors.New("tap: invalid record")
	// ErrTooLarge: the body is over MaxBatchBytes or holds more than
	// MaxBatchTaps taps (HTTP 413: the gate halves its batch). It comes
	// wrapped with ErrBatch.
	ErrTooLarge = errors.New("tap: batch too large")
)

// BatchError lists the invalid taps of a batch that is refused whole.
type BatchError struct {
	Items []ItemError
}

func (e *BatchError) Error() string {
	if len(e.Items) == 1 {
		return fmt.Sprintf("tap: invalid record at index %d: %s", e.Items[0].Index, e.Items[0].Error)
	}
	return fmt.Sprintf("tap: %d invalid records (first at index %d: %s)", len(e.Items), e.Items[0].Index, e.Items[0].Error)
}

func (e *BatchError) Unwrap() error { return ErrRecord }

// DecodeBatch decodes and checks a request body that came from gate (the
// authenticated gate id). It never panics on hostile bytes. A batch with
// any invalid tap is refused whole with a *BatchError naming every one.
func DecodeBatch(body []byte, gate string) (*Batch, error) {
	if len(body) > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %w: body over %d bytes", ErrBatch, ErrTooLarge, MaxBatchBytes)
	}
	var b Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBatch, jsonProblem(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the batch object", ErrBatch)
	}
	if b.Gate != gate {
		return nil, fmt.Errorf("%w: batch gate %q is not the signing gate", ErrBatch, clip(b.Gate))
	}
	if len(b.Taps) > MaxBatchTaps {
		return nil, fmt.Errorf("%w: %w: more than %d taps", ErrBatch, ErrTooLarge, MaxBatchTaps)
	}
	if len(b.Taps) == 0 {
		return nil, fmt.Errorf("%w: a batch holds at least one tap", ErrBatch)
	}
	if b.Backlog < 0 {
		return nil, fmt.Errorf("%w: negative backlog", ErrBatch)
	}
	var items []ItemError
	seen := make(map[uuid.UUID]struct{}, len(b.Taps))
	for i := range b.Taps {
		r := &b.Taps[i]
		err := r.Validate()
		if err == nil && r.Gate != gate {
			err = fmt.Errorf("%w: gate %q is not the batch's gate", ErrRecord, clip(r.Gate))
		}
		if _, dup := seen[r.ID]; err == nil && dup {
			err = fmt.Errorf("%w: tap id twice in one batch", ErrRecord)
		}
		seen[r.ID] = struct{}{}
		if err != nil {
			items = append(items, ItemError{Index: i, ID: r.ID.String(), Error: err.Error()})
		}
	}
	if len(items) > 0 {
		return nil, &BatchError{Items: items}
	}
	return &b, nil
}

// jsonProblem describes a JSON error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("wrong type for %q at byte %d", clip(te.Field), te.Offset)
	default:
		return "invalid JSON"
	}
}

// Validate checks a record against the contract: identifiers, bounded
// printable strings, known enums, times, and card data only where it
// belongs.
func (r *Record) Validate() error {
	if err := r.validateIdentity(); err != nil {
		return err
	}
	if err := r.validateStrings(); err != nil {
		return err
	}
	return r.validateOutcome()
}

func (r *Record) validateIdentity() error {
	switch {
	case r.ID.Version() != 7 || r.ID.Variant() != uuid.RFC4122:
		return fmt.Errorf("%w: id is not a UUIDv7", ErrRecord)
	case r.Seq == 0:
		return fmt.Errorf("%w: seq must start at 1", ErrRecord)
	case r.Time.IsZero() || r.Time.Year() < 2000 || r.Time.Year() > 9999:
		return fmt.Errorf("%w: time missing or out of range", ErrRecord)
	}
	if r.LocalTime != "" {
		lt, err := time.Parse(time.RFC3339Nano, r.LocalTime)
		if err != nil || !lt.Equal(r.Time) {
			return fmt.Errorf("%w: local_time is not the same instant as time", ErrRecord)
		}
	}
	return nil
}

func (r *Record) validateStrings() error {
	fields := [...]struct{ name, v string }{
		{"gate", r.Gate}, {"masked_pan", r.MaskedPAN}, {"scheme", r.Scheme},
		{"category", r.Category}, {"reason", r.Reason}, {"local_time", r.LocalTime},
		{"oda.method", r.ODA.Method}, {"oda.stage", r.ODA.Stage}, {"oda.reason", r.ODA.Reason},
		{"location.operator", r.Location.Operator}, {"location.line", r.Location.Line},
		{"location.stop", r.Location.Stop}, {"location.direction", r.Location.Direction},
		{"location.mode", r.Location.Mode}, {"location.group", r.Location.Group},
	}
	for _, f := range fields {
		if err := checkField(f.name, f.v); err != nil {
			return err
		}
	}
	if r.Gate == "" {
		return fmt.Errorf("%w: gate missing", ErrRecord)
	}
	if len(r.Location.Zones) > MaxZones {
		return fmt.Errorf("%w: more than %d zones", ErrRecord, MaxZones)
	}
	for _, z := range r.Location.Zones {
		if err := checkField("location.zones", z); err != nil {
			return err
		}
	}
	if err := checkMasked(r.MaskedPAN); err != nil {
		return err
	}
	return nil
}

func (r *Record) validateOutcome() error {
	switch r.Location.Role {
	case "", RoleEntry, RoleExit:
	default:
		return fmt.Errorf("%w: location.role must be \"on\", \"off\" or empty", ErrRecord)
	}
	switch r.Decision {
	case Open, Reject:
	default:
		return fmt.Errorf("%w: decision must be \"open\" or \"reject\"", ErrRecord)
	}
	if r.Reason == "" {
		return fmt.Errorf("%w: reason missing", ErrRecord)
	}
	switch r.Kind {
	case KindEMV:
		if len(r.QR) > 0 {
			return fmt.Errorf("%w: qr payload on an emv tap", ErrRecord)
		}
	case KindQR:
		if len(r.QR) == 0 || len(r.QR) > MaxQR {
			return fmt.Errorf("%w: qr payload missing or over %d bytes", ErrRecord, MaxQR)
		}
	default:
		return fmt.Errorf("%w: kind must be \"emv\" or \"qr\"", ErrRecord)
	}
	if len(r.Sealed) > MaxSealed {
		return fmt.Errorf("%w: sealed card data over %d bytes", ErrRecord, MaxSealed)
	}
	if r.Decision == Open && r.Token.IsZero() {
		return fmt.Errorf("%w: an opened tap needs a token", ErrRecord)
	}
	if r.KernelMicros < 0 || r.DecideMicros < 0 {
		return fmt.Errorf("%w: negative timing", ErrRecord)
	}
	return nil
}

func checkField(name, v string) error {
	if len(v) > MaxField {
		return fmt.Errorf("%w: %s over %d bytes", ErrRecord, name, MaxField)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not UTF-8", ErrRecord, name)
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return fmt.Errorf("%w: %s holds a control character", ErrRecord, name)
		}
	}
	return nil
}

// checkMasked refuses anything in masked_pan that could be a clear PAN:
// more than 10 digits shown.
func checkMasked(m string) error {
	digits := 0
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '*' || c == 'X' || c == 'x' || c == '.' || c == ' ':
		default:
			return fmt.Errorf("%w: masked_pan holds %q", ErrRecord, rune(c))
		}
	}
	if digits > 10 {
		return fmt.Errorf("%w: masked_pan shows more than 10 digits", ErrRecord)
	}
	return nil
}

func clip(s string) string {
	if len(s) > MaxField {
		s = s[:MaxField] + "…"
	}
	return s
}
