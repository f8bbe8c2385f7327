package reader

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/emv"
)

// fakeVPCD plays pcscd's vpcd driver: it accepts one card connection.
type fakeVPCD struct {
	ln   net.Listener
	conn net.Conn
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return &fakeVPCD{ln: ln}
}

func (f *fakeVPCD) addr() string { return f.ln.Addr().String() }

func (f *fakeVPCD) accept(t *testing.T) {
	t.Helper()
	c, err := f.ln.Accept()
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	t.Cleanup(func() { c.Close() })
	f.conn = c
}

func (f *fakeVPCD) send(t *testing.T, msg ...byte) {
	t.Helper()
	out, err := appendFrame(nil, msg)
	require.NoError(t, err)
	_, err = f.conn.Write(out)
	require.NoError(t, err)
}

func (f *fakeVPCD) recv(t *testing.T) []byte {
	t.Helper()
	msg, err := readAnswer(f.conn)
	require.NoError(t, err)
	return msg
}

// readAnswer reads one answer as vpcd does: any length, 0 included.
func readAnswer(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(r, msg)
	return msg, err
}

func TestVPCDBridge(t *testing.T) {
	v := newFakeVPCD(t)
	card := newTestCard(atrT1)
	p, err := PresentVPCD(t.Context(), v.addr(), card, nil)
	require.NoError(t, err)
	v.accept(t)

	v.send(t, vpcdATR)
	require.Equal(t, atrT1, v.recv(t))
	v.send(t, vpcdPowerOn)
	v.send(t, vpcdReset)
	v.send(t, vpcdPowerOff)
	v.send(t, 0x7F) // unknown control bytes are ignored
	v.send(t, selectPPSE()...)
	require.Equal(t, []byte{0x6A, 0x82}, v.recv(t))
	v.send(t, 0x80, insEcho, 0, 0, 2, 0xCA, 0xFE, 0)
	require.Equal(t, []byte{0xCA, 0xFE, 0x90, 0x00}, v.recv(t))
	ons, offs, resets, apdus := card.counts()
	require.Equal(t, []int{1, 1, 1, 2}, []int{ons, offs, resets, apdus})

	require.NoError(t, p.Remove())
	require.NoError(t, p.Remove()) // twice is fine
	require.NoError(t, p.Err())
	_, err = readAnswer(v.conn)
	require.ErrorIs(t, err, io.EOF, "vpcd sees the card leave")
}

func TestVPCDCardLeaves(t *testing.T) {
	v := newFakeVPCD(t)
	p, err := PresentVPCD(t.Context(), v.addr(), newTestCard(atrT1), nil)
	require.NoError(t, err)
	v.accept(t)
	v.send(t, 0x00, insTorn, 0, 0)
	_, err = readAnswer(v.conn)
	require.ErrorIs(t, err, io.EOF, "no answer: the connection closes")
	<-p.Done()
	require.ErrorIs(t, p.Err(), ErrCardLeft)
	require.ErrorIs(t, p.Err(), errGone)
}

func TestVPCDHangUp(t *testing.T) {
	v := newFakeVPCD(t)
	p, err := PresentVPCD(t.Context(), v.addr(), newTestCard(atrT1), &VPCDOptions{NoQuickAck: true})
	require.NoError(t, err)
	v.accept(t)
	v.conn.Close()
	<-p.Done()
	require.NoError(t, p.Err())
}

func TestVPCDProtocolViolation(t *testing.T) {
	for _, frame := range [][]byte{
		{0x00, 0x00},             // empty message
		{0x00, 0x02, 0x00, 0xA4}, // neither control byte nor APDU
		{0x00, 0x09, 0x00, 0xA4}, // truncated, then EOF
	} {
		v := newFakeVPCD(t)
		p, err := PresentVPCD(t.Context(), v.addr(), newTestCard(atrT1), nil)
		require.NoError(t, err)
		v.accept(t)
		_, err = v.conn.Write(frame)
		require.NoError(t, err)
		v.conn.(*net.TCPConn).CloseWrite()
		<-p.Done()
		require.Error(t, p.Err(), "frame %X", frame)
	}
}

func TestVPCDContextEndsPresence(t *testing.T) {
	v := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(t.Context())
	p, err := PresentVPCD(ctx, v.addr(), newTestCard(atrT1), nil)
	require.NoError(t, err)
	v.accept(t)
	cancel()
	<-p.Done()
	require.NoError(t, p.Err())
}

func TestVPCDUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	_, err = PresentVPCD(t.Context(), addr, newTestCard(atrT1), nil)
	require.Error(t, err)
}

func TestServeVPCDPresentsAgain(t *testing.T) {
	v := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- ServeVPCD(ctx, v.addr(), newTestCard(atrT1), &VPCDOptions{Represent: 10 * time.Millisecond})
	}()
	v.accept(t)
	v.send(t, 0x00, insTorn, 0, 0) // the card leaves …
	_, err := readAnswer(v.conn)
	require.ErrorIs(t, err, io.EOF)
	v.accept(t) // … and comes back
	v.send(t, vpcdATR)
	require.Equal(t, atrT1, v.recv(t))
	cancel()
	require.NoError(t, <-done)
}

func TestAppendFrameBounds(t *testing.T) {
	_, err := appendFrame(nil, make([]byte, maxFrame+1))
	require.ErrorIs(t, err, ErrBadAPDU)
	out, err := appendFrame(nil, make([]byte, maxFrame))
	require.NoError(t, err)
	require.Len(t, out, maxFrame+2)
}

func TestReadFrameNoPanic(t *testing.T) {
	for _, in := range [][]byte{
		nil, {0x00}, {0x00, 0x00}, {0x00, 0x01}, {0x00, 0x03, 1, 2, 3},
		{0xFF, 0xFF}, {0xFF, 0xFF, 0x00}, {0x00, 0x04, 0, 0xA4, 4, 0},
	} {
		msg, err := readFrame(bytes.NewReader(in), nil)
		if err == nil {
			require.True(t, len(msg) == 1 || len(msg) >= 4, "input %X", in)
		}
	}
}

// FuzzReadFrame feeds vpcd's side of the stream to the decoder: no panic,
// every message it accepts is a control byte or at least an APDU header,
// and re-encoding it gives back the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	seed := func(msgs ...[]byte) []byte {
		var out []byte
		for _, m := range msgs {
			out, _ = appendFrame(out, m)
		}
		return out
	}
	f.Add(seed([]byte{vpcdATR}, []byte{vpcdPowerOn}, selectPPSE()))
	f.Add(seed([]byte{vpcdReset}, []byte{0x00, 0xC0, 0x00, 0x00, 0x08}))
	f.Add([]byte{0x00, 0x00})
	f.Add([]byte{0xFF, 0xFF, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		consumed := 0
		for {
			msg, err := readFrame(r, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrVPCDProtocol) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(msg) != 1 && len(msg) < 4 {
				t.Fatalf("accepted a %d-byte message", len(msg))
			}
			enc, err := appendFrame(nil, msg)
			if err != nil || !bytes.Equal(enc, in[consumed:consumed+len(enc)]) {
				t.Fatalf("re-encoding differs")
			}
			consumed += len(enc)
			buf = msg[:0]
		}
	})
}

// FuzzServeConn is a hostile vpcd: whatever it sends, the bridge answers
// or hangs up, and never panics.
func FuzzServeConn(f *testing.F) {
	f.Add([]byte{0x00, 0x01, vpcdATR, 0x00, 0x01, vpcdPowerOn, 0x00, 0x04, 0x00, insEcho, 0x00, 0x00})
	f.Add([]byte{0x00, 0x05, 0x00, insChain, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, insTorn, 0x00, 0x00})
	f.Add([]byte{0x00, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer b.Close()
		done := make(chan error, 1)
		go func() {
			done <- serveConn(context.Background(), a, newTestCard(atrT1), false, (*VPCDOptions)(nil).withDefaults())
			a.Close()
		}()
		go io.Copy(io.Discard, b)
		b.Write(in)
		b.Close()
		<-done
	})
}

func TestErrCardRemovedIsTheKernelsTornError(t *testing.T) {
	err := fmt.Errorf("transmit: %w", ErrCardRemoved)
	require.ErrorIs(t, err, ErrCardRemoved)
	require.ErrorIs(t, err, emv.ErrCardRemoved)
	require.NotErrorIs(t, ErrCardComm, emv.ErrCardRemoved)
}
