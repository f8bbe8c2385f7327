package denylist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Head statement format (docs/denylist.md, "The signed head"). All integers
// are big-endian.
//
//	offset size field
//	0      4    magic "FGDH"
//	4      1    format version (1)
//	5      3    reserved, zero
//	8      16   list id, ASCII, NUL-padded
//	24     8    version of the current list
//	32     8    issued: Unix milliseconds
//	40     8    expires: Unix milliseconds, > issued
//	48     32   content hash: SHA-256 of the snapshot encoding of that version, signature excluded
//	80     64   Ed25519ph signature over bytes 0–79
//
// Format version 2 (a key rotation is announced) inserts the next signing
// key before the signature:
//
//	80     32   next public key (Ed25519), announced by the key that signs
//	112    64   Ed25519ph signature over bytes 0–111
//
// A version 1 statement announces no key. The back office writes version 2
// only while it announces a next key, so a gate that predates rotation
// accepts every statement it accepted before.
//
// The back office re-signs it at a short interval, in the manner of The
// Update Framework's timestamp role; a gate takes "no change" only under a
// fresh statement whose hash matches its own list.
const (
	HeadMagic = "FGDH"
	HeadSize  = 80 + SignatureSize
	// HeadSizeNextKey is the size of a statement announcing a next key
	// (format version 2).
	HeadSizeNextKey    = 80 + ed25519.PublicKeySize + SignatureSize
	headVersionNextKey = 2
	// HeadMediaType is the Content-Type of a head statement served over HTTP.
	HeadMediaType = "application/vnd.faregate.denylist-head"
)

// Head is a signed statement of a list's current version, valid from
// Issued until Expires.
type Head struct {
	ListID      ListID
	Version     uint64
	Issued      time.Time // millisecond precision
	Expires     time.Time // millisecond precision
	ContentHash [32]byte  // List.ContentHash of Version
	// NextKey, when set, is the signing key the back office will switch to:
	// a gate that verified this statement with a key it trusts trusts NextKey
	// too, from then on (see Replica.ParseHead).
	NextKey ed25519.PublicKey
}

// Expired reports whether the statement no longer vouches for anything at now.
func (h *Head) Expired(now time.Time) bool { return !now.Before(h.Expires) }

// HeadOf returns the head statement of list l, issued at issued and valid
// for ttl.
func HeadOf(l *List, issued time.Time, ttl time.Duration) Head {
	return Head{
		ListID: l.id, Version: l.version, ContentHash: l.ContentHash(),
		Issued: issued, Expires: issued.Add(ttl),
	}
}

// SignHead encodes and signs a head statement.
func SignHead(key ed25519.PrivateKey, h Head) ([]byte, error) {
	if err := h.ListID.Valid(); err != nil {
		return nil, err
	}
	issued, expires := h.Issued.UnixMilli(), h.Expires.UnixMilli()
	if issued < 0 || expires <= issued {
		return nil, errors.New("denylist: head must expire after it is issued, both after 1970")
	}
	if h.NextKey != nil && len(h.NextKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: next public key of %d bytes", ErrKey, len(h.NextKey))
	}
	b := make([]byte, 80, HeadSizeNextKey)
	copy(b, HeadMagic)
	b[4] = FormatVersion
	if h.NextKey != nil {
		b[4] = headVersionNextKey
	}
	copy(b[8:24], h.ListID)
	binary.BigEndian.PutUint64(b[24:], h.Version)
	binary.BigEndian.PutUint64(b[32:], uint64(issued))
	binary.BigEndian.PutUint64(b[40:], uint64(expires))
	copy(b[48:80], h.ContentHash[:])
	if h.NextKey != nil {
		b = append(b, h.NextKey...)
	}
	sha := sha512.New()
	sha.Write(b)
	sig, err := sign(key, sha)
	if err != nil {
		return nil, err
	}
	return append(b, sig...), nil
}

// ParseHead checks the structure of a head statement and verifies its
// signature with pub. It refuses with ErrMalformed, ErrTruncated or
// ErrSignature; whether it is fresh, for the right list and newer than the
// last one seen is the caller's decision.
func ParseHead(b []byte, pub ed25519.PublicKey) (Head, error) {
	var h Head
	if len(b) < HeadSize {
		return h, truncated(int64(len(b)), "head statement too short")
	}
	if string(b[:4]) != HeadMagic {
		return h, malformed(0, "bad magic (not a faregate deny-list head)")
	}
	size := HeadSize
	switch b[4] {
	case FormatVersion:
	case headVersionNextKey:
		size = HeadSizeNextKey
	default:
		return h, malformed(4, fmt.Sprintf("unsupported format version %d", b[4]))
	}
	if len(b) < size {
		return h, truncated(int64(len(b)), "head statement too short")
	}
	if len(b) > size {
		return h, malformed(int64(size), "trailing bytes after the head statement")
	}
	if !allZero(b[5:8]) {
		return h, malformed(5, "reserved bytes not zero")
	}
	id := b[8:24]
	n := bytes.IndexByte(id, 0)
	if n < 0 {
		n = len(id)
	}
	if !allZero(id[n:]) || ListID(id[:n]).Valid() != nil {
		return h, malformed(8, "invalid list id")
	}
	h.ListID = ListID(id[:n])
	h.Version = binary.BigEndian.Uint64(b[24:])
	issued, expires := binary.BigEndian.Uint64(b[32:]), binary.BigEndian.Uint64(b[40:])
	if issued > 1<<62 || expires > 1<<62 || expires <= issued {
		return h, malformed(32, "issued and expiry times out of range")
	}
	h.Issued = time.UnixMilli(int64(issued)).UTC()
	h.Expires = time.UnixMilli(int64(expires)).UTC()
	copy(h.ContentHash[:], b[48:80])
	signed := size - SignatureSize
	if size == HeadSizeNextKey {
		h.NextKey = ed25519.PublicKey(bytes.Clone(b[80:signed]))
	}
	digest := sha512.Sum512(b[:signed])
	if err := verify(pub, digest[:], b[signed:]); err != nil {
		return Head{}, err
	}
	return h, nil
}

// ContentHash returns the SHA-256 of the list's snapshot encoding without
// its signature: header and fingerprints. Two lists with the same hash have
// the same id, version, creation time and entries. It is computed once per
// list (about 50 ms at 10 M entries) and cached.
func (l *List) ContentHash() [32]byte {
	l.hashOnce.Do(func() {
		h := sha256.New()
		l.encodeBody(h) // writing to a hash cannot fail
		copy(l.hash[:], h.Sum(nil))
	})
	return l.hash
}
