//go:build !pcsc

package reader

import "context"

// PCSC reports whether this binary was built with PC/SC support.
const PCSC = false

// Reader is a PC/SC reader. This binary was built without PC/SC support:
// see ErrNoPCSC.
type Reader struct{}

// Session is a connection to the card in a reader's field. This binary was
// built without PC/SC support: see ErrNoPCSC.
type Session struct{}

// List returns ErrNoPCSC: this binary was built without the pcsc tag.
func List(ctx context.Context) ([]string, error) { return nil, ErrNoPCSC }

// Open returns ErrNoPCSC: this binary was built without the pcsc tag.
func Open(ctx context.Context, opts Options) (*Reader, error) { return nil, ErrNoPCSC }

// Name returns "".
func (r *Reader) Name() string { return "" }

// WaitCard returns ErrNoPCSC.
func (r *Reader) WaitCard(ctx context.Context) (*Session, error) { return nil, ErrNoPCSC }

// Close returns nil.
func (r *Reader) Close() error { return nil }

// ATR returns nil.
func (s *Session) ATR() []byte { return nil }

// Protocol returns "".
func (s *Session) Protocol() string { return "" }

// Reader returns "".
func (s *Session) Reader() string { return "" }

// Transmit returns ErrNoPCSC.
func (s *Session) Transmit(ctx context.Context, cmd []byte) ([]byte, error) { return nil, ErrNoPCSC }

// WaitRemoval returns ErrNoPCSC.
func (s *Session) WaitRemoval(ctx context.Context) error { return ErrNoPCSC }

// Close returns nil.
func (s *Session) Close() error { return nil }

// End is a no-op without PC/SC support.
func (s *Session) End() error { return nil }
