//go:build pcsc

package reader

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"github.com/stretchr/testify/require"
)

// atrT1b is a second contactless card, told apart from the first by its ATR.
var atrT1b = []byte{0x3B, 0x81, 0x80, 0x01, 0x80, 0x80}

func openReader(t testing.TB, opts Options) *Reader {
	t.Helper()
	need(t)
	if opts.Name == "" {
		opts.Name = pcsc.reader
	}
	r, err := Open(t.Context(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// present puts card into the slot; cleanup takes it out and waits until
// pcscd has seen it go, so the next test starts with an empty slot.
func present(t testing.TB, card VirtualCard, opts *VPCDOptions) *VPCDCard {
	t.Helper()
	p, err := PresentVPCD(t.Context(), pcsc.vpcd, card, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Remove()
		waitEmpty(t)
	})
	return p
}

func waitCard(t testing.TB, r *Reader) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := r.WaitCard(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// waitEmpty waits until pcscd reports no card in the test slot.
func waitEmpty(t testing.TB) {
	t.Helper()
	sc, err := scard.EstablishContext()
	if err != nil {
		return // pcscd is down: nothing to wait for
	}
	defer sc.Release()
	rs := []scard.ReaderState{{Reader: pcsc.reader, CurrentState: scard.StateUnaware}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := sc.GetStatusChange(rs, time.Second); err != nil && !errors.Is(err, scard.ErrTimeout) {
			return
		}
		if rs[0].EventState&scard.StatePresent == 0 {
			return
		}
		rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
	}
	t.Errorf("card still present in %q after 10 s", pcsc.reader)
}

func transmit(t testing.TB, s *Session, cmd ...byte) []byte {
	t.Helper()
	rsp, err := s.Transmit(t.Context(), cmd)
	require.NoError(t, err)
	return rsp
}

func TestList(t *testing.T) {
	need(t)
	names, err := List(t.Context())
	require.NoError(t, err)
	require.Contains(t, names, pcsc.reader)
}

func TestOpenNoReader(t *testing.T) {
	need(t)
	_, err := Open(t.Context(), Options{Name: "No Such Reader 42"})
	require.ErrorIs(t, err, ErrNoReader)
}

func TestPick(t *testing.T) {
	names := []string{"ACS ACR1252 1S CL Reader [ACR1252 PICC] 00 00", "ACS ACR1252 1S CL Reader [ACR1252 SAM] 00 01", "Virtual PCD 00 00"}
	for _, tc := range []struct{ want, got string }{
		{"", names[0]},
		{"Virtual PCD 00 00", names[2]},
		{"Virtual PCD", names[2]},
		{"ACS ACR1252 1S CL Reader [ACR1252 PICC]", names[0]},
	} {
		got, err := pick(names, tc.want)
		require.NoError(t, err, tc.want)
		require.Equal(t, tc.got, got)
	}
	for _, want := range []string{"ACS", "HID Omnikey"} { // ambiguous, absent
		_, err := pick(names, want)
		require.ErrorIs(t, err, ErrNoReader, want)
	}
	_, err := pick(nil, "")
	require.ErrorIs(t, err, ErrNoReader)
}

func TestSessionT1(t *testing.T) {
	r := openReader(t, Options{})
	card := newTestCard(atrT1)
	present(t, card, nil)
	s := waitCard(t, r)
	require.Equal(t, atrT1, s.ATR())
	require.Equal(t, "T=1", s.Protocol())
	require.Equal(t, pcsc.reader, s.Reader())

	// Not a payment card: the kernel sees the 6A82 and rejects the card.
	require.Equal(t, []byte{0x6A, 0x82}, transmit(t, s, selectPPSE()...))
	require.Equal(t, []byte{0xCA, 0xFE, 0x90, 0x00}, transmit(t, s, 0x80, insEcho, 0, 0, 2, 0xCA, 0xFE, 0))
	// Under T=1 the transport leaves 61xx and 6Cxx to the kernel.
	require.Equal(t, []byte{0x61, 0x08}, transmit(t, s, 0x80, insChain, 0, 0, 0))
	require.Equal(t, []byte{0x6C, 0x04}, transmit(t, s, 0x80, insWrongL, 0, 0, 0))

	// A malformed command is refused before it reaches the card, and the
	// session stays usable.
	_, err := s.Transmit(t.Context(), []byte{0x00, 0xA4})
	require.ErrorIs(t, err, ErrBadAPDU)
	_, err = s.Transmit(t.Context(), nil)
	require.ErrorIs(t, err, ErrBadAPDU)
	require.Equal(t, []byte{0x6D, 0x00}, transmit(t, s, 0x80, 0x10, 0, 0))

	ons, _, _, _ := card.counts()
	require.GreaterOrEqual(t, ons, 1, "pcscd powered the card")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, err = s.Transmit(t.Context(), selectPPSE())
	require.ErrorIs(t, err, ErrClosed)
}

func TestSessionT0HandlesGetResponse(t *testing.T) {
	r := openReader(t, Options{})
	present(t, newTestCard(atrT0), nil)
	s := waitCard(t, r)
	require.Equal(t, "T=0", s.Protocol())
	require.Equal(t, append(slices.Clone(chainData), 0x90, 0x00), transmit(t, s, 0x80, insChain, 0, 0, 0))
	require.Equal(t, []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x90, 0x00}, transmit(t, s, 0x80, insWrongL, 0, 0, 0))
	require.Equal(t, []byte{0x6A, 0x82}, transmit(t, s, selectPPSE()...))
}

func TestCardRemovedMidAPDU(t *testing.T) {
	r := openReader(t, Options{})
	p := present(t, newTestCard(atrT1), nil)
	s := waitCard(t, r)
	require.Equal(t, []byte{0x6A, 0x82}, transmit(t, s, selectPPSE()...))

	// The card leaves the field while it handles the command.
	_, err := s.Transmit(t.Context(), []byte{0x80, insTorn, 0, 0})
	require.ErrorIs(t, err, ErrCardRemoved)
	require.NotErrorIs(t, err, ErrCardComm)
	<-p.Done()
	require.ErrorIs(t, p.Err(), ErrCardLeft)

	// The session stays torn.
	_, err = s.Transmit(t.Context(), selectPPSE())
	require.ErrorIs(t, err, ErrCardRemoved)
	require.NoError(t, s.WaitRemoval(t.Context()))
}

func TestCardRemovedBetweenAPDUs(t *testing.T) {
	r := openReader(t, Options{})
	p := present(t, newTestCard(atrT1), nil)
	s := waitCard(t, r)
	require.Equal(t, []byte{0x6A, 0x82}, transmit(t, s, selectPPSE()...))
	require.NoError(t, p.Remove())
	_, err := s.Transmit(t.Context(), selectPPSE())
	require.ErrorIs(t, err, ErrCardRemoved)
}

func TestSlowCardTimesOutAndIsNotTorn(t *testing.T) {
	r := openReader(t, Options{TransmitTimeout: 200 * time.Millisecond})
	card := newTestCard(atrT1)
	p := present(t, card, nil)
	s := waitCard(t, r)
	card.mu.Lock()
	card.delay = 2 * time.Second
	card.mu.Unlock()
	_, err := s.Transmit(t.Context(), selectPPSE())
	require.ErrorIs(t, err, ErrTimeout)
	require.NotErrorIs(t, err, ErrCardRemoved)
	p.Remove()
}

func TestTwoCardsOneAfterTheOther(t *testing.T) {
	r := openReader(t, Options{})
	for _, atr := range [][]byte{atrT1, atrT1b} {
		p, err := PresentVPCD(t.Context(), pcsc.vpcd, newTestCard(atr), nil)
		require.NoError(t, err)
		s := waitCard(t, r)
		require.Equal(t, atr, s.ATR())
		require.Equal(t, []byte{0x6A, 0x82}, transmit(t, s, selectPPSE()...))
		require.NoError(t, p.Remove())
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		require.NoError(t, s.WaitRemoval(ctx))
		cancel()
		require.NoError(t, s.Close())
	}
}

func TestWaitCardCancelled(t *testing.T) {
	r := openReader(t, Options{Poll: 10 * time.Second}) // only SCardCancel can end the wait early
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := r.WaitCard(ctx)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = r.WaitCard(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	time.AfterFunc(100*time.Millisecond, func() { r.Close() })
	_, err = r.WaitCard(t.Context())
	require.ErrorIs(t, err, ErrClosed)
}

func TestWaitRemovalCancelled(t *testing.T) {
	r := openReader(t, Options{})
	present(t, newTestCard(atrT1), nil)
	s := waitCard(t, r)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.WaitRemoval(ctx), context.DeadlineExceeded)
}

// The gate waits for a card while pcscd restarts under it (an upgrade, a
// crash): it reconnects by itself and the next card taps.
func TestPCSCDRestartUnderWaitingGate(t *testing.T) {
	need(t)
	if pcsc.cmd == nil {
		t.Skip("pcscd belongs to someone else (FAREGATE_VPCD): restart test needs the private pcscd")
	}
	r := openReader(t, Options{Poll: 100 * time.Millisecond})

	// A session open while pcscd goes away fails as "no service", not torn.
	p := present(t, newTestCard(atrT1), nil)
	s := waitCard(t, r)
	pcsc.stop()
	_, err := s.Transmit(t.Context(), selectPPSE())
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrCardRemoved)
	p.Remove()

	_, err = List(t.Context())
	require.ErrorIs(t, err, ErrNoService)
	_, err = Open(t.Context(), Options{Name: pcsc.reader})
	require.ErrorIs(t, err, ErrNoService)

	type result struct {
		s   *Session
		err error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		s, err := r.WaitCard(ctx)
		got <- result{s, err}
	}()
	time.Sleep(300 * time.Millisecond) // the gate is waiting on a dead pcscd
	require.NoError(t, pcsc.start())
	present(t, newTestCard(atrT1b), nil)
	res := <-got
	require.NoError(t, res.err)
	defer res.s.Close()
	require.Equal(t, atrT1b, res.s.ATR())
	require.Equal(t, []byte{0x6A, 0x82}, transmit(t, res.s, selectPPSE()...))
}
