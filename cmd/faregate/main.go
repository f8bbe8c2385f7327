// Command faregate is the single binary of the faregate fare system. Today
// it holds the end-to-end demo, one tap through the gate's kernel (tap,
// readers, card), offline QR credentials (qr) and the operator tools (cap,
// oda, denylist, keys); the gate daemon and the back office's commands are
// still to come.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // gates may lack a zoneinfo database; capping needs IANA zones

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "faregate",
		Short: "Open-loop contactless fare system: gate kernel, demo and operator tools",
		Long: `faregate is an open-loop contactless fare system in one binary. Today it
taps bank cards through the gate's EMV kernel with offline data
authentication (tap, readers, card), verifies recorded taps (oda), issues
and verifies offline QR credentials (qr), computes capped fares (cap),
builds and checks signed deny lists (denylist) and generates keys (keys). The gate daemon and the back office's commands
are still to come.

Start with "faregate demo" to see what has landed, end to end.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newKeysCmd(),
		newTapCmd(),
		newDemoCmd(),
		newReadersCmd(),
		newCardCmd(),
		newCapCmd(),
		newODACmd(),
		newDenylistCmd(),
		newQRCmd(),
	)
	return root
}

// exitError carries a process exit code through cobra. Commands whose exit
// codes are part of a contract (oda verify, cap, denylist check) return one.
type exitError struct {
	code int
	err  error // nil: exit silently with code
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr reports unusable input: exit status 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// exitCode prints err (when there is one to print) and returns the process
// exit status: 0 on success, the code of an exitError, 1 otherwise.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintln(os.Stderr, "faregate:", err)
	return code
}
