package qr

import "errors"

// Base45 (RFC 9285): every two bytes become three characters of the QR
// alphanumeric alphabet, a trailing single byte two characters. The
// alphabet is exactly QR's alphanumeric mode, so a QR encoder stores the text
// at 5.5 bits a character (8.25 bits a byte).
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

var base45Value = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(base45Alphabet); i++ {
		v[base45Alphabet[i]] = int8(i)
	}
	return v
}()

var errBase45 = errors.New("not Base45")

// base45Len is the length of the Base45 text of n bytes.
func base45Len(n int) int { return n/2*3 + n%2*2 }

func appendBase45(dst, src []byte) []byte {
	for len(src) >= 2 {
		n := int(src[0])<<8 | int(src[1])
		dst = append(dst, base45Alphabet[n%45], base45Alphabet[n/45%45], base45Alphabet[n/2025])
		src = src[2:]
	}
	if len(src) == 1 {
		n := int(src[0])
		dst = append(dst, base45Alphabet[n%45], base45Alphabet[n/45])
	}
	return dst
}

// decodeBase45 is strict: only the alphabet, no length ≡ 1 (mod 3), no
// group above 65535 (or 255 for a final pair), so every byte string has
// exactly one text.
func decodeBase45(dst []byte, src string) ([]byte, error) {
	if len(src)%3 == 1 {
		return nil, errBase45
	}
	for i := 0; i < len(src); i += 3 {
		k := min(3, len(src)-i)
		n, mul := 0, 1
		for j := range k {
			v := base45Value[src[i+j]]
			if v < 0 {
				return nil, errBase45
			}
			n += int(v) * mul
			mul *= 45
		}
		if k == 3 {
			if n > 0xFFFF {
				return nil, errBase45
			}
			dst = append(dst, byte(n>>8), byte(n))
		} else {
			if n > 0xFF {
				return nil, errBase45
			}
			dst = append(dst, byte(n))
		}
	}
	return dst, nil
}
