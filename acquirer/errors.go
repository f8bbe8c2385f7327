package acquirer

import "errors"

var (
	// ErrUnpack: bytes from the network are not a message of Spec.
	ErrUnpack = errors.New("acquirer: cannot unpack message")
	// ErrMessage: a message unpacked but lacks an element its MTI requires,
	// or an element has an impossible value.
	ErrMessage = errors.New("acquirer: invalid message")
	// ErrRequest: a request cannot be built from what the caller gave
	// (unknown currency, amount out of range, no card data).
	ErrRequest = errors.New("acquirer: invalid request")
	// ErrNoResponse: the acquirer did not answer within the send timeout or
	// the connection failed with the request in flight. The client has
	// reversed the request (acknowledged) before returning this.
	ErrNoResponse = errors.New("acquirer: no response")
	// ErrReversalPending: a reversal was not acknowledged before the
	// context ended; the request it reverses may have been taken. See
	// ReversalPendingError.
	ErrReversalPending = errors.New("acquirer: reversal not acknowledged")
	// ErrUnavailable: no connection to the acquirer could be had before the
	// context ended. Nothing was sent.
	ErrUnavailable = errors.New("acquirer: acquirer unavailable")
	// ErrClosed: the client is closed.
	ErrClosed = errors.New("acquirer: client closed")
)
