package oda

import (
	"errors"
	"fmt"
)

// Stage names the step of offline data authentication that failed. The
// values are the `stage` vocabulary of `faregate oda verify`.
type Stage string

// Stages, in the order Verify runs them.
const (
	StageInput      Stage = "input"       // the data handed to Verify is incomplete or malformed
	StageCAPK       Stage = "capk"        // certification authority public key lookup
	StageIssuer     Stage = "issuer"      // issuer public key certificate (90)
	StageStaticData Stage = "static_data" // static data to be authenticated (AFL records, 9F4A)
	StageICC        Stage = "icc"         // ICC public key certificate (9F46)
	StageSSAD       Stage = "ssad"        // SDA: Signed Static Application Data (93)
	StageSDAD       Stage = "sdad"        // DDA and fDDA: Signed Dynamic Application Data (9F4B)
	StageCDA        Stage = "cda"         // CDA: signature, CID and transaction data hash
)

// Reason is a short stable identifier of the check that failed. The values
// are the `reason` vocabulary of `faregate oda verify`.
type Reason string

// Reasons. Each names one check; docs/oda.md lists which stages use which.
const (
	// Input.
	ReasonMissing   Reason = "missing"   // a required data object or value is absent (Error.Tag names it)
	ReasonMalformed Reason = "malformed" // a data object has the wrong length or coding (Error.Tag names it)
	ReasonMethod    Reason = "method"    // no ODA method applies, or the method is unknown

	// CA public key.
	ReasonUnknownCAPK Reason = "unknown_capk" // no key with this RID and index in the configured list
	ReasonTestKey     Reason = "test_key"     // a test key, and the verifier is not in test mode

	// Recovery of any signed object (certificates, SSAD, SDAD).
	ReasonLength        Reason = "length"         // signed object length differs from the key's modulus length
	ReasonRecovery      Reason = "recovery"       // the signed object is not a number below the modulus
	ReasonTrailer       Reason = "trailer"        // recovered data trailer is not BC
	ReasonHeader        Reason = "header"         // recovered data header is not 6A
	ReasonFormat        Reason = "format"         // certificate or signed data format byte is wrong
	ReasonHashAlgorithm Reason = "hash_algorithm" // hash algorithm indicator is not 01 (SHA-1)
	ReasonHash          Reason = "hash"           // the hash does not match: the signature does not verify

	// Certificates.
	ReasonPKAlgorithm      Reason = "pk_algorithm"      // public key algorithm indicator is not 01 (RSA)
	ReasonKeyLength        Reason = "key_length"        // certified key length is impossible for its certificate
	ReasonExponent         Reason = "exponent"          // certified exponent is neither 3 nor 65537
	ReasonExponentLength   Reason = "exponent_length"   // exponent length byte differs from the length of 9F32/9F47
	ReasonRemainder        Reason = "remainder"         // remainder (92/9F48) missing, unexpected or of the wrong length
	ReasonIssuerIdentifier Reason = "issuer_identifier" // issuer identifier does not match the PAN's leading digits
	ReasonPANMismatch      Reason = "pan_mismatch"      // ICC certificate PAN differs from 5A
	ReasonDate             Reason = "date"              // certificate expiration date is not a valid MMYY
	ReasonExpired          Reason = "expired"           // certificate (or CA key) expired before the transaction date
	ReasonRevoked          Reason = "revoked"           // issuer certificate on the revocation list

	// Static data.
	ReasonAFL            Reason = "afl"             // Application File Locator malformed
	ReasonMissingRecord  Reason = "missing_record"  // an AFL record flagged for ODA was not read
	ReasonRecordTemplate Reason = "record_template" // an ODA record of SFI 1–10 is not a single template 70
	ReasonSDATagList     Reason = "sda_tag_list"    // 9F4A is not exactly the tag 82

	// Dynamic signatures.
	ReasonDynamicData         Reason = "dynamic_data"          // ICC dynamic data length or content is impossible
	ReasonFDDAVersion         Reason = "fdda_version"          // 9F69 carries an fDDA version this verifier does not know
	ReasonCIDMismatch         Reason = "cid_mismatch"          // CDA: CID in the signature differs from 9F27
	ReasonTransactionDataHash Reason = "transaction_data_hash" // CDA: transaction data hash code differs
)

// ErrVerification is matched (errors.Is) by every *Error: offline data
// authentication did not hold.
var ErrVerification = errors.New("oda: verification failed")

// Error reports why offline data authentication failed, in the spirit of
// x509.CertificateInvalidError: the stage and the check, never the card's
// data. Match it with errors.As. Signature failures (ReasonHash) say no more
// than that the signature does not verify.
type Error struct {
	Stage  Stage
	Reason Reason
	// Tag names the data object concerned when there is one ("9F46"); it
	// is a tag, never a value.
	Tag string
	// Err is an underlying error (a TLV syntax error …), or nil.
	Err error
}

func (e *Error) Error() string {
	msg := "oda: " + string(e.Stage) + ": " + reasonText(e.Reason)
	if e.Tag != "" {
		msg += " (" + e.Tag + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error and ErrVerification.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrVerification, e.Err}
	}
	return []error{ErrVerification}
}

func fail(stage Stage, reason Reason) *Error { return &Error{Stage: stage, Reason: reason} }

func failTag(stage Stage, reason Reason, tag string) *Error {
	return &Error{Stage: stage, Reason: reason, Tag: tag}
}

func reasonText(r Reason) string {
	switch r {
	case ReasonMissing:
		return "required data missing"
	case ReasonMalformed:
		return "malformed data"
	case ReasonMethod:
		return "no applicable authentication method"
	case ReasonUnknownCAPK:
		return "unknown certification authority public key"
	case ReasonTestKey:
		return "test certification authority key refused outside test mode"
	case ReasonLength:
		return "signed data length differs from the key length"
	case ReasonRecovery:
		return "signed data cannot be recovered with the key"
	case ReasonTrailer:
		return "recovered data trailer invalid"
	case ReasonHeader:
		return "recovered data header invalid"
	case ReasonFormat:
		return "wrong data format"
	case ReasonHashAlgorithm:
		return "unsupported hash algorithm"
	case ReasonHash:
		return "signature verification failed"
	case ReasonPKAlgorithm:
		return "unsupported public key algorithm"
	case ReasonKeyLength:
		return "certified key length invalid"
	case ReasonExponent:
		return "public key exponent not allowed"
	case ReasonExponentLength:
		return "public key exponent length mismatch"
	case ReasonRemainder:
		return "public key remainder invalid"
	case ReasonIssuerIdentifier:
		return "issuer identifier does not match the PAN"
	case ReasonPANMismatch:
		return "certificate PAN does not match the application PAN"
	case ReasonDate:
		return "certificate expiration date invalid"
	case ReasonExpired:
		return "expired"
	case ReasonRevoked:
		return "certificate revoked"
	case ReasonAFL:
		return "application file locator invalid"
	case ReasonMissingRecord:
		return "record flagged for offline data authentication not read"
	case ReasonRecordTemplate:
		return "record is not a single template 70"
	case ReasonSDATagList:
		return "static data authentication tag list is not 82"
	case ReasonDynamicData:
		return "ICC dynamic data invalid"
	case ReasonFDDAVersion:
		return "unknown fDDA version"
	case ReasonCIDMismatch:
		return "cryptogram information data differs from the signed value"
	case ReasonTransactionDataHash:
		return "transaction data hash code mismatch"
	}
	return string(r)
}

// Key list errors (LoadKeyStore, ParseKeyStore, NewKeyStore). Each is
// wrapped with the RID and index of the key it concerns.
var (
	ErrKeyChecksum  = errors.New("oda: ca key checksum mismatch")
	ErrKeyDuplicate = errors.New("oda: duplicate ca key")
	ErrKeyInvalid   = errors.New("oda: invalid ca key")
)

func keyErr(rid []byte, index byte, err error, detail string) error {
	if detail == "" {
		return fmt.Errorf("%w: %X/%02X", err, rid, index)
	}
	return fmt.Errorf("%w: %X/%02X: %s", err, rid, index, detail)
}
