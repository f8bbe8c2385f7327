package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/validator"
)

// maxQRLine bounds a scanner line: a QR code of the payload's version is
// at most qr.MaxTextSize characters; longer lines are cut here and then
// refused as malformed.
const maxQRLine = 4096

// maxQRConns bounds the scanner connections a unix:PATH source accepts at
// once.
const maxQRConns = 8

// openQRGate builds the gate's offline QR verifier from --qr-issuer and
// --qr-window, deciding deny-listed tokens against the replica.
func openQRGate(ctx context.Context, c validatorConfig, replica *denylist.Replica) (*qr.Gate, error) {
	var pubs []ed25519.PublicKey
	for _, p := range c.QRIssuers {
		b, err := readInput(ctx, "--qr-issuer", p, maxKeyFile)
		if err != nil {
			return nil, err
		}
		k, err := denylist.ParsePublicKey(b)
		if err != nil {
			return nil, usageErr("--qr-issuer %s: not an Ed25519 public key (want qr-issuer.pub from 'faregate keys qr')", p)
		}
		pubs = append(pubs, k)
	}
	is, err := qr.NewIssuers(pubs...)
	if err != nil {
		return nil, usageErr("--qr-issuer: %v", err)
	}
	o := qr.GateOptions{Issuers: is, Window: time.Duration(c.QRWindow) * time.Second}
	if replica != nil {
		o.DenyList = replica
	}
	g, err := qr.NewGate(o)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return g, nil
}

// openQRSource opens --qr-from: "-" (standard input), unix:PATH (a socket
// the gate listens on; each scanner bridge connects and writes lines) or
// a file (a serial or HID device, or a file of codes).
func openQRSource(ctx context.Context, from string, stdin io.Reader) (validator.Source, func(), error) {
	switch {
	case from == "-":
		return newQRLines(ctx, stdin), func() {}, nil
	case strings.HasPrefix(from, "unix:"):
		return listenQR(ctx, strings.TrimPrefix(from, "unix:"))
	default:
		f, err := os.Open(from)
		if err != nil {
			return nil, nil, usageErr("--qr-from: %w", err)
		}
		return newQRLines(ctx, f), func() { f.Close() }, nil
	}
}

// qrLines presents each line a scanner wrote as a QR code. Lines end at
// CR or LF (keyboard-wedge scanners send CR, serial ones often CRLF);
// nothing else is stripped; empty lines are skipped.
type qrLines struct {
	lines chan string
	mu    sync.Mutex
	err   error // why lines was closed, when not io.EOF
}

func newQRLines(ctx context.Context, r io.Reader) *qrLines {
	q := &qrLines{lines: make(chan string)}
	go func() {
		err := readQRLines(ctx, r, q.lines)
		q.mu.Lock()
		q.err = err
		q.mu.Unlock()
		close(q.lines)
	}()
	return q
}

// readQRLines sends every non-empty line of r to out until r ends (nil)
// or fails.
func readQRLines(ctx context.Context, r io.Reader, out chan<- string) error {
	br := bufio.NewReaderSize(r, maxQRLine)
	line := make([]byte, 0, maxQRLine)
	flush := func() bool {
		if len(line) == 0 {
			return true
		}
		select {
		case out <- string(line):
		case <-ctx.Done():
			return false
		}
		line = line[:0]
		return true
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			flush()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case b == '\r' || b == '\n':
			if !flush() {
				return ctx.Err()
			}
		case len(line) < maxQRLine:
			line = append(line, b)
			// default: the rest of an overlong line is dropped; the cut
			// line is refused as malformed.
		}
	}
}

func (q *qrLines) Next(ctx context.Context) (validator.Presentation, error) {
	select {
	case <-ctx.Done():
		return validator.Presentation{}, ctx.Err()
	case l, ok := <-q.lines:
		if ok {
			return validator.Presentation{QR: l}, nil
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return validator.Presentation{}, fmt.Errorf("--qr-from: %w", q.err)
	}
	return validator.Presentation{}, io.EOF
}

// listenQR listens on a unix socket (mode 0600) and presents the lines of
// every connection; it never ends by itself.
func listenQR(ctx context.Context, path string) (validator.Source, func(), error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) // a socket left by a gate that was killed
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, usageErr("--qr-from unix:%s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("--qr-from unix:%s: %w", path, err)
	}
	q := &qrLines{lines: make(chan string)}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			mu.Lock()
			if len(conns) >= maxQRConns {
				mu.Unlock()
				c.Close()
				continue
			}
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				readQRLines(ctx, c, q.lines) //nolint:errcheck // a scanner hanging up is normal
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			})
		}
	})
	closeFn := func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	return q, closeFn, nil
}
