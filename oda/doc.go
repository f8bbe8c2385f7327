// Package oda performs EMV offline data authentication (EMV Book 2): it
// recovers the issuer and ICC public keys from their certificates under a
// certification authority (CA) public key and verifies a card's SDA, DDA,
// fDDA (EMV Contactless Book C-3) or CDA signature, with every check of
// the book and none left to defaults.
//
// A gate builds one Verifier from its one CA key list (KeyStore) and calls
// Verify for each tap with the card's data objects and the terminal data
// of the transaction (Input). Verify never reads the clock, never logs and
// never returns card data in an error: failures are an *Error naming the
// stage and the check (see Stage and Reason), and the Result keeps what
// was recovered before the failure.
//
//	keys, err := oda.LoadKeyStore("capk.json")
//	v := oda.NewVerifier(keys, oda.Options{})
//	res, err := v.Verify(&oda.Input{RID: aid[:5], Date: txDate, Data: objects, Records: records, …})
//	var e *oda.Error
//	if errors.As(err, &e) { … e.Stage, e.Reason … }
//
// Recovered issuer keys are cached by certificate (Options.CacheSize), so a
// repeat issuer costs one RSA operation less; the checks that depend on the
// transaction (issuer identifier, expiry, revocation) run on every tap.
// docs/oda.md describes the checks, the method choice, the failure
// vocabulary, test mode and the cache. Package oda/odatest is a test PKI
// that builds valid and faulty certificates and signatures.
package oda
