package reader

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// DefaultVPCD is where pcscd's vpcd driver (Debian vsmartcard-vpcd) waits
// for the card of its first slot; the second slot is on the next port.
const DefaultVPCD = "127.0.0.1:35963"

// VirtualCard is a card program that PresentVPCD puts into a vpcd slot.
// The software EMV card of emv/cardsim is one.
//
// Transmit returning an error means the card left the field: the bridge
// closes the connection without answering, which pcscd sees as a card
// removed mid-APDU. A card that also has a Reset() method gets it on a warm
// reset (otherwise a reset is PowerOff then PowerOn), and one with a
// Present() method gets it each time ServeVPCD presents it again.
type VirtualCard interface {
	ATR() []byte
	PowerOn()
	PowerOff()
	Transmit(ctx context.Context, apdu []byte) ([]byte, error)
}

// VPCDOptions configure PresentVPCD and ServeVPCD. The zero value works.
type VPCDOptions struct {
	// DialTimeout bounds connecting to vpcd. Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds sending one answer to vpcd. Default 5 s.
	WriteTimeout time.Duration
	// NoQuickAck leaves TCP_QUICKACK off (to measure what it saves: Linux
	// delayed ACKs then cost up to 40 ms on some exchanges).
	NoQuickAck bool
	// Represent is how long ServeVPCD waits before presenting the card
	// again after it was removed or vpcd went away. Default 1 s.
	Represent time.Duration
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
}

func (o *VPCDOptions) withDefaults() VPCDOptions {
	var v VPCDOptions
	if o != nil {
		v = *o
	}
	if v.DialTimeout <= 0 {
		v.DialTimeout = 5 * time.Second
	}
	if v.WriteTimeout <= 0 {
		v.WriteTimeout = 5 * time.Second
	}
	if v.Represent <= 0 {
		v.Represent = time.Second
	}
	if v.Logger == nil {
		v.Logger = slog.New(slog.DiscardHandler)
	}
	return v
}

// Errors of the vpcd bridge.
var (
	// ErrVPCDProtocol: vpcd sent a message the protocol does not allow.
	ErrVPCDProtocol = errors.New("reader: vpcd protocol violation")
	// ErrCardLeft: the virtual card's Transmit failed, so the bridge took
	// the card out of the slot.
	ErrCardLeft = errors.New("reader: virtual card left the field")
)

// vpcd control messages: a message of exactly one byte.
const (
	vpcdPowerOff = 0
	vpcdPowerOn  = 1
	vpcdReset    = 2
	vpcdATR      = 4
)

// maxFrame is the largest message the 2-byte length can carry.
const maxFrame = 0xFFFF

// readFrame reads one length-prefixed vpcd message into buf (grown as
// needed, at most maxFrame bytes) and returns it. Messages of length 0, 2
// and 3 are neither a control byte nor an APDU.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 || n == 2 || n == 3 {
		return nil, fmt.Errorf("%w: message of %d bytes", ErrVPCDProtocol, n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// appendFrame appends msg with its length prefix to dst.
func appendFrame(dst, msg []byte) ([]byte, error) {
	if len(msg) > maxFrame {
		return dst, fmt.Errorf("%w: answer of %d bytes", ErrBadAPDU, len(msg))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...), nil
}

// VPCDCard is a virtual card present in a vpcd slot.
type VPCDCard struct {
	conn   net.Conn
	cancel context.CancelFunc // ends a Transmit in progress
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	err    error
	remove bool
}

// PresentVPCD connects card to the vpcd slot at addr (DefaultVPCD when
// ""), which pcscd then reports as a card in the field within its polling
// period, and serves vpcd's requests in the background until Remove, until
// ctx is done, until the card's Transmit fails or vpcd hangs up.
func PresentVPCD(ctx context.Context, addr string, card VirtualCard, opts *VPCDOptions) (*VPCDCard, error) {
	o := opts.withDefaults()
	if addr == "" {
		addr = DefaultVPCD
	}
	d := net.Dialer{Timeout: o.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("reader: connect to vpcd: %w", err)
	}
	quick := !o.NoQuickAck
	if quick {
		if err := setQuickAck(conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("reader: vpcd socket: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &VPCDCard{conn: conn, cancel: cancel, done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { p.Remove() })
	go func() {
		defer stop()
		defer cancel()
		err := serveConn(ctx, conn, card, quick, o)
		conn.Close()
		p.mu.Lock()
		if !p.remove {
			p.err = err
		}
		p.mu.Unlock()
		close(p.done)
	}()
	o.Logger.Debug("virtual card presented", "vpcd", addr)
	return p, nil
}

// Remove takes the card out of the slot (closes the connection, which
// pcscd sees as the card leaving the field) and waits until the bridge has
// stopped. It is safe to call more than once and from any goroutine.
func (p *VPCDCard) Remove() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.remove = true
		p.mu.Unlock()
		p.cancel()
		p.conn.Close()
	})
	<-p.done
	return nil
}

// Done is closed when the card is no longer in the slot.
func (p *VPCDCard) Done() <-chan struct{} { return p.done }

// Err says why the card left the slot once Done is closed: nil after
// Remove, ErrCardLeft when the card's Transmit failed, another error when
// vpcd hung up or broke the protocol.
func (p *VPCDCard) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ServeVPCD keeps card present in the vpcd slot at addr until ctx is done:
// after the card leaves (its Transmit failed) or vpcd goes away, it presents
// the card again after opts.Represent. It returns nil when ctx is done.
func ServeVPCD(ctx context.Context, addr string, card VirtualCard, opts *VPCDOptions) error {
	o := opts.withDefaults()
	for {
		if c, ok := card.(interface{ Present() }); ok {
			c.Present()
		}
		p, err := PresentVPCD(ctx, addr, card, &o)
		if err != nil {
			o.Logger.Warn("vpcd unreachable, retrying", "err", err)
		} else {
			<-p.Done()
			if err := p.Err(); err != nil {
				o.Logger.Info("virtual card out of the slot", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Represent):
		}
	}
}

// serveConn answers vpcd until the connection ends. It returns ErrCardLeft
// when the card's Transmit fails, nil when vpcd closed the connection.
func serveConn(ctx context.Context, conn net.Conn, card VirtualCard, quick bool, o VPCDOptions) error {
	var in io.Reader = conn
	if quick {
		in = quickAckReader{conn}
	}
	br := bufio.NewReaderSize(in, 512)
	var buf, out []byte
	for {
		msg, err := readFrame(br, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		buf = msg[:0]
		var answer []byte
		if len(msg) == 1 {
			switch msg[0] {
			case vpcdPowerOff:
				card.PowerOff()
			case vpcdPowerOn:
				card.PowerOn()
			case vpcdReset:
				if r, ok := card.(interface{ Reset() }); ok {
					r.Reset()
				} else {
					card.PowerOff()
					card.PowerOn()
				}
			case vpcdATR:
				answer = card.ATR()
			default:
				o.Logger.Debug("unknown vpcd control byte ignored", "byte", msg[0])
			}
			if msg[0] != vpcdATR {
				continue
			}
		} else {
			// The card may keep the slice: hand it a copy.
			answer, err = card.Transmit(ctx, append([]byte(nil), msg...))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrCardLeft, err)
			}
			if len(answer) < 2 {
				answer = []byte{0x6F, 0x00} // no precise diagnosis
			}
		}
		if out, err = appendFrame(out[:0], answer); err != nil {
			return err
		}
		conn.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
		if _, err := conn.Write(out); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// quickAckReader turns TCP_QUICKACK on again after every read from the
// socket. Linux drops quick-ACK mode by itself once the connection looks
// interactive, and vpcd (Debian's 3.3) sends the 2-byte length and the APDU
// in two writes: pcscd's socket has Nagle on, so the APDU waits until the
// length is acknowledged, and a delayed ACK holds it for ~40 ms. Setting
// the flag also sends an ACK that is due at once.
type quickAckReader struct{ conn net.Conn }

func (q quickAckReader) Read(p []byte) (int, error) {
	n, err := q.conn.Read(p)
	setQuickAck(q.conn)
	return n, err
}
