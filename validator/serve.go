package validator

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/faregate/faregate/emv"
)

// Presentation is one credential presented at the gate.
type Presentation struct {
	// Card is the EMV card in the reader's field.
	Card emv.Transceiver
	// Release, when not nil, is called once the tap is decided and
	// journaled (a reader waits there for the card to leave).
	Release func()
	// A scanned QR credential (--qr-from, docs/qr.md) will be a second
	// field here, with its own decision path in Station.
}

// Source presents credentials to the gate one at a time: a PC/SC reader,
// or a stream of software cards for tests and the demo.
type Source interface {
	// Next blocks until a credential is presented. It returns io.EOF when
	// no more will come, and ctx.Err() when ctx is done.
	Next(ctx context.Context) (Presentation, error)
}

// drainTap bounds a tap that goes on after Serve's context is done.
const drainTap = 5 * time.Second

// Serve taps every credential src presents through st and hands each
// outcome to report, until src returns io.EOF (Serve returns nil), ctx is
// done (ctx.Err()) or src fails. A tap under way when ctx is cancelled
// still completes and is journaled and reported: that is how SIGTERM
// drains.
func Serve(ctx context.Context, src Source, st *Station, report func(Outcome) error) error {
	for {
		p, err := src.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTap)
		out := st.Tap(tctx, p.Card)
		cancel()
		if p.Release != nil {
			p.Release()
		}
		if err := report(out); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
