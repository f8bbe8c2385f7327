package emv

import "context"

// Transceiver exchanges one APDU with a card. The response ends with the
// status word SW1 SW2. A PC/SC reader, the vpcd bridge and the software card
// all satisfy it; the kernel needs nothing more.
//
// Transmit must not retain command after it returns (the kernel reuses its
// buffer); the kernel keeps the response, so Transmit must not reuse it.
type Transceiver interface {
	Transmit(ctx context.Context, command []byte) ([]byte, error)
}
