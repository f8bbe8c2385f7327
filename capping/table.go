package capping

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// TapTable is a taps file held for rating at scale: each tap in 56 bytes
// (instant and written time, received, fare, zone mask, mode and category
// ids, line; 4 bytes more for the station and role of a gated journey's tap), each token and each mode or category name once, taps grouped
// by token (tokens in byte order, each token's taps in file order).
// ReadTapTable builds it; Source hands its tokens to RateStream.
//
// The taps it yields are resolved against its rules and carry no Zones
// names (the engine uses the resolved zone mask); AppendTime prints their
// time as written.
type TapTable struct {
	rules  *Rules
	tokens []string      // distinct, in byte order
	first  []uint32      // taps of token k: order[first[k]:first[k+1]]
	order  []uint32      // tapRef of every tap, grouped by token
	blocks [][]packedTap // the taps, block by block in file order
	stops  [][]uint32    // stop words of each block's taps; nil: no roles
	names  []tapName     // interned modes and categories; 0 is ""
}

// A tapRef locates a tap: its block and its index in the block. Blocks are
// cut from at most a few megabytes of lines of at least 23 bytes, so an
// index fits in tapRefBits.
const (
	tapRefBits  = 17
	maxBlocks   = 1 << (32 - tapRefBits)
	maxBlockLen = 1 << tapRefBits
)

// packedTap is one tap of a TapTable.
type packedTap struct {
	at       stamp
	received int64 // Unix seconds; noReceived when the row has none
	base     Amount
	zoneMask uint64
	line     int32 // negative: the row had a fare (HasFare)
	tok      uint32
	mode     uint32
	cat      uint32
}

// A tap with a role (a gated journey) has a stop word: the name id of its
// station | role << stopRoleShift. Stop words live beside the block's taps,
// only in blocks that have any, so that a tap-only file keeps 56 bytes a tap.
const stopRoleShift = 30

const noReceived = math.MinInt64

func timeUnix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

type tapName struct {
	name            string
	modeBit, catBit uint64
	stationID       uint16 // as a station: its od_fares id, 0 none
}

// Len returns the number of taps; Tokens the number of distinct tokens.
func (tt *TapTable) Len() int    { return len(tt.order) }
func (tt *TapTable) Tokens() int { return len(tt.tokens) }

// Rules returns the rules the taps were resolved against.
func (tt *TapTable) Rules() *Rules { return tt.rules }

// AppendToken appends the taps of the k-th token (0 ≤ k < Tokens()) to dst.
func (tt *TapTable) AppendToken(dst []Tap, k int) []Tap {
	tok := tt.tokens[k]
	for _, ref := range tt.order[tt.first[k]:tt.first[k+1]] {
		bi, ti := ref>>tapRefBits, ref&(maxBlockLen-1)
		p := &tt.blocks[bi][ti]
		t := grow(&dst)
		*t = Tap{
			Token: tok, Time: p.at.time(), Mode: tt.names[p.mode].name, Category: tt.names[p.cat].name,
			Fare: p.base, HasFare: p.line < 0, Line: int(max(p.line, -p.line)), stamp: p.at,
			by: tt.rules, modeBit: tt.names[p.mode].modeBit, catBit: tt.names[p.cat].catBit,
			zoneMask: p.zoneMask, base: p.base,
		}
		if p.received != noReceived {
			t.Received = timeUnix(p.received)
		}
		t.jr = -1
		if stops := tt.stops[bi]; stops != nil && stops[ti]>>stopRoleShift != 0 {
			w := stops[ti]
			role := uint8(w >> stopRoleShift)
			st := &tt.names[w&(1<<stopRoleShift-1)]
			t.role, t.Stop, t.stopID = role, st.name, st.stationID
			t.Role = RoleOn
			if role == roleOff {
				t.Role = RoleOff
			}
			t.jr = int8(tt.rules.journeyRule(t.modeBit))
		}
	}
	return dst
}

// Source returns a TokenSource over the table's tokens in order.
func (tt *TapTable) Source() TokenSource {
	k := 0
	return func(dst []Tap) ([]Tap, error) {
		if k == len(tt.tokens) {
			return dst, io.EOF
		}
		k++
		return tt.AppendToken(dst, k-1), nil
	}
}

// ReadTapTable reads a taps file (the format of ParseTaps, with the same
// errors) into a TapTable, parsing blocks of lines on workers goroutines
// (0: GOMAXPROCS). Memory: the table plus a few blocks of input in flight.
func ReadTapTable(ctx context.Context, rd io.Reader, r *Rules, workers int) (*TapTable, error) {
	br := &blockReader{r: rd}
	lay, err := br.readHeader()
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tr := newTableReader(r, lay)
	blocks, err := tr.parse(ctx, br, workers)
	if err != nil {
		return nil, err
	}
	return tr.assemble(blocks, workers)
}

// tableBlockSize is the size of the blocks of input parsed in parallel (a
// variable so that tests can cut small files into many blocks).
var tableBlockSize = 1 << 20

// tableReader holds what parsing workers share: the token and name tables.
type tableReader struct {
	r      *Rules
	lay    tapLayout
	seed   maphash.Seed
	shards [tokenShards]tokenShard

	nameMu  sync.Mutex
	nameIDs map[string]uint32
	names   []tapName
}

const (
	tokenShardBits = 6
	tokenShards    = 1 << tokenShardBits
)

// tokenShard is an open-addressing hash set of tokens. A slot holds the
// upper half of the token's hash and its id + 1 (0: empty), so that a probe
// touches 8 bytes and compares token bytes only on a hash match. It is the
// hottest structure of a large file: one lookup per tap, mostly cache misses.
type tokenShard struct {
	mu    sync.Mutex
	slots []uint64
	toks  []string
	_     [64]byte // keep shards on separate cache lines
}

func newTableReader(r *Rules, lay tapLayout) *tableReader {
	tr := &tableReader{r: r, lay: lay, seed: maphash.MakeSeed(), nameIDs: map[string]uint32{"": 0}}
	tr.names = []tapName{{name: "", modeBit: bit(r.modes, ""), catBit: bit(r.categories, "")}}
	for i := range tr.shards {
		tr.shards[i].slots = make([]uint64, 256)
	}
	return tr
}

// token interns a token: the id holds the shard in its low bits.
func (tr *tableReader) token(b []byte) (uint32, error) {
	h := maphash.Bytes(tr.seed, b)
	sh := uint32(h) & (tokenShards - 1)
	s := &tr.shards[sh]
	s.mu.Lock()
	id, err := s.intern(tr.seed, h, b)
	s.mu.Unlock()
	return id<<tokenShardBits | sh, err
}

func (s *tokenShard) intern(seed maphash.Seed, h uint64, b []byte) (uint32, error) {
	mask := uint64(len(s.slots) - 1)
	tag := h >> 32
	for i := (h >> tokenShardBits) & mask; ; i = (i + 1) & mask {
		v := s.slots[i]
		if v == 0 {
			if len(s.toks) >= 1<<(32-tokenShardBits)-1 {
				return 0, errors.New("too many distinct tokens")
			}
			id := uint32(len(s.toks))
			s.toks = append(s.toks, string(b))
			s.slots[i] = tag<<32 | uint64(id+1)
			if 2*len(s.toks) > len(s.slots) {
				s.grow(seed)
			}
			return id, nil
		}
		if v>>32 == tag {
			if id := uint32(v) - 1; s.toks[id] == string(b) {
				return id, nil
			}
		}
	}
}

func (s *tokenShard) grow(seed maphash.Seed) {
	slots := make([]uint64, 2*len(s.slots))
	mask := uint64(len(slots) - 1)
	for id, tok := range s.toks {
		h := maphash.String(seed, tok)
		i := (h >> tokenShardBits) & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = h>>32<<32 | uint64(id+1)
	}
	s.slots = slots
}

// nameRef is a worker's cached copy of an interned name.
type nameRef struct {
	id              uint32
	modeBit, catBit uint64
}

// name interns a mode or category name, through a worker's own cache: a
// few names, compared in order (a file has a handful of modes), then a map.
func (tr *tableReader) name(pw *tableWorker, b []byte) nameRef {
	for i := range pw.recent {
		if pw.recent[i].name == string(b) {
			return pw.recent[i].ref
		}
	}
	cache := pw.names
	if ref, ok := cache[string(b)]; ok {
		return ref
	}
	tr.nameMu.Lock()
	id, ok := tr.nameIDs[string(b)]
	if !ok {
		s := string(b)
		id = uint32(len(tr.names))
		tr.nameIDs[s] = id
		tr.names = append(tr.names, tapName{name: s, modeBit: bit(tr.r.modes, s), catBit: bit(tr.r.categories, s), stationID: tr.r.stations[s]})
	}
	n := tr.names[id]
	tr.nameMu.Unlock()
	ref := nameRef{id: id, modeBit: n.modeBit, catBit: n.catBit}
	cache[n.name] = ref
	if len(pw.recent) < 16 {
		pw.recent = append(pw.recent, recentName{n.name, ref})
	}
	return ref
}

type tableJob struct {
	seq   int
	block []byte
	first int
}

type tableBlock struct {
	taps  []packedTap
	stops []uint32
	err   error
}

// parse reads blocks on this goroutine and parses them on workers. On an
// error it stops reading; the error of the lowest line wins.
func (tr *tableReader) parse(ctx context.Context, br *blockReader, workers int) ([]tableBlock, error) {
	jobs := make(chan tableJob, workers)
	free := make(chan []byte, 2*workers)
	for i := 0; i < 2*workers; i++ {
		free <- make([]byte, 0, tableBlockSize)
	}
	var mu sync.Mutex
	var out []tableBlock
	failed := false
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			pw := tr.newWorker()
			for j := range jobs {
				taps, stops, err := pw.parseBlock(j.block, j.first)
				free <- j.block
				mu.Lock()
				for len(out) <= j.seq {
					out = append(out, tableBlock{})
				}
				out[j.seq] = tableBlock{taps: taps, stops: stops, err: err}
				failed = failed || err != nil
				mu.Unlock()
			}
		})
	}
	var readErr error
	for seq := 0; ; seq++ {
		mu.Lock()
		stop := failed
		mu.Unlock()
		if stop {
			break
		}
		if err := ctx.Err(); err != nil {
			readErr = err
			break
		}
		block, first, err := br.next(<-free)
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		jobs <- tableJob{seq: seq, block: block, first: first}
	}
	close(jobs)
	wg.Wait()
	var firstErr *TapsError
	for _, b := range out {
		var te *TapsError
		if b.err != nil && errors.As(b.err, &te) && (firstErr == nil || te.Line < firstErr.Line) {
			firstErr = te
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if readErr != nil {
		return nil, readErr
	}
	return out, nil
}

// tableWorker parses blocks into packed taps.
type tableWorker struct {
	tr     *tableReader
	rec    tapRecord
	names  map[string]nameRef
	recent []recentName
}

type recentName struct {
	name string
	ref  nameRef
}

func (tr *tableReader) newWorker() *tableWorker {
	return &tableWorker{tr: tr, names: map[string]nameRef{}}
}

func (pw *tableWorker) parseBlock(block []byte, first int) ([]packedTap, []uint32, error) {
	taps := make([]packedTap, 0, countLines(block))
	var stops []uint32
	tr := pw.tr
	err := eachLine(block, first, func(line []byte, n int) error {
		rec := &pw.rec
		if err := tr.lay.parseRecord(rec, line, n, tr.r.Currency); err != nil {
			return err
		}
		p, stop, err := pw.pack(rec, n)
		if err != nil {
			return err
		}
		if stop != 0 && stops == nil {
			stops = make([]uint32, len(taps), cap(taps))
		}
		if stops != nil {
			stops = append(stops, stop)
		}
		taps = append(taps, p)
		return nil
	})
	return taps, stops, err
}

// pack resolves a parsed row against the rules into a packedTap.
func (pw *tableWorker) pack(rec *tapRecord, n int) (p packedTap, stop uint32, err error) {
	tr := pw.tr
	tok, err := tr.token(rec.token)
	if err != nil {
		return packedTap{}, 0, &TapsError{Line: n, Column: "token", Err: err}
	}
	mode, cat := tr.name(pw, rec.mode), tr.name(pw, rec.category)
	p = packedTap{at: rec.time, received: noReceived, line: int32(n), tok: tok, mode: mode.id, cat: cat.id}
	if rec.received.set {
		p.received = rec.received.sec
	}
	for _, z := range rec.zones {
		p.zoneMask |= bit(tr.r.zones, string(z))
	}
	if rec.role != "" {
		st := tr.name(pw, rec.stop)
		if st.id >= 1<<stopRoleShift {
			return p, 0, &TapsError{Line: n, Column: "station", Err: errors.New("too many distinct names")}
		}
		stop = st.id | uint32(roleOf(rec.role))<<stopRoleShift
		if tr.r.journeyRule(mode.modeBit) >= 0 {
			// Priced as a journey (a tap-off's fare cell is its price).
			if rec.hasFare {
				p.line = -p.line
			}
			p.base = rec.fare
			return p, stop, nil
		}
	}
	if rec.hasFare {
		p.base, p.line = rec.fare, -p.line
		return p, stop, nil
	}
	base, ok := tr.r.fareFor(mode.modeBit, cat.catBit)
	if !ok {
		return p, 0, &TapsError{Line: n, Err: fmt.Errorf("%w: no fare column and no fare rule for mode %q, category %q", ErrNoFare, rec.mode, rec.category)}
	}
	p.base = base
	return p, stop, nil
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n + 1
}

// assemble orders the tokens and groups the taps by token: an index of
// 4 bytes a tap; the taps stay in their blocks.
func (tr *tableReader) assemble(blocks []tableBlock, workers int) (*TapTable, error) {
	tt := &TapTable{rules: tr.r, names: tr.names}
	if len(blocks) > maxBlocks {
		return nil, &TapsError{Err: fmt.Errorf("file too large: more than %d blocks of %d bytes", maxBlocks, tableBlockSize)}
	}
	rank := tr.rankTokens(tt, workers)
	counts := make([]uint32, len(tt.tokens)+1)
	total := 0
	for _, b := range blocks {
		if len(b.taps) > maxBlockLen {
			return nil, &TapsError{Err: fmt.Errorf("more than %d taps in a block", maxBlockLen)}
		}
		for i := range b.taps {
			p := &b.taps[i]
			p.tok = rank[p.tok&(tokenShards-1)][p.tok>>tokenShardBits]
			counts[p.tok+1]++
		}
		total += len(b.taps)
		tt.blocks = append(tt.blocks, b.taps)
		tt.stops = append(tt.stops, b.stops)
	}
	if total > math.MaxUint32 {
		return nil, &TapsError{Err: fmt.Errorf("more than %d taps", uint32(math.MaxUint32))}
	}
	for k := 1; k < len(counts); k++ {
		counts[k] += counts[k-1]
	}
	tt.first = slices.Clone(counts)
	tt.order = make([]uint32, total)
	for bi, b := range tt.blocks {
		for i := range b {
			k := b[i].tok
			tt.order[counts[k]] = uint32(bi)<<tapRefBits | uint32(i)
			counts[k]++
		}
	}
	return tt, nil
}

// rankTokens sorts the distinct tokens into tt.tokens and returns each
// interned id's rank, by shard. The shards are sorted in parallel, then
// merged.
func (tr *tableReader) rankTokens(tt *TapTable, workers int) [][]uint32 {
	type tok struct {
		s  string
		id uint32
	}
	parts := make([][]tok, workers)
	var wg sync.WaitGroup
	for w := range parts {
		wg.Go(func() {
			var p []tok
			for sh := w; sh < tokenShards; sh += workers {
				for i, s := range tr.shards[sh].toks {
					p = append(p, tok{s, uint32(i)<<tokenShardBits | uint32(sh)})
				}
			}
			slices.SortFunc(p, func(a, b tok) int { return strings.Compare(a.s, b.s) })
			parts[w] = p
		})
	}
	wg.Wait()
	for len(parts) > 1 {
		var next [][]tok
		for i := 0; i < len(parts); i += 2 {
			if i+1 == len(parts) {
				next = append(next, parts[i])
				continue
			}
			a, b := parts[i], parts[i+1]
			m := make([]tok, 0, len(a)+len(b))
			for len(a) > 0 && len(b) > 0 {
				if a[0].s < b[0].s {
					m, a = append(m, a[0]), a[1:]
				} else {
					m, b = append(m, b[0]), b[1:]
				}
			}
			next = append(next, append(append(m, a...), b...))
		}
		parts = next
	}
	rank := make([][]uint32, tokenShards)
	for sh := range rank {
		rank[sh] = make([]uint32, len(tr.shards[sh].toks))
		tr.shards[sh].slots = nil // the hash set is no longer needed
	}
	var all []tok
	if len(parts) == 1 {
		all = parts[0]
	}
	tt.tokens = make([]string, len(all))
	for i, t := range all {
		tt.tokens[i] = t.s
		rank[t.id&(tokenShards-1)][t.id>>tokenShardBits] = uint32(i)
	}
	return rank
}

// fareFor returns the price of the first fare rule matching the bits.
func (r *Rules) fareFor(modeBit, catBit uint64) (Amount, bool) {
	for i := range r.Fares {
		f := &r.Fares[i]
		if f.modeMask&modeBit != 0 && f.catMask&catBit != 0 {
			return f.Price, true
		}
	}
	return 0, false
}
