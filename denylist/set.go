package denylist

import (
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"math/bits"
	"slices"
)

// Layout of a Set. A 64-bit fingerprint splits into a 16-bit bucket number
// (its top bits) and a 48-bit remainder. Remainders are stored sorted, six
// bytes each, bucket after bucket; off[b] is the index of bucket b's first
// remainder and off[numBuckets] the number of entries. At 10 M entries that is
// 6 bytes per entry plus a 256 KiB bucket index (0.03 B/entry) while every
// lookup still compares all 64 bits.
//
// A finer index narrows each lookup to a sub-bucket: the next subBits bits
// of the fingerprint (0 to 4, chosen from the size so that a sub-bucket holds
// about 8 entries) select one of 2^subBits sub-buckets whose start, relative
// to its bucket, is kept in one byte. At 10 M entries that is 1 MiB
// (0.1 B/entry) and it brings a lookup down to about one cache line of
// remainders. A start of 255 or more is stored as 255, which is still a
// correct lower bound: only the speed of very large buckets suffers.
const (
	bucketBits = 16
	numBuckets = 1 << bucketBits
	remBits    = 64 - bucketBits
	remSize    = remBits / 8
	remMask    = 1<<remBits - 1
	// remPad trailing bytes let at() load eight bytes at the last entry.
	remPad = 8 - remSize
	// maxSubBits bounds the sub-bucket index (2^20 bytes).
	maxSubBits = 4
	subSat     = 255 // saturated sub-bucket start
)

// subBitsFor returns the sub-bucket bits for a set of n entries: about 8
// entries per sub-bucket.
func subBitsFor(n int) uint {
	return min(uint(bits.Len(uint(n/numBuckets/8))), maxSubBits)
}

// Set is an immutable set of 64-bit token fingerprints, built for
// membership tests on a gate. The zero value is the empty set. A Set is
// never modified after it is built, so any number of goroutines may read it
// while a new version is being built from it.
type Set struct {
	off     []uint32 // numBuckets+1 offsets, or nil for the empty set
	rem     []byte   // remSize bytes per entry (little-endian), then remPad zero bytes
	sub     []uint8  // numBuckets<<subBits sub-bucket starts, relative to their bucket
	subBits uint
}

// NewSet returns the set of the given fingerprints, in any order and with
// duplicates.
func NewSet(fps []uint64) *Set { return setOf(slices.Clone(fps)) }

// NewSetOfTokens returns the set of the tokens' fingerprints.
func NewSetOfTokens(tokens []Token) *Set {
	fps := make([]uint64, len(tokens))
	for i, t := range tokens {
		fps[i] = Fingerprint(t)
	}
	return setOf(fps)
}

// setOf builds the set of fps, sorting fps in place.
func setOf(fps []uint64) *Set {
	slices.Sort(fps)
	fps = slices.Compact(fps)
	b := newSetBuilder(len(fps))
	for _, fp := range fps {
		b.add(fp)
	}
	return b.finish()
}

// Len returns the number of fingerprints in the set.
func (s *Set) Len() int {
	if s == nil || s.off == nil {
		return 0
	}
	return int(s.off[numBuckets])
}

// SizeBytes returns the memory the set holds, in bytes.
func (s *Set) SizeBytes() int {
	if s == nil {
		return 0
	}
	return cap(s.rem) + 4*cap(s.off) + cap(s.sub)
}

// Contains reports whether the token's fingerprint is in the set.
func (s *Set) Contains(t Token) bool { return s.ContainsFingerprint(Fingerprint(t)) }

// at returns the remainder at index i.
func (s *Set) at(i int) uint64 {
	return binary.LittleEndian.Uint64(s.rem[i*remSize:]) & remMask
}

// ContainsFingerprint reports whether fp is in the set. The bucket and
// sub-bucket indexes give a range of a few entries; inside it the position
// is guessed by interpolation (fingerprints are uniform), then found by
// galloping and bisecting from the guess, so a skewed distribution costs
// O(log n), never a wrong answer.
func (s *Set) ContainsFingerprint(fp uint64) bool {
	if s == nil || s.off == nil {
		return false
	}
	b := fp >> remBits
	r := fp & remMask
	lo, hi := int(s.off[b]), int(s.off[b+1])
	var rel uint64 = r << bucketBits // r's position in [lo, hi), as a 64-bit fraction
	if sb := s.subBits; sb != 0 {
		k := r >> (remBits - sb)
		i := int(b)<<sb | int(k)
		base := lo
		lo = base + int(s.sub[i])
		if k < 1<<sb-1 {
			if e := int(s.sub[i+1]); e != subSat {
				hi = base + e
			}
		}
		rel <<= sb
	}
	n := hi - lo
	if n <= 0 {
		return false
	}
	g, _ := bits.Mul64(rel, uint64(n))
	i := lo + int(g)
	v := s.at(i)
	if v == r {
		return true
	}
	var a, z int // r, if present, is in [a, z)
	if v < r {
		a, z = i+1, hi
		for step := 1; ; step <<= 1 {
			j := a + step - 1
			if j >= hi {
				break
			}
			vj := s.at(j)
			if vj == r {
				return true
			}
			if vj > r {
				z = j
				break
			}
			a = j + 1
		}
	} else {
		a, z = lo, i
		for step := 1; ; step <<= 1 {
			j := z - step
			if j < lo {
				break
			}
			vj := s.at(j)
			if vj == r {
				return true
			}
			if vj < r {
				a = j + 1
				break
			}
			z = j
		}
	}
	for a < z {
		m := int(uint(a+z) >> 1)
		vm := s.at(m)
		if vm == r {
			return true
		}
		if vm < r {
			a = m + 1
		} else {
			z = m
		}
	}
	return false
}

// indexSubBuckets builds the sub-bucket index of s from its remainders: one
// sequential pass reading one byte per entry (a histogram per bucket, then
// prefix sums).
func (s *Set) indexSubBuckets() { s.indexSub(subBitsFor(s.Len())) }

func (s *Set) indexSub(sb uint) {
	s.subBits, s.sub = 0, nil
	if sb == 0 || s.Len() == 0 {
		return
	}
	sub := make([]uint8, numBuckets<<sb)
	shift := 8 - sb // the top sb bits of a remainder are the top of its last byte
	var cnt [1 << maxSubBits]int
	for b := range numBuckets {
		lo, hi := int(s.off[b]), int(s.off[b+1])
		if lo == hi {
			continue // all starts 0
		}
		clear(cnt[:])
		top := s.rem[lo*remSize : hi*remSize]
		for j := remSize - 1; j < len(top); j += remSize {
			cnt[top[j]>>shift]++
		}
		row := sub[b<<sb : (b+1)<<sb]
		acc := 0
		for k := range row {
			row[k] = uint8(min(acc, subSat))
			acc += cnt[k]
		}
	}
	s.subBits, s.sub = sb, sub
}

// lowerBound returns the index of the first entry >= fp and whether that
// entry is fp. s must not be empty.
func (s *Set) lowerBound(fp uint64) (int, bool) {
	b := fp >> remBits
	r := fp & remMask
	a, z := int(s.off[b]), int(s.off[b+1])
	end := z
	for a < z {
		m := int(uint(a+z) >> 1)
		if s.at(m) < r {
			a = m + 1
		} else {
			z = m
		}
	}
	return a, a < end && s.at(a) == r
}

// All yields the set's fingerprints in increasing order.
func (s *Set) All() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		if s.Len() == 0 {
			return
		}
		for b := range numBuckets {
			hi := int(s.off[b+1])
			for i := int(s.off[b]); i < hi; i++ {
				if !yield(uint64(b)<<remBits | s.at(i)) {
					return
				}
			}
		}
	}
}

// writeBE writes the fingerprints in increasing order as 8-byte big-endian
// integers (the snapshot body) to each of ws, using buf (a multiple of 8
// bytes) as scratch.
func (s *Set) writeBE(buf []byte, ws ...io.Writer) error {
	if s.Len() == 0 {
		return nil
	}
	buf = buf[:len(buf)&^7]
	k := 0
	flush := func() error {
		for _, w := range ws {
			if _, err := w.Write(buf[:k]); err != nil {
				return err
			}
		}
		k = 0
		return nil
	}
	for b := range numBuckets {
		hi := int(s.off[b+1])
		top := uint64(b) << remBits
		for i := int(s.off[b]); i < hi; i++ {
			if k == len(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
			binary.BigEndian.PutUint64(buf[k:], top|s.at(i))
			k += 8
		}
	}
	return flush()
}

// setBuilder builds a Set from fingerprints given in strictly increasing
// order (the caller checks the order).
type setBuilder struct {
	off []uint32
	rem []byte
}

// newSetBuilder preallocates for hint entries; hint is only a hint, so a
// hostile header cannot make it allocate more than the bytes that arrive.
func newSetBuilder(hint int) *setBuilder {
	return &setBuilder{
		off: make([]uint32, numBuckets+1),
		rem: make([]byte, 0, hint*remSize+remPad),
	}
}

func (b *setBuilder) add(fp uint64) {
	b.off[fp>>remBits+1]++
	n := len(b.rem)
	b.rem = binary.LittleEndian.AppendUint64(b.rem, fp&remMask)[:n+remSize]
}

func (b *setBuilder) finish() *Set {
	for i := 1; i <= numBuckets; i++ {
		b.off[i] += b.off[i-1]
	}
	if b.off[numBuckets] == 0 {
		return &Set{}
	}
	b.rem = append(b.rem, make([]byte, remPad)...)
	s := &Set{off: b.off, rem: b.rem}
	b.off, b.rem = nil, nil
	s.indexSubBuckets()
	return s
}

// Apply returns a new set: s plus add minus remove, both strictly
// increasing and disjoint (else ErrMalformed). An add already in s or a
// remove absent from s is ErrInconsistent. s is not modified.
func (s *Set) Apply(add, remove []uint64) (*Set, error) {
	if !increasing(add) || !increasing(remove) || !disjoint(add, remove) {
		return nil, fmt.Errorf("%w: changes not strictly increasing and disjoint", ErrMalformed)
	}
	return s.apply(add, remove)
}

// apply returns a new set: s plus adds minus removes. Both are strictly
// increasing and disjoint (the delta decoder checks that). An add already in
// s, or a remove absent from s, means the delta was made for another list:
// ErrInconsistent. Runs between changes are moved with copy, so the cost is
// one memmove of the set plus a bucket search per change.
func (s *Set) apply(adds, removes []uint64) (*Set, error) {
	oldN := s.Len()
	n := oldN + len(adds) - len(removes)
	if n < 0 {
		return nil, ErrInconsistent
	}
	if n == 0 {
		if len(adds) != 0 || !equalSorted(removes, s) {
			return nil, ErrInconsistent
		}
		return &Set{}, nil
	}
	if oldN == 0 {
		if len(removes) != 0 {
			return nil, ErrInconsistent
		}
		b := newSetBuilder(len(adds))
		for _, fp := range adds {
			b.add(fp)
		}
		return b.finish(), nil
	}
	ns := &Set{off: make([]uint32, numBuckets+1), rem: make([]byte, n*remSize+remPad)}
	diff := make([]int32, numBuckets)
	src, dst := 0, 0 // entry indexes in s and ns
	ai, ri := 0, 0
	for ai < len(adds) || ri < len(removes) {
		add := ri == len(removes) || (ai < len(adds) && adds[ai] < removes[ri])
		var fp uint64
		if add {
			fp = adds[ai]
			ai++
		} else {
			fp = removes[ri]
			ri++
		}
		p, found := s.lowerBound(fp)
		if add == found || p < src {
			return nil, ErrInconsistent
		}
		copy(ns.rem[dst*remSize:], s.rem[src*remSize:p*remSize])
		dst += p - src
		src = p
		if add {
			var tmp [8]byte
			binary.LittleEndian.PutUint64(tmp[:], fp&remMask)
			copy(ns.rem[dst*remSize:], tmp[:remSize])
			dst++
			diff[fp>>remBits]++
		} else {
			src++
			diff[fp>>remBits]--
		}
	}
	copy(ns.rem[dst*remSize:], s.rem[src*remSize:oldN*remSize])
	var acc int64
	for b := range numBuckets {
		ns.off[b] = uint32(int64(s.off[b]) + acc)
		acc += int64(diff[b])
	}
	ns.off[numBuckets] = uint32(n)
	ns.indexSubBuckets()
	return ns, nil
}

// equalSorted reports whether s holds exactly the strictly increasing fps.
func equalSorted(fps []uint64, s *Set) bool {
	if len(fps) != s.Len() {
		return false
	}
	i := 0
	for fp := range s.All() {
		if fps[i] != fp {
			return false
		}
		i++
	}
	return true
}

// diffSets returns the fingerprints in to but not in from (adds) and in
// from but not in to (removes), both increasing.
func diffSets(from, to *Set) (adds, removes []uint64) {
	nextFrom, stopFrom := iter.Pull(from.All())
	defer stopFrom()
	nextTo, stopTo := iter.Pull(to.All())
	defer stopTo()
	a, okA := nextFrom()
	b, okB := nextTo()
	for okA || okB {
		switch {
		case okA && okB && a == b:
			a, okA = nextFrom()
			b, okB = nextTo()
		case !okB || (okA && a < b):
			removes = append(removes, a)
			a, okA = nextFrom()
		default:
			adds = append(adds, b)
			b, okB = nextTo()
		}
	}
	return adds, removes
}
