package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/faregate/faregate"
	"github.com/faregate/faregate/emv/cardsim"
	"github.com/faregate/faregate/rider"
)

// demoSchemes are the good profiles of testdata/cards the riders' cards
// are personalised from, one scheme each.
var demoSchemes = []string{"visa-qvsdc", "mastercard-cda", "amex-cda", "discover-dda", "jcb-dda", "maestro-sda", "unionpay-qpboc"}

// demoRider is one rider: a software card of their own, the gate they
// start from and how often they travel.
type demoRider struct {
	name   string
	card   *cardsim.Card
	token  rider.Token
	home   int // index of the gate of the first ride
	perDay int // rides a day
}

// newDemoRiders personalises n cards over the schemes, each with a PAN of
// its own (the profile's, with the account digits changed and a new Luhn
// check digit) certified under the profile's test PKI.
func newDemoRiders(n int) ([]*demoRider, error) {
	riders := make([]*demoRider, 0, n)
	for i := range n {
		profile := demoSchemes[i%len(demoSchemes)]
		card, err := personaliseCard(profile, i+1)
		if err != nil {
			return nil, fmt.Errorf("rider %d (%s): %w", i+1, profile, err)
		}
		riders = append(riders, &demoRider{name: fmt.Sprintf("%s #%d", profile, i+1), card: card, home: i % 3, perDay: 1 + i%5})
	}
	return riders, nil
}

// personaliseCard makes a card of profile whose PAN has serial in its
// account digits.
func personaliseCard(profile string, serial int) (*cardsim.Card, error) {
	p, err := cardsim.LoadProfileFS(faregate.TestData, "testdata/cards/"+profile+".json")
	if err != nil {
		return nil, err
	}
	pan := profilePAN(p)
	if len(pan) < 13 {
		return nil, errors.New("no PAN in the profile")
	}
	digits := fmt.Sprintf("%06d", serial%1000000)
	fresh := pan[:len(pan)-7] + digits
	fresh += string(rune('0' + luhnDigit(fresh)))
	for a := range p.Applications {
		app := &p.Applications[a]
		for r := range app.Records {
			for d := range app.Records[r].Data {
				app.Records[r].Data[d].Value = replacePAN(app.Records[r].Data[d].Value, pan, fresh)
			}
		}
		for tag, v := range app.GPOData {
			app.GPOData[tag] = replacePAN(v, pan, fresh)
		}
	}
	return cardsim.New(p, cardsim.Options{})
}

// profilePAN is the PAN of the profile's first application (5A, else
// track 2 equivalent data).
func profilePAN(p *cardsim.Profile) string {
	if len(p.Applications) == 0 {
		return ""
	}
	app := p.Applications[0]
	for _, r := range app.Records {
		for _, d := range r.Data {
			if d.Tag == "5A" {
				return strings.TrimRight(strings.ToUpper(hex.EncodeToString(d.Value)), "F")
			}
		}
	}
	for _, r := range app.Records {
		for _, d := range r.Data {
			if d.Tag == "57" {
				return strings.SplitN(strings.ToUpper(hex.EncodeToString(d.Value)), "D", 2)[0]
			}
		}
	}
	if v, ok := app.GPOData["57"]; ok {
		return strings.SplitN(strings.ToUpper(hex.EncodeToString(v)), "D", 2)[0]
	}
	return ""
}

// replacePAN swaps the PAN's BCD digits inside a data object's value.
func replacePAN(v []byte, pan, fresh string) []byte {
	h := strings.ToUpper(hex.EncodeToString(v))
	if !strings.Contains(h, pan) {
		return v
	}
	out, err := hex.DecodeString(strings.ReplaceAll(h, pan, fresh))
	if err != nil {
		return v
	}
	return out
}

// luhnDigit is the check digit that makes digits+check pass Luhn.
func luhnDigit(digits string) int {
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}
