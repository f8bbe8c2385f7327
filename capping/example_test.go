package capping_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/faregate/faregate/capping"
)

// The seed's promise: single $1, day cap $10, week cap $25. Thirteen trips
// in a day cost $10.
func ExampleSettle() {
	rules, err := capping.ParseRules([]byte(`{
	  "currency": "USD", "time_zone": "America/New_York", "service_day_start": "04:00",
	  "fares": [{"id": "single", "price": "1.00"}],
	  "caps": [
	    {"id": "day", "amount": "10.00", "period": {"kind": "service_day"}},
	    {"id": "week", "amount": "25.00", "period": {"kind": "calendar_week"}}
	  ]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var csv strings.Builder
	csv.WriteString("token,time\n")
	for h := 6; h < 19; h++ {
		fmt.Fprintf(&csv, "rider-1,2024-03-04T%02d:15:00-05:00\n", h)
	}
	taps, err := capping.ParseTaps(strings.NewReader(csv.String()), rules)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := capping.Settle(rules, taps)
	if err != nil {
		fmt.Println(err)
		return
	}
	rd := st.Riders[0]
	fmt.Println(rd.Token, "pays", rules.Currency.Format(rd.Total), "for", len(rd.Legs), "trips; caps reached:", rd.CapsReached())
	last := rd.Legs[len(rd.Legs)-1]
	fmt.Println("last trip:", rules.Currency.Format(last.Charged), "capped by", last.CappedBy)
	// Output:
	// rider-1 pays 10.00 for 13 trips; caps reached: [day]
	// last trip: 0.00 capped by day
}

// A rules error names the line and the problem.
func ExampleParseRules_error() {
	_, err := capping.ParseRules([]byte("{\n  \"currency\": \"USD\",\n  \"time_zone\": \"UTC\",\n  \"caps\": [\n    {\"id\": \"day\", \"amount\": \"1.005\", \"period\": {\"kind\": \"service_day\"}}\n  ]\n}"))
	fmt.Println(err)
	// Output:
	// capping: rules line 5: caps[0] "day": amount: invalid amount: "1.005" has more than 2 decimal places for USD
}

// Settlement of a service day, token by token: a store yields each token's
// taps (here from memory; a back office reads them ORDER BY token), the
// engine rates them on all cores, and each token's day charges arrive in
// the source's order.
func ExampleRateStream() {
	rules, err := capping.ParseRules([]byte(`{
	  "currency": "GBP", "time_zone": "Europe/London", "service_day_start": "04:30",
	  "fares": [{"id": "bus", "price": "1.75"}],
	  "caps": [{"id": "day", "amount": "5.25", "period": {"kind": "service_day"}}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	store := map[string]int{"alice": 2, "bob": 5} // taps per token
	tokens := []string{"alice", "bob"}
	next := 0
	src := func(dst []capping.Tap) ([]capping.Tap, error) {
		if next == len(tokens) {
			return dst, io.EOF
		}
		tok := tokens[next]
		next++
		for i := 0; i < store[tok]; i++ {
			dst = append(dst, capping.Tap{Token: tok, Time: time.Date(2025, 3, 10, 8+i, 0, 0, 0, time.UTC)})
		}
		return dst, nil
	}
	err = capping.RateStream(context.Background(), rules, src, capping.StreamOptions{}, func(rt *capping.Rated) error {
		for _, d := range rt.Rider.Days {
			fmt.Println(rt.Rider.Token, d.Day, d.Taps, "taps, charged", rules.Currency.Format(d.Charged))
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// alice 2025-03-10 2 taps, charged 3.50
	// bob 2025-03-10 5 taps, charged 5.25
}
