package main

import "github.com/spf13/cobra"

// newKeysCmd groups the key-generation subcommands. Each subcommand lives in
// the file of the feature it serves (keys_emv.go, keys_denylist.go …).
func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate key material (test EMV PKI, deny-list signing keys …)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(
		// subcommands are added here, one line each
		newKeysEMVCmd(),
		newKeysDenylistCmd(),
		newKeysGateCmd(),
		newKeysVaultCmd(),
		newKeysTokenCmd(),
		newKeysQRCmd(),
	)
	return cmd
}
