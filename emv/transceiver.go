package emv

import "context"

// Transceiver exchanges one APDU with a card. The response ends with the
// status word SW1 SW2. A PC/SC reader, the vpcd bridge and the software card
// all satisfy it; the kernel needs nothing more.
type Transceiver interface {
	Transmit(ctx context.Context, command []byte) ([]byte, error)
}
