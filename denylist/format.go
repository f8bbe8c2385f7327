package denylist

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// File format (docs/denylist.md has the full description). All integers are
// big-endian.
//
//	offset size field
//	0      4    magic "FGDL"
//	4      1    format version (1)
//	5      1    kind: 1 snapshot, 2 delta
//	6      2    reserved, zero
//	8      16   list id, ASCII, NUL-padded
//	24     8    from version (0 in a snapshot)
//	32     8    to version (>= 1; > from in a delta)
//	40     8    created: Unix milliseconds of version "to"
//	48     8    count: entries in version "to"
//	56     8    adds (0 in a snapshot)
//	64     8    removes (0 in a snapshot)
//	72          body
//
// Snapshot body: count fingerprints, 8 bytes each, strictly increasing.
// Delta body: adds fingerprints, then removes fingerprints (each strictly
// increasing, the two disjoint), then the 64-byte signature of the snapshot
// of version "to". Every file ends with a 64-byte Ed25519ph signature
// (RFC 8032, SHA-512 prehash, empty context) over all preceding bytes.
const (
	Magic         = "FGDL"
	FormatVersion = 1
	HeaderSize    = 72
	SignatureSize = ed25519.SignatureSize
	// MaxEntries bounds every count in a file (2^28 ≈ 268 M entries, a
	// 2 GiB snapshot); nothing larger is ever allocated or accepted.
	MaxEntries = 1 << 28
)

// MediaType is the Content-Type of deny-list files served over HTTP.
const MediaType = "application/vnd.faregate.denylist"

// Kind is the kind of a deny-list file.
type Kind uint8

// Kinds of file.
const (
	KindSnapshot Kind = 1
	KindDelta    Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindSnapshot:
		return "snapshot"
	case KindDelta:
		return "delta"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header is the fixed-size header of a deny-list file.
type Header struct {
	Kind    Kind
	ListID  ListID
	From    uint64    // version the delta applies to; 0 in a snapshot
	To      uint64    // version of the list the file describes
	Created time.Time // when version To was published (millisecond precision)
	Count   uint64    // entries in version To
	Adds    uint64    // delta only: fingerprints added
	Removes uint64    // delta only: fingerprints removed
}

// Size returns the exact length in bytes of the file the header announces.
func (h *Header) Size() int64 {
	switch h.Kind {
	case KindSnapshot:
		return HeaderSize + 8*int64(h.Count) + SignatureSize
	case KindDelta:
		return HeaderSize + 8*int64(h.Adds+h.Removes) + 2*SignatureSize
	}
	return 0
}

func (h *Header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	b[4] = FormatVersion
	b[5] = byte(h.Kind)
	copy(b[8:24], h.ListID)
	binary.BigEndian.PutUint64(b[24:], h.From)
	binary.BigEndian.PutUint64(b[32:], h.To)
	binary.BigEndian.PutUint64(b[40:], uint64(h.Created.UnixMilli()))
	binary.BigEndian.PutUint64(b[48:], h.Count)
	binary.BigEndian.PutUint64(b[56:], h.Adds)
	binary.BigEndian.PutUint64(b[64:], h.Removes)
	return b
}

// parseHeader checks and decodes the first HeaderSize bytes of a file.
func parseHeader(b []byte) (Header, error) {
	var h Header
	if string(b[:4]) != Magic {
		return h, malformed(0, "bad magic (not a faregate deny-list file)")
	}
	if b[4] != FormatVersion {
		return h, malformed(4, fmt.Sprintf("unsupported format version %d", b[4]))
	}
	h.Kind = Kind(b[5])
	if h.Kind != KindSnapshot && h.Kind != KindDelta {
		return h, malformed(5, fmt.Sprintf("unknown kind %d", b[5]))
	}
	if b[6] != 0 || b[7] != 0 {
		return h, malformed(6, "reserved bytes not zero")
	}
	id := b[8:24]
	n := bytes.IndexByte(id, 0)
	if n < 0 {
		n = len(id)
	}
	if !allZero(id[n:]) {
		return h, malformed(8, "list id not NUL-padded")
	}
	h.ListID = ListID(id[:n])
	if h.ListID.Valid() != nil {
		return h, malformed(8, "invalid list id")
	}
	h.From = binary.BigEndian.Uint64(b[24:])
	h.To = binary.BigEndian.Uint64(b[32:])
	created := binary.BigEndian.Uint64(b[40:])
	h.Count = binary.BigEndian.Uint64(b[48:])
	h.Adds = binary.BigEndian.Uint64(b[56:])
	h.Removes = binary.BigEndian.Uint64(b[64:])
	if created > 1<<62 {
		return h, malformed(40, "created time out of range")
	}
	h.Created = time.UnixMilli(int64(created)).UTC()
	if h.To == 0 {
		return h, malformed(32, "version 0")
	}
	if h.Count > MaxEntries {
		return h, malformed(48, "count too large")
	}
	switch h.Kind {
	case KindSnapshot:
		if h.From != 0 {
			return h, malformed(24, "snapshot with a from version")
		}
		if h.Adds != 0 || h.Removes != 0 {
			return h, malformed(56, "snapshot with delta counts")
		}
	case KindDelta:
		if h.From == 0 || h.From >= h.To {
			return h, malformed(24, "delta versions not increasing")
		}
		if h.Adds > MaxEntries || h.Removes > MaxEntries {
			return h, malformed(56, "delta count too large")
		}
		if h.Adds > h.Count {
			return h, malformed(48, "count smaller than the fingerprints added")
		}
	}
	return h, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sigOpts selects Ed25519ph: the signature is over the SHA-512 digest of
// the file, so files of any size are signed and verified in one streaming
// pass. The empty context keeps it verifiable by libsodium's multi-part API
// and OpenSSL 3.2+; the signed header's kind byte separates snapshots from
// deltas.
var sigOpts = &ed25519.Options{Hash: crypto.SHA512}

func sign(key ed25519.PrivateKey, h hash.Hash) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrKey, len(key))
	}
	return key.Sign(nil, h.Sum(nil), sigOpts)
}

func verify(pub ed25519.PublicKey, digest, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrKey, len(pub))
	}
	if ed25519.VerifyWithOptions(pub, digest, sig, sigOpts) != nil {
		return ErrSignature
	}
	return nil
}

// ReadHeader reads and checks only the header of a file, for tools that
// pick files (a directory source choosing which delta to apply). Nothing in
// it is verified: trust comes from Read.
func ReadHeader(r io.Reader) (Header, error) {
	b := make([]byte, HeaderSize)
	if n, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, truncated(int64(n), "file ends inside the header")
		}
		return Header{}, fmt.Errorf("denylist: read: %w", err)
	}
	return parseHeader(b)
}

// Info describes a file whose structure has been checked but whose
// signature has not (see Inspect).
type Info struct {
	Header
	Size      int64  // bytes in the file
	Signature []byte // the file's own signature
	digest    []byte // SHA-512 of everything before the signature
}

// Verify checks the file's signature with pub.
func (i *Info) Verify(pub ed25519.PublicKey) error { return verify(pub, i.digest, i.Signature) }

// decoded is a structurally valid file, not yet verified.
type decoded struct {
	Info
	set         *Set     // snapshot
	add, remove []uint64 // delta
	snapshotSig []byte   // delta
}

// chunkEntries is how many fingerprints the decoder reads at a time.
const chunkEntries = 8192

// decode reads one file from r and checks its structure: header, counts
// against the bytes that arrive, strictly increasing fingerprints, disjoint
// adds and removes, nothing after the signature. It allocates in proportion
// to the bytes actually read, never to what the header claims.
func decode(r io.Reader) (*decoded, error) { return decodeMode(r, checkAndBuild) }

// decodeMode decodes r in mode; see decodeSized.
func decodeMode(r io.Reader, mode int) (*decoded, error) { return decodeSized(r, mode, -1) }

// How decodeMode reads a file.
const (
	// checkAndBuild checks the structure, hashes what the signature covers
	// and builds the set or the delta: Read and Inspect.
	checkAndBuild = iota
	// checkOnly checks the structure and hashes, building nothing: a gate's
	// first pass over bytes not yet verified, so that memory does not grow
	// with what an attacker sends (disjointness is left to the build).
	checkOnly
	// buildOnly builds from bytes already verified, without hashing: the
	// second pass.
	buildOnly
)

// decodeSized decodes r in mode. size is the number of bytes r holds when
// the caller knows it for a fact (a file on disk), else -1. When the header
// agrees with a known size, or the bytes were verified before (buildOnly),
// the set is allocated once at its final size: growing it by doubling
// would briefly hold two copies plus the collector's headroom, about three
// times the set (10 M entries: 220 MB instead of 70 MB). Otherwise the
// allocation follows the bytes that actually arrive.
func decodeSized(r io.Reader, mode int, size int64) (*decoded, error) {
	dec := &decoder{r: r, sha: sha512.New(), buf: make([]byte, 8*chunkEntries), mode: mode, size: size}
	hb := make([]byte, HeaderSize)
	if err := dec.readFull(hb, "header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	d := &decoded{Info: Info{Header: h, Size: h.Size()}}
	dec.sha.Write(hb)
	if h.Kind == KindSnapshot {
		err = dec.snapshotBody(d)
	} else {
		err = dec.deltaBody(d)
	}
	if err != nil {
		return nil, err
	}
	if dec.mode != buildOnly {
		d.digest = dec.sha.Sum(nil)
	}
	d.Signature = make([]byte, SignatureSize)
	if err := dec.readFull(d.Signature, "signature"); err != nil {
		return nil, err
	}
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	switch {
	case n != 0:
		return nil, malformed(dec.off, "trailing bytes after the signature")
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("denylist: read: %w", err)
	}
	return d, nil
}

// decoder reads a file, counting the offset and hashing what it signs.
type decoder struct {
	r    io.Reader
	off  int64
	sha  hash.Hash
	buf  []byte
	mode int
	size int64 // bytes r holds, when known for a fact; -1 otherwise
}

func (dec *decoder) readFull(b []byte, what string) error {
	n, err := io.ReadFull(dec.r, b)
	dec.off += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return truncated(dec.off, "file ends inside the "+what)
	case err != nil:
		return fmt.Errorf("denylist: read: %w", err)
	}
	return nil
}

// readRun reads n strictly increasing fingerprints, passing each to put.
func (dec *decoder) readRun(n uint64, what string, put func(uint64)) error {
	var prev uint64
	first := true
	for n > 0 {
		k := min(n, chunkEntries)
		chunk := dec.buf[:8*k]
		start := dec.off
		if err := dec.readFull(chunk, what); err != nil {
			return err
		}
		if dec.mode != buildOnly {
			dec.sha.Write(chunk)
		}
		for i := 0; i < len(chunk); i += 8 {
			fp := binary.BigEndian.Uint64(chunk[i:])
			if !first && fp <= prev {
				return malformed(start+int64(i), what+" not strictly increasing")
			}
			first = false
			prev = fp
			put(fp)
		}
		n -= k
	}
	return nil
}

func (dec *decoder) snapshotBody(d *decoded) error {
	if dec.mode == checkOnly {
		return dec.readRun(d.Count, "fingerprints", func(uint64) {})
	}
	hint := min(d.Count, 1<<20)
	if dec.mode == buildOnly || dec.size == d.Size {
		hint = d.Count // the bytes are there: allocate once
	}
	b := newSetBuilder(int(hint))
	if err := dec.readRun(d.Count, "fingerprints", b.add); err != nil {
		return err
	}
	d.set = b.finish()
	return nil
}

func (dec *decoder) deltaBody(d *decoded) error {
	if dec.mode == checkOnly {
		return dec.skipDeltaBody(d)
	}
	d.add = make([]uint64, 0, min(d.Adds, 1<<16))
	if err := dec.readRun(d.Adds, "added fingerprints", func(fp uint64) { d.add = append(d.add, fp) }); err != nil {
		return err
	}
	d.remove = make([]uint64, 0, min(d.Removes, 1<<16))
	if err := dec.readRun(d.Removes, "removed fingerprints", func(fp uint64) { d.remove = append(d.remove, fp) }); err != nil {
		return err
	}
	if !disjoint(d.add, d.remove) {
		return malformed(HeaderSize, "a fingerprint is both added and removed")
	}
	return dec.snapshotSignature(d)
}

func (dec *decoder) skipDeltaBody(d *decoded) error {
	if err := dec.readRun(d.Adds, "added fingerprints", func(uint64) {}); err != nil {
		return err
	}
	if err := dec.readRun(d.Removes, "removed fingerprints", func(uint64) {}); err != nil {
		return err
	}
	return dec.snapshotSignature(d)
}

func (dec *decoder) snapshotSignature(d *decoded) error {
	d.snapshotSig = make([]byte, SignatureSize)
	if err := dec.readFull(d.snapshotSig, "snapshot signature"); err != nil {
		return err
	}
	dec.sha.Write(d.snapshotSig)
	return nil
}

// disjoint reports whether two strictly increasing slices share no element.
func disjoint(a, b []uint64) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			return false
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return true
}

// Inspect reads a file and checks its structure without verifying its
// signature; call Info.Verify for that. It is meant for tools; a gate uses
// Read, ReadSnapshot or ReadDelta.
func Inspect(r io.Reader) (*Info, error) {
	d, err := decode(r)
	if err != nil {
		return nil, err
	}
	return &d.Info, nil
}

// Read reads one file of either kind from r, checks its structure and
// verifies its signature with pub. Exactly one of the list and the delta is
// non-nil when err is nil. A List from a snapshot holds a verified
// signature.
func Read(r io.Reader, pub ed25519.PublicKey) (*List, *Delta, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("%w: public key of %d bytes", ErrKey, len(pub))
	}
	d, err := decode(r)
	if err != nil {
		return nil, nil, err
	}
	if err := d.Verify(pub); err != nil {
		return nil, nil, err
	}
	l, delta := d.result()
	return l, delta, nil
}

// result is the list or the delta of a verified file.
func (d *decoded) result() (*List, *Delta) {
	if d.Kind == KindSnapshot {
		return &List{id: d.ListID, version: d.To, created: d.Created, set: d.set, sig: d.Signature, verified: true}, nil
	}
	return nil, &Delta{
		ListID: d.ListID, From: d.From, To: d.To, Created: d.Created, Count: d.Count,
		Add: d.add, Remove: d.remove, SnapshotSignature: d.snapshotSig,
	}
}

// ReadSnapshot is Read for a snapshot; a delta is refused with ErrKind.
func ReadSnapshot(r io.Reader, pub ed25519.PublicKey) (*List, error) {
	l, _, err := Read(r, pub)
	if err == nil && l == nil {
		err = fmt.Errorf("%w: a delta where a snapshot is needed", ErrKind)
	}
	return l, err
}

// readSnapshotFile is ReadSnapshot for a file of size bytes on disk: a
// header that agrees with the size lets the set be allocated once.
func readSnapshotFile(r io.Reader, size int64, pub ed25519.PublicKey) (*List, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes", ErrKey, len(pub))
	}
	l, _, err := readSnapshotFileAny(r, size, []ed25519.PublicKey{pub})
	return l, err
}

// ReadDelta is Read for a delta; a snapshot is refused with ErrKind.
func ReadDelta(r io.Reader, pub ed25519.PublicKey) (*Delta, error) {
	_, d, err := Read(r, pub)
	if err == nil && d == nil {
		err = fmt.Errorf("%w: a snapshot where a delta is needed", ErrKind)
	}
	return d, err
}
