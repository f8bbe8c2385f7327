package capping

import (
	"context"
	"io"
	"runtime"
	"sync"
)

// TokenSource yields the taps of one token per call: it appends them to dst
// and returns the extended slice, or io.EOF after the last token. A back
// office reads them from its store ordered by token (and service day);
// TapTable.Source reads them from a taps file. Each token must come once,
// with all its taps: a token given twice is rated twice, as two riders
// (RateStream cannot tell without holding every token).
type TokenSource func(dst []Tap) ([]Tap, error)

// Rated is one token's rating as RateStream hands it over.
type Rated struct {
	Taps  []Tap  // the token's taps as the source gave them; Leg.Tap indexes them
	Rider *Rider // the rating: legs, days, settlement runs, cap windows
	Out   []byte // what StreamOptions.Format appended for this token
}

// StreamOptions tune RateStream. The zero value works.
type StreamOptions struct {
	// Workers is the number of goroutines rating tokens; 0 means GOMAXPROCS.
	Workers int
	// Format, when set, runs on the rating goroutine right after a token is
	// rated and appends what is to be written for it; the bytes reach emit
	// as Rated.Out, in order. It lets output be formatted in parallel. It
	// must not keep rt or anything it holds.
	Format func(dst []byte, rt *Rated) []byte
}

// streamBatchTaps is how many taps a batch of tokens collects before it is
// handed to a worker: large enough to amortise the hand-over, small enough
// that the batches in flight stay a few megabytes.
const streamBatchTaps = 4096

// RateStream rates every token that src yields, on opt.Workers goroutines,
// and calls emit on the calling goroutine with each token's rating in the
// order src yielded the tokens. Memory is a bounded number of batches of
// tokens in flight, whatever the length of the stream: each rating is
// released once emit returns. rt and all it holds are reused afterwards.
// The first error — of src, of rating, of emit or of ctx — ends the stream
// and is returned; the goroutines are gone when RateStream returns.
func RateStream(ctx context.Context, r *Rules, src TokenSource, opt StreamOptions, emit func(rt *Rated) error) error {
	return rateStream(ctx, r, src, nil, opt, emit)
}

// Rate rates every token of the table as RateStream does, in token order;
// the workers also unpack the taps, so that no single goroutine does.
func (tt *TapTable) Rate(ctx context.Context, opt StreamOptions, emit func(rt *Rated) error) error {
	return rateStream(ctx, tt.rules, nil, tt, opt, emit)
}

func rateStream(ctx context.Context, r *Rules, src TokenSource, table *TapTable, opt StreamOptions, emit func(rt *Rated) error) error {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &stream{
		r: r, src: src, table: table, format: opt.Format,
		free:  make(chan *streamBatch, 2*workers+2),
		work:  make(chan *streamBatch, 2*workers+2),
		order: make(chan *streamBatch, 2*workers+2),
		stop:  make(chan struct{}),
	}
	for i := 0; i < cap(s.free); i++ {
		s.free <- &streamBatch{taps: make([]Tap, 0, streamBatchTaps+64)}
	}
	var wg sync.WaitGroup
	wg.Go(s.produce)
	for w := 0; w < workers; w++ {
		wg.Go(s.rate)
	}
	err := s.consume(ctx, emit)
	close(s.stop)
	wg.Wait()
	return err
}

type stream struct {
	r      *Rules
	src    TokenSource
	table  *TapTable // instead of src: workers unpack tokens from it
	format func([]byte, *Rated) []byte
	// tableNext is the next token of the table to hand out (producer only).
	tableNext int
	free      chan *streamBatch // batches to fill
	work      chan *streamBatch // filled, to rate
	order     chan *streamBatch // filled, in source order, to emit
	stop      chan struct{}     // closed when the consumer is done
}

// streamBatch is a run of consecutive tokens.
type streamBatch struct {
	kLo, kHi int // for a table: tokens kLo..kHi-1, unpacked by the worker
	taps     []Tap
	ends     []int // token i: taps[ends[i-1]:ends[i]]
	riders   []Rider
	out      []byte
	outEnd   []int
	err      error
	done     chan struct{}
}

func (b *streamBatch) token(i int) (lo, hi int) {
	if i > 0 {
		lo = b.ends[i-1]
	}
	return lo, b.ends[i]
}

// produce fills batches from the source, in order.
func (s *stream) produce() {
	defer close(s.work)
	defer close(s.order)
	for eof := false; !eof; {
		var b *streamBatch
		select {
		case b = <-s.free:
		case <-s.stop:
			return
		}
		b.taps, b.ends, b.out, b.outEnd, b.err = b.taps[:0], b.ends[:0], b.out[:0], b.outEnd[:0], nil
		b.done = make(chan struct{})
		if s.table != nil {
			eof = s.nextTableBatch(b)
		}
		for s.table == nil && len(b.taps) < streamBatchTaps {
			taps, err := s.src(b.taps)
			if err != nil {
				eof = true
				if err != io.EOF {
					b.err = err
				}
				break
			}
			if len(taps) > len(b.taps) {
				b.taps = taps
				b.ends = append(b.ends, len(taps))
			}
		}
		for _, ch := range []chan *streamBatch{s.order, s.work} {
			select {
			case ch <- b:
			case <-s.stop:
				return
			}
		}
	}
}

// nextTableBatch hands the next tokens of the table to b.
func (s *stream) nextTableBatch(b *streamBatch) (eof bool) {
	tt := s.table
	if b.kLo = s.tableNext; b.kLo == len(tt.tokens) {
		b.kHi = b.kLo
		return true
	}
	n := 0
	k := b.kLo
	for ; k < len(tt.tokens) && n < streamBatchTaps; k++ {
		n += int(tt.first[k+1] - tt.first[k])
	}
	b.kHi, s.tableNext = k, k
	return k == len(tt.tokens)
}

// rate rates batches until the producer is done.
func (s *stream) rate() {
	e := NewEngine(s.r)
	rt := new(Rated)
	for b := range s.work {
		if b.err == nil {
			b.err = s.rateBatch(e, rt, b)
		}
		close(b.done)
	}
}

func (s *stream) rateBatch(e *Engine, rt *Rated, b *streamBatch) error {
	if s.table != nil {
		for k := b.kLo; k < b.kHi; k++ {
			b.taps = s.table.AppendToken(b.taps, k)
			b.ends = append(b.ends, len(b.taps))
		}
	}
	for len(b.riders) < len(b.ends) {
		b.riders = append(b.riders, Rider{})
	}
	for i := range b.ends {
		lo, hi := b.token(i)
		rd := &b.riders[i]
		if err := e.Rate(rd, b.taps[lo:hi]); err != nil {
			return err
		}
		if s.format != nil {
			*rt = Rated{Taps: b.taps[lo:hi], Rider: rd}
			b.out = s.format(b.out, rt)
			b.outEnd = append(b.outEnd, len(b.out))
		}
	}
	return nil
}

// consume emits the rated batches in source order.
func (s *stream) consume(ctx context.Context, emit func(*Rated) error) error {
	var rt Rated
	for b := range s.order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			return b.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := range b.ends {
			lo, hi := b.token(i)
			rt = Rated{Taps: b.taps[lo:hi], Rider: &b.riders[i]}
			if s.format != nil {
				olo := 0
				if i > 0 {
					olo = b.outEnd[i-1]
				}
				rt.Out = b.out[olo:b.outEnd[i]]
			}
			if err := emit(&rt); err != nil {
				return err
			}
		}
		s.free <- b
	}
	return nil
}
