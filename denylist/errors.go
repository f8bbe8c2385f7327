package denylist

import (
	"errors"
	"fmt"
)

// Errors a caller can match with errors.Is. Every refusal of a snapshot or a
// delta wraps exactly one of them; the list in force never changes when one
// is returned.
var (
	// ErrMalformed: the bytes are not a well-formed deny-list file (bad magic,
	// unknown format version or kind, counts that disagree with the length,
	// fingerprints out of order, trailing bytes …). A *FormatError says where.
	ErrMalformed = errors.New("denylist: malformed file")
	// ErrTruncated: the file ends before the length its header announces.
	ErrTruncated = errors.New("denylist: truncated file")
	// ErrSignature: the Ed25519 signature does not verify with the configured
	// public key. Deliberately says nothing more.
	ErrSignature = errors.New("denylist: bad signature")
	// ErrListID: the file belongs to another list than the one configured.
	ErrListID = errors.New("denylist: wrong list id")
	// ErrGap: a delta does not start at the version in force; the deltas in
	// between (or a snapshot) are needed first.
	ErrGap = errors.New("denylist: version gap")
	// ErrReplay: the file carries a version older than (or equal to) the one
	// in force.
	ErrReplay = errors.New("denylist: replay of an older version")
	// ErrInconsistent: a correctly signed delta does not fit the list in
	// force (it adds an entry already present, removes one that is absent, or
	// the result differs from the back office's snapshot of that version).
	// The local list has diverged; fetch a full snapshot.
	ErrInconsistent = errors.New("denylist: delta does not match the list in force")
	// ErrTooLarge: a file announces more entries than the gate accepts
	// (ReplicaConfig.MaxEntries); it is refused before its body is read.
	ErrTooLarge = errors.New("denylist: list larger than this gate accepts")
	// ErrTrustFile: the replica's TrustFile cannot be read or parsed; the
	// gate cannot tell which announced keys it trusts.
	ErrTrustFile = errors.New("denylist: trust file damaged")
	// ErrKind: a snapshot was given where a delta is needed, or the reverse.
	ErrKind = errors.New("denylist: wrong kind of file")
	// ErrInvalidToken: text that is not 32 hexadecimal digits.
	ErrInvalidToken = errors.New("denylist: invalid token")
	// ErrInvalidListID: a list id outside [a-z0-9._-]{1,16}.
	ErrInvalidListID = errors.New("denylist: invalid list id")
	// ErrKey: a key file that is not an Ed25519 key in the documented PEM form.
	ErrKey = errors.New("denylist: invalid key")
)

// FormatError says where and why a file is malformed or truncated. It never
// quotes the file's content.
type FormatError struct {
	Offset int64  // byte offset of the offending field
	Reason string // short, stable description: "bad magic", "fingerprints not strictly increasing" …
	err    error  // ErrMalformed or ErrTruncated
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", e.err, e.Offset, e.Reason)
}

// Unwrap returns ErrMalformed or ErrTruncated.
func (e *FormatError) Unwrap() error { return e.err }

func malformed(off int64, reason string) error {
	return &FormatError{Offset: off, Reason: reason, err: ErrMalformed}
}

func truncated(off int64, reason string) error {
	return &FormatError{Offset: off, Reason: reason, err: ErrTruncated}
}

// VersionError reports a file whose versions do not continue the list in
// force. It unwraps to ErrGap or ErrReplay.
type VersionError struct {
	Have     uint64 // version in force (0: none)
	From, To uint64 // versions of the refused file (From is 0 for a snapshot)
	err      error
}

func (e *VersionError) Error() string {
	if e.From == 0 {
		return fmt.Sprintf("%v: list is at version %d, snapshot is version %d", e.err, e.Have, e.To)
	}
	return fmt.Sprintf("%v: list is at version %d, delta is %d→%d", e.err, e.Have, e.From, e.To)
}

// Unwrap returns ErrGap or ErrReplay.
func (e *VersionError) Unwrap() error { return e.err }
