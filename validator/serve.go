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
	// QR is the text a QR scanner read (one line, CR/LF stripped), when
	// Card is nil: Station.TapQR decides it (docs/qr.md).
	QR string
}

// Source presents credentials to the gate one at a time: a PC/SC reader,
// a QR scanner, or a stream of software cards for tests and the demo.
// A gate with several sources runs one Serve per source on the same
// Station; the journal serialises their taps.
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
		var out Outcome
		if p.Card != nil {
			out = st.Tap(tctx, p.Card)
		} else {
			out = st.TapQR(tctx, p.QR)
		}
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
