// Package faregate embeds the project's test material: the software card
// profiles of testdata/cards, their test PKI and CA key list in
// testdata/pki, and the agencies' capping rules in testdata/capping. The demo and `faregate tap --card NAME` use it, so they work
// from any directory; production code paths never do.
package faregate

import "embed"

// TestData holds testdata/cards/*.json, testdata/pki/*.{pem,json} and the
// capping rules of testdata/capping/*/rules.json.
//
//go:embed testdata/cards/*.json testdata/pki/*.pem testdata/pki/*.json testdata/capping/*/rules.json
var TestData embed.FS
