package acquirer_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/capping"
	"github.com/faregate/faregate/tap"
)

// A charge through the client to the simulated acquirer, which declines
// amounts over 50.00 with 61 (exceeds withdrawal limit).
func ExampleClient_Do() {
	limit := int64(5000)
	var ledger bytes.Buffer
	host, _ := acquirer.NewHost(acquirer.Rules{Rules: []acquirer.Rule{
		{MinAmount: &limit, ResponseCode: "61"},
	}}, &ledger, acquirer.HostOptions{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go host.Serve(ln)
	defer host.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := acquirer.Dial(ctx, acquirer.Options{
		Addr:     ln.Addr().String(),
		Merchant: acquirer.Merchant{AcquirerID: "123456", ID: "FAREGATE0000001", Name: "FAREGATE TRANSIT LONDON GB"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	gbp, _ := capping.LookupCurrency("GBP")
	card := tap.CardData{PAN: "4761739001010119", PSN: "01", Expiry: "281231"} // from the payment vault
	for _, amount := range []capping.Amount{290, 7500} {
		r, err := client.Do(ctx, acquirer.Request{Kind: acquirer.KindCharge, Reference: fmt.Sprint("c", amount),
			Terminal: acquirer.TerminalID("gate-7"), Amount: amount, Currency: gbp, Card: card})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(gbp.Format(amount), r.Code, acquirer.Categorize(r.Code, r.MAC))
	}
	// Output:
	// 2.90 00 approved
	// 75.00 61 retry_later
}

// The recovery plan for a decline, as a pure function of the answer, the
// history and the time.
func ExamplePolicy_Plan() {
	first := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	d := acquirer.DefaultPolicy.Plan("51", "", 290, acquirer.History{DeclinesSinceApproval: 1}, first)
	fmt.Println(d.Action, d.Category, d.RetryAt.Format(time.DateTime), d.DenyList)
	d = acquirer.DefaultPolicy.Plan("43", "", 290, acquirer.History{DeclinesSinceApproval: 1}, first)
	fmt.Println(d.Action, d.Category, d.DenyList)
	// Output:
	// retry_at retry_later 2026-12-02 23:00:00 true
	// await_rider never_retry true
}
