package acquirer

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/moov-io/iso8583"
	isoerrors "github.com/moov-io/iso8583/errors"
)

// UnpackError reports bytes from the network that are not a message of Spec.
// In the manner of moov-io/iso8583's utils.SafeError its message is safe to
// log: it names the field that failed and nothing else, because the bytes
// (and the library's own error text, and its UnpackError.RawMessage) may
// hold a PAN or track data. Unsafe returns the library's error for a
// debugger on a test system; nothing in faregate calls it.
type UnpackError struct {
	Field string // the data element that failed ("0" MTI, "1" bitmap, "35" …)
	err   error
}

func (e *UnpackError) Error() string {
	if e.Field == "" {
		return ErrUnpack.Error()
	}
	return ErrUnpack.Error() + ": field " + e.Field
}

// Unwrap matches ErrUnpack only: the library's error is not reachable
// through errors.Unwrap, so no %+v or error chain walker can print it.
func (e *UnpackError) Unwrap() error { return ErrUnpack }

// Unsafe returns the underlying library error, which may contain card data.
func (e *UnpackError) Unsafe() error { return e.err }

// Unpack parses one message of Spec (without its length header). Errors are
// *UnpackError.
func Unpack(b []byte) (*iso8583.Message, error) {
	m := iso8583.NewMessage(Spec)
	if err := m.Unpack(b); err != nil {
		ue := &UnpackError{err: err}
		var le *isoerrors.UnpackError
		if errors.As(err, &le) {
			ue.Field = le.FieldID
		}
		return nil, ue
	}
	return m, nil
}

// messageReader is the connection's reader of messages: the bounded length
// header, then Unpack, so the client's receive path is exactly what the fuzz
// test exercises and its errors are redacted. A body that does not unpack is
// returned as the library's UnpackError (without the raw bytes) so the
// connection skips it and keeps its framing; a bad header drops the
// connection.
type messageReader struct{}

func (messageReader) ReadMessage(r io.Reader) (*iso8583.Message, error) {
	n, err := ReadLength(r)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	m, err := Unpack(b)
	if err != nil {
		ue := err.(*UnpackError)
		return nil, &isoerrors.UnpackError{Err: errors.New(ue.Error()), FieldID: ue.Field}
	}
	return m, nil
}

// messageWriter writes the length header and the message in one write
// (the library's default writes them in two system calls).
type messageWriter struct{}

func (messageWriter) WriteMessage(w io.Writer, m *iso8583.Message) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return ErrFrame
	}
	frame := make([]byte, 2+len(b))
	frame[0], frame[1] = byte(len(b)>>8), byte(len(b))
	copy(frame[2:], b)
	_, err = w.Write(frame)
	return err
}

// MaskPAN masks a PAN for display: the first six and last four digits at
// most (PCI DSS), and fewer for short numbers so that at least half the
// digits stay hidden.
func MaskPAN(pan string) string {
	n := len(pan)
	switch {
	case n >= 13:
		return pan[:6] + strings.Repeat("*", n-10) + pan[n-4:]
	case n >= 8:
		return strings.Repeat("*", n-4) + pan[n-4:]
	default:
		return strings.Repeat("*", n)
	}
}

// PAN is a primary account number that masks itself wherever it could be
// printed: String, GoString, LogValue, MarshalText. Digits is the one way to
// the clear number.
type PAN struct{ digits string }

// NewPAN wraps the clear digits.
func NewPAN(digits string) PAN { return PAN{digits} }

// Digits returns the clear PAN, for the one place that needs it (field 2).
func (p PAN) Digits() string { return p.digits }

func (p PAN) String() string   { return MaskPAN(p.digits) }
func (p PAN) GoString() string { return p.String() }

// LogValue makes log/slog print the masked form.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalText encodes the masked form.
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// SafeError is an error whose message is safe to log while the error it
// wraps may quote card data (moov-io/iso8583 utils.SafeError's pattern,
// without exposing the inner error through Unwrap).
type SafeError struct {
	Msg string
	err error
}

func (e *SafeError) Error() string { return e.Msg }

// Unsafe returns the wrapped error, which may contain card data.
func (e *SafeError) Unsafe() error { return e.err }
