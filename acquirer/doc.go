// Package acquirer is faregate's link to the acquirer: ISO 8583:1987 over
// TCP (docs/iso8583.md is the contract).
//
//   - Spec is the one message specification; ReadLength and WriteLength
//     frame it with a 2-byte length header; Unpack parses what the network
//     sends, with errors that never quote card data.
//   - Client is a pool of signed-on connections (moov-io/iso8583-connection)
//     that reconnect with backoff; Do sends a charge (0200), refund (0200,
//     processing code 20) or account check (0100) and, when no answer
//     comes, reverses the request until acknowledged and retries it with a
//     new STAN.
//   - Categorize and Policy.Plan turn an answer into a recovery plan:
//     decline categories, Mastercard advice codes, resubmission limits,
//     first-ride risk. Pure, time injected.
//   - Charger takes settled charges from the back office through four small
//     interfaces declared here (ChargeSource, OutcomeRecorder, CardVault,
//     DenyList) and reports outcomes, deny-listing declined tokens and
//     lifting recovered ones.
//   - Host is a simulated acquirer on the same spec (faregate acquirer-sim):
//     rules decide answers, a JSON-lines ledger records every message.
//
// Card data enters only as tap.CardData from the payment vault and leaves
// only in fields 2, 14, 23, 35 and the allow-listed field 55.
package acquirer
