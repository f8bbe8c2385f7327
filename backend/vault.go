package backend

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"

	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// Vault errors. Deliberately free of card data.
var (
	// ErrNoCardData: the vault holds no card data for the token.
	ErrNoCardData = errors.New("backend: vault: no card data for the token")
	// ErrCardMismatch: the sealed card data does not belong to the token
	// it was uploaded with.
	ErrCardMismatch = errors.New("backend: vault: card data does not match its token")
	// ErrNoTokenKey: the vault needs the agency's token key for this.
	ErrNoTokenKey = errors.New("backend: vault: no token key")
)

// Vault is the payment vault: the one component that opens the card data
// gates seal (tap.OpenCardData). It keeps each token's newest sealed card
// data as the gate sealed it (HPKE to the vault key, so encrypted at rest
// and bound to its tap) and opens it only when the acquirer link asks for
// the card behind a token. Everything else in the back office uses the
// token.
type Vault struct {
	store    Store
	key      *ecdh.PrivateKey
	tokenKey []byte
}

// NewVault returns the vault over store with its private key. tokenKey,
// the agency's token key, is optional: with it the vault checks that the
// card it opens has the token it was filed under, and can look riders up
// by PAN.
func NewVault(store Store, key *ecdh.PrivateKey, tokenKey []byte) *Vault {
	return &Vault{store: store, key: key, tokenKey: tokenKey}
}

// CardData returns the card data the acquirer needs to charge token.
func (v *Vault) CardData(ctx context.Context, token rider.Token) (tap.CardData, error) {
	sc, ok, err := v.store.SealedCard(ctx, token)
	if err != nil {
		return tap.CardData{}, err
	}
	if !ok {
		return tap.CardData{}, ErrNoCardData
	}
	c, err := tap.OpenCardData(v.key, sc.Gate, sc.TapID, sc.Sealed)
	if err != nil {
		return tap.CardData{}, fmt.Errorf("backend: vault: tap %s: %w", sc.TapID, err)
	}
	if v.tokenKey != nil && rider.NewToken(v.tokenKey, c.PAN, psnOrZero(c.PSN)) != token {
		clear([]byte(c.PAN)) // best effort; strings are immutable in Go
		return tap.CardData{}, fmt.Errorf("%w: tap %s", ErrCardMismatch, sc.TapID)
	}
	return c, nil
}

// TokenOf computes the token of a card, for a rider look-up by PAN: the
// PAN goes no further than this call.
func (v *Vault) TokenOf(pan, psn string) (rider.Token, error) {
	if v.tokenKey == nil {
		return rider.Token{}, ErrNoTokenKey
	}
	return rider.NewToken(v.tokenKey, pan, psnOrZero(psn)), nil
}

func psnOrZero(psn string) string {
	if psn == "" {
		return "00"
	}
	return psn
}
