package main

import (
	"encoding/hex"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/qr"
)

// qrRevoked is what 'qr revoke' prints: the back office's record of the
// revoked credential.
type qrRevoked struct {
	Token           string `json:"token"`
	Device          string `json:"device"`
	KeyID           string `json:"key_id"`
	NotAfter        string `json:"not_after"`
	RevokedAt       string `json:"revoked_at"`
	DenylistVersion uint64 `json:"denylist_version,omitempty"`
}

func newQRRevokeCmd() *cobra.Command {
	var backendURL, operatorPath, deviceHex, devicePath string
	cmd := &cobra.Command{
		Use:   "revoke --backend URL --operator-token FILE (--device-key HEX | --device FILE)",
		Short: "Revoke a device key at the back office and deny-list its rider token",
		Long: `Revoke a QR device key at the running back office
(POST /v1/qr/credentials/{device}/revoke, docs/api.md): uploaded taps made
with the key from now on are refused as revoked and never charged, and the
rider's token goes on the deny list the gates replicate (reason qr_revoked)
until an operator removes it. The key is the "device" of 'qr issue''s
record (--device-key, 64 hex digits) or read from the app's device file
(--device). Revoking again keeps the first revocation time.

Prints the back office's record as JSON. Exit status 1 when the back office
refuses (a key it never issued, store or deny list unavailable: send again),
2 on unusable flags.`,
		Args: dlNoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := dlRequired(cmd, "backend", "operator-token"); err != nil {
				return err
			}
			if (deviceHex == "") == (devicePath == "") {
				return usageErr("qr revoke: give --device-key HEX or --device FILE")
			}
			var dev qr.DeviceKey
			if devicePath != "" {
				_, d, err := readDeviceFile(cmd.Context(), devicePath)
				if err != nil {
					return err
				}
				dev = d.Credential.Device
			} else if b, err := hex.DecodeString(deviceHex); err != nil || len(b) != len(dev) {
				return usageErr("--device-key: want the device's Ed25519 public key in 64 hex digits")
			} else {
				dev = qr.DeviceKey(b)
			}
			op, err := readOperatorToken("qr revoke", operatorPath)
			if err != nil {
				return err
			}
			var out backend.QRCredentialJSON
			path := "/v1/qr/credentials/" + hex.EncodeToString(dev[:]) + "/revoke"
			if err := qrBackendPost(cmd.Context(), "qr revoke", backendURL, op, path, nil, http.StatusOK, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), qrRevoked{Token: out.Token, Device: out.Device, KeyID: out.KeyID,
				NotAfter: out.NotAfter, RevokedAt: out.RevokedAt, DenylistVersion: out.DenylistVersion})
		},
	}
	cmd.Flags().StringVar(&backendURL, "backend", "", "the back office (http://host:port)")
	cmd.Flags().StringVar(&operatorPath, "operator-token", "", "file holding the operator bearer token")
	cmd.Flags().StringVar(&deviceHex, "device-key", "", "the device public key to revoke (64 hex digits)")
	cmd.Flags().StringVar(&devicePath, "device", "", "or the app's device file ('qr issue --out') to read it from")
	return cmd
}
