package capping

import (
	"cmp"
	"slices"
)

// Statement is the rating of a whole taps file: every rider, by token.
type Statement struct {
	Currency Currency
	Total    Amount
	Riders   []Rider // sorted by token
}

// Settle rates taps of any number of tokens, in any order. Leg.Tap indexes
// into taps.
func Settle(r *Rules, taps []Tap) (*Statement, error) {
	st := &Statement{Currency: r.Currency}
	idx := make([]int, len(taps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(taps[a].Token, taps[b].Token) })
	e := NewEngine(r)
	var group []Tap
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && taps[idx[end]].Token == taps[idx[start]].Token {
			end++
		}
		group = group[:0]
		for _, i := range idx[start:end] {
			group = append(group, taps[i])
		}
		var rd Rider
		if err := e.Rate(&rd, group); err != nil {
			return nil, err
		}
		for k := range rd.Legs {
			rd.Legs[k].Tap = idx[start+rd.Legs[k].Tap]
		}
		st.Total += rd.Total
		st.Riders = append(st.Riders, rd)
		start = end
	}
	return st, nil
}

// CapSaving is what one cap took off a rider's fares.
type CapSaving struct {
	Cap   string
	Saved Amount
}

// Receipt is a rider's account of service days From..To: the legs, what
// each cost, the caps that bound them and what the caps saved. One charge
// equals the Legs it rolls up; Windows is the cap manifest.
type Receipt struct {
	Token    string
	From, To Date
	Legs     []Leg
	Fares    Amount // before caps
	Charged  Amount
	Saved    Amount // Fares - Charged
	SavedBy  []CapSaving
	Windows  []CapWindow // cap windows overlapping From..To
}

// Receipt returns the rider's receipt for service days from..to inclusive.
func (rd *Rider) Receipt(from, to Date) Receipt {
	rc := Receipt{Token: rd.Token, From: from, To: to}
	for _, l := range rd.Legs {
		if l.ServiceDay < from || l.ServiceDay > to {
			continue
		}
		rc.Legs = append(rc.Legs, l)
		rc.Fares += l.Fare
		rc.Charged += l.Charged
		if l.CappedBy != "" {
			i := slices.IndexFunc(rc.SavedBy, func(s CapSaving) bool { return s.Cap == l.CappedBy })
			if i < 0 {
				rc.SavedBy = append(rc.SavedBy, CapSaving{Cap: l.CappedBy})
				i = len(rc.SavedBy) - 1
			}
			rc.SavedBy[i].Saved += l.Fare - l.Charged
		}
	}
	rc.Saved = rc.Fares - rc.Charged
	for _, w := range rd.Windows {
		if w.To >= from && w.From <= to {
			rc.Windows = append(rc.Windows, w)
		}
	}
	return rc
}
