// Package capping is faregate's fare capping engine: fare rules and taps in,
// charges out. It is pure — no I/O, no clock; time zones come from the rules
// and times from the taps.
//
// ParseRules reads and validates a RULES.json document and pre-resolves it;
// ParseTaps reads a TAPS.csv file against the rules. Settle rates every token;
// an Engine rates one token at a time without allocating once warm.
//
// Rating forms journeys by the transfer rules, then charges every leg
// min(fare, head-room of every applicable cap), each cap accumulating what was
// actually charged in its window (service day, calendar week, calendar month,
// rolling N days sliding or anchored at the first tap). Each service day is
// settled at its end with the taps received by then; later runs charge the
// difference (negative for a refund), so a settled day is never silently
// changed. For a single scope with fixed windows the result equals the
// cheapest combination of single fares and period passes. docs/capping.md
// describes the model, the policies and where capping differs from that
// optimum.
//
// Money is Amount, integer minor units of the rules' currency. Tokens are
// opaque rider identities, never card numbers. Errors wrap the sentinels of
// this package; parse errors are *RulesError and *TapsError, which name the
// line.
package capping
