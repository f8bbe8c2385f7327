package qr

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stdVerify is the reference: crypto/ed25519.Verify, which panics on a
// key of the wrong length (the callers here check it first).
func stdVerify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// requireSameAnswer checks both fast paths (a key used once, an expanded
// key) against the reference and returns the reference's answer.
func requireSameAnswer(t testing.TB, name string, pub, msg, sig []byte) bool {
	t.Helper()
	want := stdVerify(pub, msg, sig)
	if got := verifySig(pub, "", msg, sig); got != want {
		t.Fatalf("%s: verifySig = %v, crypto/ed25519 = %v (pub %x sig %x msg %x)", name, got, want, pub, sig, msg)
	}
	if got := expand(pub).verify("", msg, sig); got != want {
		t.Fatalf("%s: expanded verify = %v, crypto/ed25519 = %v (pub %x sig %x msg %x)", name, got, want, pub, sig, msg)
	}
	return want
}

type sigCase struct {
	name          string
	pub, msg, sig []byte
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// smallOrder are encodings of the eight points of small order, then
// non-canonical encodings of some of them (y ≥ p, or x = 0 with the sign
// bit set), which crypto/ed25519 accepts as keys.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, x = -0
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1 ≡ 1
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p ≡ 0
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = -1, sign set
	"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // not on the curve? either way, same answer
}

// groupOrder is L, the order of the base point.
var groupOrder, _ = new(big.Int).SetString("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed", 16)

// plusL returns sig with S replaced by S+L: the same value mod L in a
// non-canonical encoding (still below 2^253, so it fits).
func plusL(sig []byte) []byte {
	le := func(b []byte) []byte {
		r := make([]byte, len(b))
		for i := range b {
			r[i] = b[len(b)-1-i]
		}
		return r
	}
	s := new(big.Int).SetBytes(le(sig[32:]))
	s.Add(s, groupOrder)
	out := append([]byte(nil), sig[:32]...)
	var buf [32]byte
	return append(out, le(s.FillBytes(buf[:]))...)
}

func flip(b []byte, bit int) []byte {
	out := append([]byte(nil), b...)
	out[bit/8] ^= 1 << (bit % 8)
	return out
}

// sigCases are the seeds of the differential test and fuzz target.
func sigCases() []sigCase {
	var cs []sigCase
	for i := range 4 {
		seed := sha256.Sum256([]byte{byte(i)})
		k := ed25519.NewKeyFromSeed(seed[:])
		pub := []byte(k.Public().(ed25519.PublicKey))
		msg := make([]byte, 40*i)
		sig := ed25519.Sign(k, msg)
		cs = append(cs,
			sigCase{"valid", pub, msg, sig},
			sigCase{"S+L", pub, msg, plusL(sig)},
			sigCase{"sig truncated", pub, msg, sig[:63]},
			sigCase{"sig too long", pub, msg, append(append([]byte(nil), sig...), 0)},
			sigCase{"pub truncated", pub[:31], msg, sig},
			sigCase{"no sig", pub, msg, nil},
			sigCase{"msg extended", pub, append(append([]byte(nil), msg...), 0), sig},
		)
		for _, bit := range []int{0, 7, 255, 256, 300, 511} {
			cs = append(cs, sigCase{"sig bit flipped", pub, msg, flip(sig, bit)})
		}
		for _, bit := range []int{0, 100, 254, 255} {
			cs = append(cs, sigCase{"pub bit flipped", flip(pub, bit), msg, sig})
		}
		if len(msg) > 0 {
			cs = append(cs, sigCase{"msg bit flipped", pub, flip(msg, 3), sig})
		}
	}
	// Small-order keys with small-order R: S = 0 makes R' = -[k]A, which
	// is one of the small-order points, so some of these verify.
	zero := make([]byte, 32)
	for _, a := range smallOrder {
		for _, r := range smallOrder {
			for _, m := range []string{"", "a", "bc", "def"} {
				cs = append(cs, sigCase{"small-order A and R", unhex(a), []byte(m), append(unhex(r), zero...)})
			}
		}
	}
	return cs
}

// TestVerifyMatchesStdlib: the fast verifier gives crypto/ed25519's answer
// on valid signatures, tampered ones, non-canonical S, small-order and
// non-canonical keys and R, and wrong lengths.
func TestVerifyMatchesStdlib(t *testing.T) {
	accepted := map[string]int{}
	for _, c := range sigCases() {
		if requireSameAnswer(t, c.name, c.pub, c.msg, c.sig) {
			accepted[c.name]++
		}
	}
	// The cases exercise both answers: valid signatures and some
	// small-order combinations verify, the tampered ones do not.
	require.Equal(t, 4, accepted["valid"])
	require.Positive(t, accepted["small-order A and R"])
	for _, name := range []string{"S+L", "sig truncated", "sig too long", "pub truncated", "sig bit flipped", "pub bit flipped", "msg bit flipped"} {
		require.Zero(t, accepted[name], name)
	}
}

// TestVerifyDomain: the domain is part of the signed message.
func TestVerifyDomain(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	body := []byte("body")
	sig := ed25519.Sign(k, append([]byte(deviceDomain), body...))
	pub := k.Public().(ed25519.PublicKey)
	require.True(t, verifySig(pub, deviceDomain, body, sig))
	require.True(t, expand(pub).verify(deviceDomain, body, sig))
	require.False(t, verifySig(pub, issuerDomain, body, sig))
	require.False(t, expand(pub).verify(issuerDomain, body, sig))
}

// FuzzVerifyDifferential: for any (pub, msg, sig) the fast verifier and
// crypto/ed25519 agree.
func FuzzVerifyDifferential(f *testing.F) {
	for _, c := range sigCases() {
		f.Add(c.pub, c.msg, c.sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		requireSameAnswer(t, "fuzz", pub, msg, sig)
	})
}

// BenchmarkEd25519Verify is the floor: one Ed25519 signature check, which
// every code needs (the device's), with crypto/ed25519 and with the fast
// verifier, for a key used once and for an expanded key (the gate's
// cached credentials, the issuer keys); expand is the one-time cost of
// expanding a key.
func BenchmarkEd25519Verify(b *testing.B) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	body := make([]byte, offChallenge+1)
	sig := ed25519.Sign(k, append([]byte(deviceDomain), body...))
	pub := []byte(k.Public().(ed25519.PublicKey))
	exp := expand(pub)
	msg := append([]byte(deviceDomain), body...)
	for _, bm := range []struct {
		name string
		f    func() bool
	}{
		{"stdlib", func() bool { return ed25519.Verify(pub, msg, sig) }},
		{"once", func() bool { return verifySig(pub, deviceDomain, body, sig) }},
		{"expanded", func() bool { return exp.verify(deviceDomain, body, sig) }},
		{"expand", func() bool { return expand(pub) != nil }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				if !bm.f() {
					b.Fatal("verify")
				}
			}
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "ops/cpu-s")
			}
		})
	}
}

// notAPoint returns a 32-byte key that does not decode to a curve point.
func notAPoint(t testing.TB) []byte {
	t.Helper()
	for i := range 256 {
		k := make([]byte, 32)
		k[0] = byte(i)
		k[1] = 1
		if expand(k) == nil {
			return k
		}
	}
	t.Fatal("no invalid point found")
	return nil
}

// TestGateDeviceKeyCache: a cached credential still has every code's
// device signature checked, and a device key off the curve is refused,
// not cached; an issuer key off the curve is refused when loaded.
func TestGateDeviceKeyCache(t *testing.T) {
	issuer := ed25519.NewKeyFromSeed(make([]byte, 32))
	is, err := NewIssuers(issuer.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	_, err = NewIssuers(notAPoint(t))
	require.Error(t, err)

	devKey := ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	cred := Credential{Device: DeviceKey(devKey.Public().(ed25519.PublicKey)), NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour)}
	require.NoError(t, cred.Sign(issuer))
	dev := &Device{Credential: cred, Key: devKey}
	g, err := NewGate(GateOptions{Issuers: is, Now: func() time.Time { return at }})
	require.NoError(t, err)

	first, err := dev.Code(at, 1, nil)
	require.NoError(t, err)
	_, err = g.Verify(first)
	require.NoError(t, err)
	require.Len(t, g.creds, 1)
	forged, err := dev.Code(at, 2, nil)
	require.NoError(t, err)
	forged[len(forged)-1] ^= 1
	_, err = g.Verify(forged)
	require.Equal(t, ReasonBadDeviceSignature, ReasonOf(err))

	// A credential for a device key off the curve: no code verifies.
	bad := cred
	copy(bad.Device[:], notAPoint(t))
	require.NoError(t, bad.Sign(issuer))
	code, err := (&Device{Credential: bad, Key: devKey}).Code(at, 1, nil)
	require.Error(t, err, "the device key does not match the credential")
	require.Nil(t, code)
	raw, err := bad.MarshalBinary()
	require.NoError(t, err)
	payload := append(raw, first[CredentialSize:]...)
	_, err = g.Verify(payload)
	require.Equal(t, ReasonBadDeviceSignature, ReasonOf(err))
	require.Len(t, g.creds, 1, "not cached")
}
