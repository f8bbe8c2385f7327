package denylist

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TrustFile is the replica file holding the signing keys a gate trusts
// beyond its configured one: keys announced by signed head statements
// (docs/denylist.md, "Key rotation"). It records the configured key it
// grew from; configuring another key starts over from that key alone.
const TrustFile = "trust.json"

// maxTrustFile bounds the trust file read at open.
const maxTrustFile = 64 << 10

// maxTrustedKeys bounds the keys a replica trusts at once: the signer and
// the announced next key, plus retiring keys still signing a local file
// (two when a second rotation starts before the gate fetched a snapshot).
const maxTrustedKeys = 4

type trustState struct {
	Anchor   []byte   `json:"anchor"`    // the configured key (ReplicaConfig.PublicKey)
	IssuedMS int64    `json:"issued_ms"` // issue time of the head that set Keys
	Keys     [][]byte `json:"keys"`      // trusted keys, each 32 bytes
}

// loadTrust returns the keys trusted under anchor and the issue time of
// the head that made them so. Without a trust file, or with one grown from
// another anchor, only anchor is trusted. A damaged file is an error.
func loadTrust(dir string, anchor ed25519.PublicKey) ([]ed25519.PublicKey, time.Time, error) {
	only := []ed25519.PublicKey{anchor}
	f, err := os.Open(filepath.Join(dir, TrustFile))
	if errors.Is(err, os.ErrNotExist) {
		return only, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrTrustFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrTrustFile, err)
	}
	keys, issued, err := parseTrust(b, anchor)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %w", ErrTrustFile, TrustFile, err)
	}
	return keys, issued, nil
}

// parseTrust decodes a trust file. A file grown from another anchor yields
// the anchor alone.
func parseTrust(b []byte, anchor ed25519.PublicKey) ([]ed25519.PublicKey, time.Time, error) {
	only := []ed25519.PublicKey{anchor}
	var st trustState
	if len(b) > maxTrustFile {
		return nil, time.Time{}, fmt.Errorf("%w: trust file too large", ErrMalformed)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !bytes.Equal(st.Anchor, anchor) {
		return only, time.Time{}, nil
	}
	if len(st.Keys) == 0 || len(st.Keys) > maxTrustedKeys || st.IssuedMS < 0 || st.IssuedMS > 1<<62 {
		return nil, time.Time{}, fmt.Errorf("%w: trust file with %d keys, issued %d", ErrMalformed, len(st.Keys), st.IssuedMS)
	}
	keys := make([]ed25519.PublicKey, 0, len(st.Keys))
	for _, k := range st.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, time.Time{}, fmt.Errorf("%w: trusted key of %d bytes", ErrMalformed, len(k))
		}
		keys = append(keys, ed25519.PublicKey(k))
	}
	return keys, time.UnixMilli(st.IssuedMS).UTC(), nil
}

// saveTrust writes the trust file atomically.
func (r *Replica) saveTrust(ctx context.Context) error {
	st := trustState{Anchor: r.anchor, IssuedMS: r.keysIssued.UnixMilli()}
	for _, k := range r.keys {
		st.Keys = append(st.Keys, k)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("denylist: %w", err)
	}
	return writeFileAtomic(ctx, filepath.Join(r.dir, TrustFile), 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	}, r.beforeRename)
}

// TrustedKeys returns the keys the replica accepts lists and heads signed
// by: the configured key, or the keys announced since.
func (r *Replica) TrustedKeys() []ed25519.PublicKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// verifyAny verifies signature sig over digest with each trusted key in
// turn and returns the key that verifies it.
func verifyAny(keys []ed25519.PublicKey, digest, sig []byte) (ed25519.PublicKey, error) {
	for _, k := range keys {
		err := verify(k, digest, sig)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, ErrSignature) {
			return nil, err
		}
	}
	return nil, ErrSignature
}

// readAny is Read with any of keys; it returns the key that verified.
func readAny(r io.Reader, keys []ed25519.PublicKey) (*List, *Delta, ed25519.PublicKey, error) {
	d, err := decode(r)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, err := verifyAny(keys, d.digest, d.Signature)
	if err != nil {
		return nil, nil, nil, err
	}
	l, delta := d.result()
	return l, delta, signer, nil
}

// readSnapshotFileAny is readSnapshotFile with any of keys; it returns
// the key that verified.
func readSnapshotFileAny(r io.Reader, size int64, keys []ed25519.PublicKey) (*List, ed25519.PublicKey, error) {
	d, err := decodeSized(r, checkAndBuild, size)
	if err != nil {
		return nil, nil, err
	}
	signer, err := verifyAny(keys, d.digest, d.Signature)
	if err != nil {
		return nil, nil, err
	}
	l, _ := d.result()
	if l == nil {
		return nil, nil, fmt.Errorf("%w: a delta where a snapshot is needed", ErrKind)
	}
	return l, signer, nil
}

// writeVerifiedAny is List.WriteVerified with any of keys; it returns the
// key that verified.
func (l *List) writeVerifiedAny(w io.Writer, keys []ed25519.PublicKey) (ed25519.PublicKey, error) {
	if l.version == 0 {
		return nil, errors.New("denylist: version 0 has no snapshot")
	}
	h := sha512.New()
	if err := l.encodeBody(w, h); err != nil {
		return nil, err
	}
	signer, err := verifyAny(keys, h.Sum(nil), l.sig)
	if errors.Is(err, ErrSignature) && !l.verified {
		return nil, fmt.Errorf("%w: result of version %d differs from the back office's snapshot", ErrInconsistent, l.version)
	}
	if err != nil {
		return nil, err
	}
	_, err = w.Write(l.sig)
	return signer, err
}

// ParseHead verifies a signed head statement with a key the replica
// trusts and checks its list id (ErrListID for another list). See
// ParseHead.
//
// A verified statement issued no earlier than the one that last set the
// trusted keys sets them anew: the key that signed it, plus the next key it announces.
// So a gate learns a next key only from a key it already trusts, accepts
// both during the overlap, and drops the old key once the back office signs
// with the new one and announces no other. A key that still signs a file
// of the replica is kept until a snapshot signed by a remaining key
// replaces it (the replica asks for one, see Since). The keys are made
// durable in TrustFile before they take effect.
func (r *Replica) ParseHead(b []byte) (Head, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var h Head
	var signer ed25519.PublicKey
	err := ErrSignature
	for _, k := range r.keys {
		h, err = ParseHead(b, k)
		if err == nil {
			signer = k
			break
		}
		if !errors.Is(err, ErrSignature) {
			return Head{}, err
		}
	}
	if err != nil {
		return Head{}, err
	}
	if h.ListID != r.id {
		return Head{}, fmt.Errorf("%w: gate takes %q, head is for %q", ErrListID, r.id, h.ListID)
	}
	if !h.Issued.Before(r.keysIssued) {
		if err := r.rotate(signer, &h); err != nil {
			return Head{}, err
		}
	}
	return h, nil
}

// rotate sets the trusted keys from a verified head signed by signer.
func (r *Replica) rotate(signer ed25519.PublicKey, h *Head) error {
	want := []ed25519.PublicKey{signer}
	if h.NextKey != nil && !h.NextKey.Equal(signer) {
		want = append(want, h.NextKey)
	}
	for _, k := range r.keys {
		if !hasKey(want, k) && r.signsFile(k) && len(want) < maxTrustedKeys {
			want = append(want, k) // retired once no file needs it
			r.suspect.Store(true)
		}
	}
	same := len(want) == len(r.keys)
	for _, k := range want {
		same = same && hasKey(r.keys, k)
	}
	if same {
		r.keysIssued = h.Issued
		return nil
	}
	prevKeys, prevIssued := r.keys, r.keysIssued
	r.keys, r.keysIssued = want, h.Issued
	if err := r.saveTrust(context.Background()); err != nil {
		r.keys, r.keysIssued = prevKeys, prevIssued
		return err
	}
	return nil
}

// signsFile reports whether k signed the snapshot or a delta on disk.
func (r *Replica) signsFile(k ed25519.PublicKey) bool {
	return k.Equal(r.snapKey) || hasKey(r.deltaKeys, k)
}

func hasKey(keys []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, x := range keys {
		if x.Equal(k) {
			return true
		}
	}
	return false
}

// VerifySnapshot checks that sig is pub's signature of the snapshot of
// version `version` of list id holding set, created at created: a back
// office checks its stored list after switching keys.
func VerifySnapshot(pub ed25519.PublicKey, id ListID, version uint64, created time.Time, set *Set, sig []byte) error {
	if set == nil {
		set = &Set{}
	}
	l := &List{id: id, version: version, created: time.UnixMilli(created.UnixMilli()).UTC(), set: set, sig: sig, verified: true}
	return l.Verify(pub)
}
