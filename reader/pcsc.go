//go:build pcsc

package reader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// PCSC reports whether this binary was built with PC/SC support.
const PCSC = true

// List returns the names of the readers pcscd knows, in its order. No reader
// attached is an empty list, not an error.
func List(ctx context.Context) ([]string, error) {
	o := Options{}.withDefaults()
	sc, err := call(ctx, o.CallTimeout, "establish context", scard.EstablishContext, releaseLate)
	if err != nil {
		return nil, err
	}
	defer release(o.CallTimeout, sc)
	return listReaders(ctx, o.CallTimeout, sc)
}

// Reader is one PC/SC reader (or, with Options.Name "", whichever reader
// pcscd lists first). Its methods are meant for one goroutine at a time,
// except Close, which may be called from any goroutine and interrupts a
// WaitCard.
type Reader struct {
	opts Options
	life context.Context // done once Close is called
	kill context.CancelFunc

	mu     sync.Mutex
	sc     *scard.Context // nil until (re-)established
	name   string         // last resolved reader name
	closed bool
	down   bool // last attempt to reach pcscd or the reader failed (logged once)
}

// Open connects to pcscd and finds the reader named in opts. It fails with
// ErrNoService when pcscd is not running and ErrNoReader when the reader is
// not attached; once open, the Reader rides out both by itself.
func Open(ctx context.Context, opts Options) (*Reader, error) {
	r := &Reader{opts: opts.withDefaults()}
	r.life, r.kill = context.WithCancel(context.Background())
	sc, err := r.context(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	if _, err := r.resolve(ctx, sc); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Name is the name of the reader in use: the one asked for, or the first
// listed when Options.Name was "".
func (r *Reader) Name() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.name
}

// Close releases the PC/SC context and interrupts a WaitCard, which then
// returns ErrClosed. Sessions already handed out stay usable until pcscd
// drops them; close them first.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	sc := r.sc
	r.sc = nil
	r.mu.Unlock()
	r.kill()
	if sc == nil {
		return nil
	}
	sc.Cancel()
	return release(r.opts.CallTimeout, sc)
}

// WaitCard waits until a card is in the reader's field and connects to it
// (shared mode, T=1, or T=0 for a contact card). It returns at once when a
// card is already there: after a tap, WaitRemoval before waiting again.
//
// It keeps waiting through pcscd restarts, the reader being unplugged and
// plugged back in, and another program holding the card exclusively,
// re-establishing its PC/SC context as needed; mute cards are ignored. It
// returns the cause of ctx when ctx is done, ErrClosed after Close, and an
// error wrapping ErrCardComm when the card present cannot be connected to.
func (r *Reader) WaitCard(ctx context.Context) (*Session, error) {
	ctx, cancel := r.bind(ctx)
	defer cancel()
	for {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		sc, err := r.context(ctx)
		if err != nil {
			if r.retry(ctx, err) {
				continue
			}
			return nil, err
		}
		name, err := r.resolve(ctx, sc)
		if err == nil {
			err = r.waitPresent(ctx, sc, name)
		}
		var s *Session
		if err == nil {
			s, err = r.connect(ctx, sc, name)
		}
		switch {
		case err == nil:
			r.up()
			return s, nil
		case errors.Is(err, ErrCardRemoved):
			continue // gone before we could connect: wait for the next one
		case r.retry(ctx, err):
			continue
		default:
			return nil, err
		}
	}
}

// bind returns ctx, cancelled with ErrClosed when the Reader is closed.
func (r *Reader) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.life, func() { cancel(ErrClosed) })
	return ctx, func() { stop(); cancel(nil) }
}

// retry reports whether WaitCard should try again after err: pcscd gone,
// the reader gone or timed out. It drops a dead context, logs the first
// failure of a run and pauses for Options.Poll.
func (r *Reader) retry(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case errors.Is(err, ErrNoService), deadContext(err):
		r.dropContext()
	case errors.Is(err, ErrNoReader), errors.Is(err, ErrTimeout), errors.Is(err, ErrSharing):
	default:
		return false
	}
	r.mu.Lock()
	first := !r.down
	r.down = true
	r.mu.Unlock()
	if first {
		r.opts.Logger.Warn("reader unavailable, retrying", "reader", r.opts.Name, "err", err)
	}
	sleep(ctx, r.opts.Poll)
	return true
}

// up logs the recovery after a run of failures.
func (r *Reader) up() {
	r.mu.Lock()
	was := r.down
	r.down = false
	name := r.name
	r.mu.Unlock()
	if was {
		r.opts.Logger.Info("reader back", "reader", name)
	}
}

// context returns the PC/SC context, establishing it when there is none.
func (r *Reader) context(ctx context.Context) (*scard.Context, error) {
	r.mu.Lock()
	closed, sc := r.closed, r.sc
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if sc != nil {
		return sc, nil
	}
	sc, err := call(ctx, r.opts.CallTimeout, "establish context", scard.EstablishContext, releaseLate)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		go release(r.opts.CallTimeout, sc)
		return nil, ErrClosed
	}
	if r.sc != nil { // lost a race with another goroutine: keep theirs
		go release(r.opts.CallTimeout, sc)
		return r.sc, nil
	}
	r.sc = sc
	return sc, nil
}

// dropContext forgets the current context (pcscd restarted or stopped); the
// next call establishes a new one.
func (r *Reader) dropContext() {
	r.mu.Lock()
	sc := r.sc
	r.sc = nil
	r.mu.Unlock()
	if sc != nil {
		go release(r.opts.CallTimeout, sc)
	}
}

// resolve finds the reader to use: the exact name, else the one reader whose
// name starts with it (USB reader names end in slot numbers that move), or
// the first listed when no name was given.
func (r *Reader) resolve(ctx context.Context, sc *scard.Context) (string, error) {
	names, err := listReaders(ctx, r.opts.CallTimeout, sc)
	if err != nil {
		return "", err
	}
	name, err := pick(names, r.opts.Name)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.name = name
	r.mu.Unlock()
	return name, nil
}

func pick(names []string, want string) (string, error) {
	if want == "" {
		if len(names) == 0 {
			return "", fmt.Errorf("no reader attached: %w", ErrNoReader)
		}
		return names[0], nil
	}
	var found []string
	for _, n := range names {
		if n == want {
			return n, nil
		}
		if strings.HasPrefix(n, want) {
			found = append(found, n)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if len(found) > 1 {
		return "", fmt.Errorf("%q names %d readers: %w", want, len(found), ErrNoReader)
	}
	return "", fmt.Errorf("%q: %w", want, ErrNoReader)
}

// waitPresent waits until a card that answered its reset is in the field.
// A cancelled ctx interrupts the wait through SCardCancel.
func (r *Reader) waitPresent(ctx context.Context, sc *scard.Context, name string) error {
	stop := context.AfterFunc(ctx, func() { sc.Cancel() })
	defer stop()
	rs := []scard.ReaderState{{Reader: name, CurrentState: scard.StateUnaware}}
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		err := sc.GetStatusChange(rs, r.opts.Poll)
		switch {
		case err == nil:
		case errors.Is(err, scard.ErrTimeout):
			continue
		case errors.Is(err, scard.ErrCancelled):
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			continue
		default:
			return pcscErr("get status change", err)
		}
		ev := rs[0].EventState
		if ev&(scard.StateUnknown|scard.StateUnavailable) != 0 {
			return fmt.Errorf("%q unavailable: %w", name, ErrNoReader)
		}
		if ev&scard.StatePresent != 0 && ev&scard.StateMute == 0 {
			return nil
		}
		rs[0].CurrentState = ev &^ scard.StateChanged
	}
}

// connect opens a shared session with the card in the field.
func (r *Reader) connect(ctx context.Context, sc *scard.Context, name string) (*Session, error) {
	card, err := call(ctx, r.opts.CallTimeout, "connect", func() (*scard.Card, error) {
		return sc.Connect(name, scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0)
	}, func(c *scard.Card) { c.Disconnect(scard.LeaveCard) })
	if err != nil {
		return nil, err
	}
	s := &Session{r: r, sc: sc, card: card, name: name, proto: card.ActiveProtocol()}
	if s.proto != scard.ProtocolT0 && s.proto != scard.ProtocolT1 {
		s.Close()
		return nil, fmt.Errorf("reader: connect: unsupported protocol %d: %w", s.proto, ErrCardComm)
	}
	st, err := call(ctx, r.opts.CallTimeout, "status", card.Status, nil)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.atr = st.Atr
	if err := s.begin(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// begin starts the PC/SC transaction that holds the card for the tap: until
// End, no other PC/SC client on the gate can send the card an APDU or reset
// it between two of the kernel's (pcscd queues them). A card another client
// reset since we connected (SCARD_W_RESET_CARD) is reconnected once and the
// transaction begun again, as piv-go does: no APDU of this tap has been sent
// yet, so nothing is lost. A reset in the middle of a tap cannot be undone:
// Transmit reports it as ErrCardRemoved, a torn tap.
func (s *Session) begin(ctx context.Context) error {
	for reconnected := false; ; reconnected = true {
		_, err := call(ctx, s.r.opts.CallTimeout, "begin transaction", func() (struct{}, error) {
			return struct{}{}, s.card.BeginTransaction()
		}, func(struct{}) { s.card.EndTransaction(scard.LeaveCard) })
		if err == nil {
			s.held = true
			return nil
		}
		if reconnected || !errors.Is(err, scard.ErrResetCard) {
			return err
		}
		if _, err := call(ctx, s.r.opts.CallTimeout, "reconnect", func() (struct{}, error) {
			return struct{}{}, s.card.Reconnect(scard.ShareShared, scard.ProtocolT1|scard.ProtocolT0, scard.LeaveCard)
		}, nil); err != nil {
			return err
		}
		s.proto = s.card.ActiveProtocol()
	}
}

// End ends the session's PC/SC transaction: other clients may talk to the
// card again. Call it when the tap is over and the card may stay in the
// field; WaitRemoval and Close end it too. Ending twice is not an error.
func (s *Session) End() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end()
}

func (s *Session) end() error {
	if !s.held || s.closed {
		return nil
	}
	s.held = false
	return s.release("end transaction", s.card.EndTransaction)
}

// release runs a call that lets go of the card (end transaction,
// disconnect): when the card, the reader or pcscd is gone, it went with
// them and that is not an error.
func (s *Session) release(op string, fn func(scard.Disposition) error) error {
	_, err := call(context.Background(), s.r.opts.CallTimeout, op, func() (struct{}, error) {
		return struct{}{}, fn(scard.LeaveCard)
	}, nil)
	if errors.Is(err, ErrCardRemoved) || errors.Is(err, ErrNoService) || errors.Is(err, ErrNoReader) || deadContext(err) {
		return nil
	}
	return err
}

// Session is a connection to one card in the field. It satisfies the emv
// kernel's Transceiver. From WaitCard until End, WaitRemoval or Close it
// holds a PC/SC transaction: the tap has the card to itself. Close it when
// the tap is over.
type Session struct {
	r     *Reader
	sc    *scard.Context
	card  *scard.Card
	name  string
	atr   []byte
	proto scard.Protocol

	mu     sync.Mutex
	err    error // sticky: the session is unusable
	held   bool  // the PC/SC transaction of the tap is held
	closed bool
}

// ATR is the card's answer to reset (for a contactless card, the ATR the
// reader built from its ATS or ATQB, PC/SC part 3).
func (s *Session) ATR() []byte { return append([]byte(nil), s.atr...) }

// Protocol is "T=1" (every contactless card) or "T=0".
func (s *Session) Protocol() string {
	if s.proto == scard.ProtocolT0 {
		return "T=0"
	}
	return "T=1"
}

// Reader is the name of the reader holding the card.
func (s *Session) Reader() string { return s.name }

// Transmit sends one command APDU and returns the card's response, which
// ends with SW1 SW2.
//
// Under T=1 (every contactless card) responses are returned raw: 61xx and
// 6Cxx reach the caller, and the emv kernel handles them as it does for the
// software card. Under T=0 they are part of the transport (ISO/IEC 7816-3),
// so Transmit itself sends GET RESPONSE for 61xx and repeats the command
// with Le = xx for 6Cxx, and returns the final response.
//
// A card that left the field yields ErrCardRemoved; a present card that
// fails yields ErrCardComm; after either, or a timeout, the session is
// unusable and every later call returns the same error.
func (s *Session) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, fmt.Errorf("command of %d bytes: %w", len(cmd), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.err != nil {
		return nil, s.err
	}
	rsp, err := s.transmit(ctx, cmd)
	if err == nil && s.proto == scard.ProtocolT0 {
		rsp, err = s.t0(ctx, cmd, rsp)
	}
	if err != nil {
		s.err = s.classify(ctx, err)
		return nil, s.err
	}
	return rsp, nil
}

// transmit is one SCardTransmit, bounded by TransmitTimeout.
func (s *Session) transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	cmd = append([]byte(nil), cmd...) // C may still read it after a timeout
	rsp, err := call(ctx, s.r.opts.TransmitTimeout, "transmit", func() ([]byte, error) {
		return s.card.Transmit(cmd)
	}, nil)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 2 {
		return nil, fmt.Errorf("reader: transmit: response of %d bytes: %w", len(rsp), ErrCardComm)
	}
	return rsp, nil
}

// t0 completes a T=0 exchange: GET RESPONSE while the card says 61xx, one
// resend with the right Le on 6Cxx.
func (s *Session) t0(ctx context.Context, cmd, rsp []byte) ([]byte, error) {
	var data []byte
	resent := false
	for {
		sw1, sw2 := rsp[len(rsp)-2], rsp[len(rsp)-1]
		switch {
		case sw1 == 0x6C && !resent && len(data) == 0:
			resent = true
			again := append([]byte(nil), cmd...)
			if len(again) == 4 {
				again = append(again, sw2)
			} else {
				again[len(again)-1] = sw2
			}
			cmd = again
		case sw1 == 0x61:
			data = append(data, rsp[:len(rsp)-2]...)
			if len(data) > MaxResponse {
				return nil, fmt.Errorf("reader: GET RESPONSE chain over %d bytes: %w", MaxResponse, ErrBadAPDU)
			}
			cmd = []byte{0x00, 0xC0, 0x00, 0x00, sw2}
		default:
			return append(data, rsp...), nil
		}
		var err error
		if rsp, err = s.transmit(ctx, cmd); err != nil {
			return nil, err
		}
	}
}

// classify turns a transmit failure into what the gate acts on: a card
// that left the field is ErrCardRemoved even when the reader reported a
// communication error, because a contactless card pulled away mid-APDU
// often shows up as one before pcscd notices the field is empty.
func (s *Session) classify(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrCardRemoved):
		return err
	case errors.Is(err, ErrNoService), deadContext(err):
		s.r.dropContext()
		return err
	case errors.Is(err, ErrCardComm), errors.Is(err, ErrNoReader):
		if s.removed(ctx) {
			return fmt.Errorf("%w during transmit", ErrCardRemoved)
		}
	}
	return err
}

// removed waits up to RemovalGrace for pcscd to report the card gone.
func (s *Session) removed(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, s.r.opts.RemovalGrace)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.sc.Cancel() })
	defer stop()
	rs := []scard.ReaderState{{Reader: s.name, CurrentState: scard.StateUnaware}}
	for ctx.Err() == nil {
		err := s.sc.GetStatusChange(rs, remaining(ctx))
		if err != nil {
			if errors.Is(pcscErr("", err), ErrNoReader) {
				return true // the reader went with the card
			}
			break
		}
		ev := rs[0].EventState
		if ev&(scard.StateEmpty|scard.StateUnavailable|scard.StateUnknown) != 0 {
			return true
		}
		rs[0].CurrentState = ev &^ scard.StateChanged
	}
	// The card may have left and come back within the grace period: then
	// this handle reports the removal.
	_, err := call(context.Background(), s.r.opts.CallTimeout, "status", s.card.Status, nil)
	return errors.Is(err, ErrCardRemoved)
}

// WaitRemoval returns nil once the card has left the field (or the reader
// is gone), or the cause of ctx when ctx is done first.
func (s *Session) WaitRemoval(ctx context.Context) error {
	if err := s.End(); err != nil {
		return err
	}
	ctx, cancel := s.r.bind(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.sc.Cancel() })
	defer stop()
	rs := []scard.ReaderState{{Reader: s.name, CurrentState: scard.StateUnaware}}
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		err := s.sc.GetStatusChange(rs, s.r.opts.Poll)
		switch {
		case err == nil:
		case errors.Is(err, scard.ErrTimeout), errors.Is(err, scard.ErrCancelled):
			continue
		default:
			err = pcscErr("get status change", err)
			if errors.Is(err, ErrNoReader) {
				return nil
			}
			if errors.Is(err, ErrNoService) || deadContext(err) {
				s.r.dropContext()
				return nil // pcscd is gone, and the session with it
			}
			return err
		}
		ev := rs[0].EventState
		if ev&(scard.StateEmpty|scard.StateUnavailable|scard.StateUnknown) != 0 {
			return nil
		}
		rs[0].CurrentState = ev &^ scard.StateChanged
	}
}

// Close ends the session. The card is left as it is (SCARD_LEAVE_CARD):
// every tap starts with SELECT PPSE, which resets the card's application
// state, and pcscd powers an idle card down by itself. (A reset on
// disconnect also leaves pcscd 1.9.9 unable to see the next card after a
// T=0 card on the vpcd driver.) Closing a session whose card is gone is not
// an error.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	endErr := s.end()
	s.closed = true
	return errors.Join(endErr, s.release("disconnect", s.card.Disconnect))
}

// call runs fn, a PC/SC call nothing can interrupt, and stops waiting for
// it after timeout or when ctx is done. A result that arrives after that is
// handed to late (when not nil) so that it does not leak; scard errors are
// mapped to the package's errors.
func call[T any](ctx context.Context, timeout time.Duration, op string, fn func() (T, error), late func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var zero T
	select {
	case res := <-done:
		if res.err != nil {
			return zero, pcscErr(op, res.err)
		}
		return res.v, nil
	case <-t.C:
	case <-ctx.Done():
	}
	if late != nil {
		go func() {
			if res := <-done; res.err == nil {
				late(res.v)
			}
		}()
	}
	if ctx.Err() != nil {
		return zero, context.Cause(ctx)
	}
	return zero, fmt.Errorf("reader: %s: no answer from pcscd in %v: %w", op, timeout, ErrTimeout)
}

func listReaders(ctx context.Context, timeout time.Duration, sc *scard.Context) ([]string, error) {
	names, err := call(ctx, timeout, "list readers", sc.ListReaders, nil)
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	return names, err
}

func release(timeout time.Duration, sc *scard.Context) error {
	_, err := call(context.Background(), timeout, "release context", func() (struct{}, error) {
		return struct{}{}, sc.Release()
	}, nil)
	if err == nil || errors.Is(err, ErrNoService) || deadContext(err) {
		return nil
	}
	return err
}

func releaseLate(sc *scard.Context) { sc.Release() }

// pcscError is a PC/SC return code from one operation. Unwrap maps the
// codes callers act on to the package's sentinel errors.
type pcscError struct {
	op   string
	code scard.Error
}

func (e *pcscError) Error() string {
	msg := strings.TrimSuffix(strings.TrimPrefix(e.code.Error(), "scard: "), ".")
	return fmt.Sprintf("reader: %s: %s (0x%08X)", e.op, msg, uint32(e.code))
}

func (e *pcscError) Is(target error) bool {
	c, ok := target.(scard.Error)
	return ok && c == e.code
}

func (e *pcscError) Unwrap() error {
	switch e.code {
	case scard.ErrNoService, scard.ErrServiceStopped:
		return ErrNoService
	case scard.ErrUnknownReader, scard.ErrReaderUnavailable, scard.ErrNoReadersAvailable,
		scard.ErrReaderUnsupported:
		return ErrNoReader
	case scard.ErrRemovedCard, scard.ErrNoSmartcard, scard.ErrResetCard:
		return ErrCardRemoved
	case scard.ErrUnresponsiveCard, scard.ErrUnpoweredCard, scard.ErrUnsupportedCard,
		scard.ErrCommError, scard.ErrNotTransacted, scard.ErrCommDataLost,
		scard.ErrProtoMismatch, scard.ErrInvalidAtr, scard.ErrUnknownCard:
		return ErrCardComm
	case scard.ErrTimeout:
		return ErrTimeout
	case scard.ErrSharingViolation:
		return ErrSharing
	case scard.ErrInsufficientBuffer:
		return ErrBadAPDU
	}
	return nil
}

// pcscErr wraps err in a pcscError when it is a PC/SC return code.
func pcscErr(op string, err error) error {
	var code scard.Error
	if errors.As(err, &code) {
		return &pcscError{op: op, code: code}
	}
	return err
}

// deadContext reports an error that means the context or handle no longer
// exists in pcscd (it restarted).
func deadContext(err error) bool {
	return errors.Is(err, scard.ErrInvalidHandle)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return 0
	}
	return time.Second
}

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.TransmitTimeout <= 0 {
		o.TransmitTimeout = 2 * time.Second
	}
	if o.RemovalGrace <= 0 {
		o.RemovalGrace = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// checkCommand rejects command APDUs no card can receive.
func checkCommand(cmd []byte) error {
	if len(cmd) < 4 || len(cmd) > MaxCommand {
		return ErrBadAPDU
	}
	return nil
}
