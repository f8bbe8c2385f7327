package oda

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Bounds of EMV RSA keys (EMV Book 2, 5.1 and Annex A2.1): moduli of at
// most 1984 bits (248 bytes), exponent 3 or 2^16+1.
const (
	MaxModulusLen = 248
	MinModulusLen = 64 // 512 bits: below any key a scheme ever published
)

// CAKey is one certification authority public key, identified by its
// Registered Application Provider Identifier (RID) and index (8F).
type CAKey struct {
	RID      [5]byte
	Index    byte
	Modulus  []byte // big-endian, no leading zero byte
	Exponent []byte // 03 or 010001
	// Expiry is the last day the key may be used (inclusive). The zero
	// value means the list sets no expiry.
	Expiry time.Time
	// Test marks a scheme test key. A Verifier uses it only in test mode.
	Test bool
	// Description is free text carried along in the JSON list (issuer
	// name, source); it plays no part in verification.
	Description string
}

// Checksum is the key's check value of EMV Book 2 (5.2, Table 1 note):
// SHA-1 of RID | index | modulus | exponent.
func (k *CAKey) Checksum() [sha1.Size]byte {
	h := sha1.New()
	h.Write(k.RID[:])
	h.Write([]byte{k.Index})
	h.Write(k.Modulus)
	h.Write(k.Exponent)
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	return sum
}

// caKeyJSON is one entry of a CA key list file:
//
//	{"rid":"A000000003","index":"92","modulus":"…","exponent":"03",
//	 "expiry":"2028-12-31","sha1_checksum":"…","test":true,"description":"…"}
type caKeyJSON struct {
	RID          string `json:"rid"`
	Index        string `json:"index"`
	Modulus      string `json:"modulus"`
	Exponent     string `json:"exponent"`
	Expiry       string `json:"expiry,omitempty"`
	SHA1Checksum string `json:"sha1_checksum,omitempty"`
	Test         bool   `json:"test,omitempty"`
	Description  string `json:"description,omitempty"`
}

// MarshalJSON writes the key in the CA key list format, with its checksum
// and its expiry as YYYY-MM-DD.
func (k CAKey) MarshalJSON() ([]byte, error) {
	sum := k.Checksum()
	j := caKeyJSON{
		RID:          fmt.Sprintf("%X", k.RID[:]),
		Index:        fmt.Sprintf("%02X", k.Index),
		Modulus:      fmt.Sprintf("%X", k.Modulus),
		Exponent:     fmt.Sprintf("%X", k.Exponent),
		SHA1Checksum: fmt.Sprintf("%X", sum[:]),
		Test:         k.Test,
		Description:  k.Description,
	}
	if !k.Expiry.IsZero() {
		j.Expiry = k.Expiry.Format(time.DateOnly)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads one entry of a CA key list and checks it: RID of 5
// bytes, index of 1, modulus of 64–248 bytes without a leading zero,
// exponent 03 or 010001, expiry YYYY-MM-DD or YYMMDD (the form of the
// proxmark3 and emv-tools lists), and the checksum when one is given.
// Unknown fields are refused.
func (k *CAKey) UnmarshalJSON(b []byte) error {
	var j caKeyJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyInvalid, err)
	}
	rid, err := hex.DecodeString(j.RID)
	if err != nil || len(rid) != 5 {
		return fmt.Errorf("%w: rid %q is not 5 bytes of hex", ErrKeyInvalid, j.RID)
	}
	idx, err := hex.DecodeString(j.Index)
	if err != nil || len(idx) != 1 {
		return fmt.Errorf("%w: %X: index %q is not 1 byte of hex", ErrKeyInvalid, rid, j.Index)
	}
	var nk CAKey
	copy(nk.RID[:], rid)
	nk.Index = idx[0]
	nk.Test = j.Test
	nk.Description = j.Description
	if nk.Modulus, err = hex.DecodeString(j.Modulus); err != nil {
		return keyErr(rid, nk.Index, ErrKeyInvalid, "modulus is not hex")
	}
	if nk.Exponent, err = hex.DecodeString(j.Exponent); err != nil {
		return keyErr(rid, nk.Index, ErrKeyInvalid, "exponent is not hex")
	}
	if j.Expiry != "" {
		if nk.Expiry, err = parseKeyExpiry(j.Expiry); err != nil {
			return keyErr(rid, nk.Index, ErrKeyInvalid, err.Error())
		}
	}
	// The checksum first: a mismatch says the entry is corrupt, whatever
	// else is wrong with it.
	if j.SHA1Checksum != "" {
		given, err := hex.DecodeString(j.SHA1Checksum)
		if err != nil || len(given) != sha1.Size {
			return keyErr(rid, nk.Index, ErrKeyInvalid, "sha1_checksum is not 20 bytes of hex")
		}
		if sum := nk.Checksum(); !bytes.Equal(given, sum[:]) {
			return keyErr(rid, nk.Index, ErrKeyChecksum, "")
		}
	}
	if err := nk.check(); err != nil {
		return err
	}
	*k = nk
	return nil
}

func (k *CAKey) check() error {
	switch {
	case len(k.Modulus) < MinModulusLen || len(k.Modulus) > MaxModulusLen:
		return keyErr(k.RID[:], k.Index, ErrKeyInvalid, fmt.Sprintf("modulus of %d bytes", len(k.Modulus)))
	case k.Modulus[0] == 0:
		return keyErr(k.RID[:], k.Index, ErrKeyInvalid, "modulus has a leading zero byte")
	case k.Modulus[len(k.Modulus)-1]&1 == 0:
		return keyErr(k.RID[:], k.Index, ErrKeyInvalid, "modulus is even")
	case exponentValue(k.Exponent) == 0:
		return keyErr(k.RID[:], k.Index, ErrKeyInvalid, "exponent is neither 03 nor 010001")
	}
	return nil
}

// parseKeyExpiry reads YYYY-MM-DD or YYMMDD (years 00–49 are 20xx, 50–99
// 19xx, as EMV dates).
func parseKeyExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if len(s) == 6 {
		if t, err := time.Parse("060102", s); err == nil {
			if t.Year() >= 2050 {
				t = t.AddDate(-100, 0, 0)
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("expiry %q is neither YYYY-MM-DD nor YYMMDD", s)
}

// exponentValue returns 3 or 65537 for the two exponents EMV allows, 0
// otherwise.
func exponentValue(e []byte) int {
	switch {
	case len(e) == 1 && e[0] == 3:
		return 3
	case len(e) == 3 && e[0] == 1 && e[1] == 0 && e[2] == 1:
		return 65537
	}
	return 0
}

type keyID [6]byte

func makeKeyID(rid []byte, index byte) (id keyID) {
	copy(id[:5], rid)
	id[5] = index
	return id
}

// caEntry is a CAKey prepared for verification.
type caEntry struct {
	key CAKey
	pub rsaKey
}

// KeyStore is the one list of CA public keys a verifier trusts, looked up
// by RID and index. Scheme test lists and live lists reuse indexes for
// different keys, so a store holds one list and refuses duplicates. It is
// immutable and safe for concurrent use.
type KeyStore struct {
	keys map[keyID]*caEntry
}

// NewKeyStore checks keys and builds a store. Two keys with the same RID and
// index are refused (ErrKeyDuplicate).
func NewKeyStore(keys ...CAKey) (*KeyStore, error) {
	s := &KeyStore{keys: make(map[keyID]*caEntry, len(keys))}
	for _, k := range keys {
		if err := k.check(); err != nil {
			return nil, err
		}
		id := makeKeyID(k.RID[:], k.Index)
		if _, dup := s.keys[id]; dup {
			return nil, keyErr(k.RID[:], k.Index, ErrKeyDuplicate, "")
		}
		k.Modulus = bytes.Clone(k.Modulus)
		k.Exponent = bytes.Clone(k.Exponent)
		s.keys[id] = &caEntry{key: k, pub: newRSAKey(k.Modulus, exponentValue(k.Exponent))}
	}
	return s, nil
}

// ParseKeyStore reads a CA key list: a JSON array of CAKey entries (see
// CAKey.UnmarshalJSON). A key whose checksum does not match is refused with
// an error naming its RID and index.
func ParseKeyStore(data []byte) (*KeyStore, error) {
	var keys []CAKey
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&keys); err != nil {
		return nil, fmt.Errorf("oda: ca key list: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("oda: ca key list: trailing data after the list")
	}
	return NewKeyStore(keys...)
}

// LoadKeyStore reads a CA key list file (see ParseKeyStore).
func LoadKeyStore(path string) (*KeyStore, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("oda: %w", err)
	}
	s, err := ParseKeyStore(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Lookup returns the key with this RID and index.
func (s *KeyStore) Lookup(rid []byte, index byte) (CAKey, bool) {
	if e := s.lookup(rid, index); e != nil {
		return e.key, true
	}
	return CAKey{}, false
}

func (s *KeyStore) lookup(rid []byte, index byte) *caEntry {
	if s == nil || len(rid) != 5 {
		return nil
	}
	return s.keys[makeKeyID(rid, index)]
}

// Keys returns the keys, ordered by RID and index.
func (s *KeyStore) Keys() []CAKey {
	if s == nil {
		return nil
	}
	out := make([]CAKey, 0, len(s.keys))
	for _, e := range s.keys {
		out = append(out, e.key)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := makeKeyID(out[i].RID[:], out[i].Index), makeKeyID(out[j].RID[:], out[j].Index)
		return bytes.Compare(a[:], b[:]) < 0
	})
	return out
}

// Len is the number of keys in the store.
func (s *KeyStore) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// HasTestKeys reports whether any key of the store is a test key.
func (s *KeyStore) HasTestKeys() bool {
	if s == nil {
		return false
	}
	for _, e := range s.keys {
		if e.key.Test {
			return true
		}
	}
	return false
}

// MarshalKeyList writes keys as a CA key list (indented JSON array).
func MarshalKeyList(keys []CAKey) ([]byte, error) {
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("oda: ca key list: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseRID decodes a RID, or the RID at the start of an AID, from hex.
func ParseRID(hexRIDOrAID string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(hexRIDOrAID))
	if err != nil || len(b) < 5 || len(b) > 16 {
		return nil, fmt.Errorf("oda: %q is not a RID or AID (5–16 bytes of hex)", hexRIDOrAID)
	}
	return b[:5], nil
}
