package validator

import (
	"context"
	"errors"
	"sync"

	"github.com/faregate/faregate/emv"
)

var (
	errNoKernel   = errors.New("validator: a kernel is required")
	errNoTokenKey = errors.New("validator: a deny list needs the agency token key")
	errNoKeys     = errors.New("validator: a CA public key list is required")
)

// Gate is one gate's decision loop: the kernel reads the card, offline data
// authentication checks it, the rules decide. It is safe for concurrent
// use by several readers.
type Gate struct {
	kernel *emv.Kernel
	rules  Rules
	taps   sync.Pool // *emv.Tap, reused between taps
}

// NewGate returns a gate running kernel under rules. Rules.TokenKey is
// required when Rules.DenyList is set.
func NewGate(kernel *emv.Kernel, rules Rules) (*Gate, error) {
	if kernel == nil {
		return nil, errNoKernel
	}
	if rules.DenyList != nil && len(rules.TokenKey) == 0 {
		return nil, errNoTokenKey
	}
	return &Gate{kernel: kernel, rules: rules}, nil
}

// Result is one tap at the gate.
type Result struct {
	Decision Decision
	// Token is the rider's token; zero when the card was not read far
	// enough to know it.
	Token emv.Token
	// Err is the kernel's error (a *emv.TapError) when the tap stopped.
	Err error
}

// Tap reads one card and decides. inspect, when not nil, sees the whole
// emv.Tap (card data included) before the gate reuses it: a caller that
// needs more than the Result copies it there.
func (g *Gate) Tap(ctx context.Context, card emv.Transceiver, inspect func(*emv.Tap)) Result {
	t, _ := g.taps.Get().(*emv.Tap)
	if t == nil {
		t = new(emv.Tap)
	}
	defer g.taps.Put(t)
	err := g.kernel.TapInto(ctx, card, t)
	res := Result{Decision: g.rules.Decide(t, err), Err: err}
	if t.Card.PAN != "" && len(g.rules.TokenKey) > 0 {
		res.Token = t.Card.Token(g.rules.TokenKey)
	}
	if inspect != nil {
		inspect(t)
	}
	return res
}
