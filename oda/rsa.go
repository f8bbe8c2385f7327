package oda

import "math/big"

// rsaKey is an RSA public key as EMV uses it: the raw public operation
// (EMV Book 2, A2.1), exponent 3 or 65537.
type rsaKey struct {
	n    *big.Int
	e    int
	size int // modulus length in bytes
}

func newRSAKey(modulus []byte, e int) rsaKey {
	return rsaKey{n: new(big.Int).SetBytes(modulus), e: e, size: len(modulus)}
}

// recover computes sig^e mod n into out[:k.size]. It reports false when sig
// is not a number below the modulus. The caller has checked len(sig) == k.size.
func (k *rsaKey) recover(s *scratch, sig, out []byte) bool {
	x := s.x.SetBytes(sig)
	if x.Cmp(k.n) >= 0 {
		return false
	}
	y := s.y.Set(x)
	steps := 1 // e = 3: square once, then multiply by x
	if k.e == 65537 {
		steps = 16
	}
	for range steps {
		s.t.Mul(y, y)
		s.q.QuoRem(&s.t, k.n, y)
	}
	s.t.Mul(y, x)
	s.q.QuoRem(&s.t, k.n, y)
	y.FillBytes(out[:k.size])
	return true
}
