// Command faregate is the single binary of the faregate fare system: the gate
// (validator), the back office (backend, settle), the acquirer simulator and
// the operator tools (cap, oda, denylist, keys, card, tap, demo, qr).
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

// main runs the command under a context that SIGINT or SIGTERM cancels.
// Every command watches it: it stops promptly, leaves no partial output
// (files are written atomically) and the process exits with 128 + the
// signal's number (130 for SIGINT, 143 for SIGTERM), as shells do. A second
// signal ends the process at once.
func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(&signalError{s})
		os.Exit(signalCode(<-sigs))
	}()
	err := newRootCmd().ExecuteContext(ctx)
	signal.Stop(sigs)
	os.Exit(exitCode(interrupted(ctx, err)))
}

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// signalCode is the conventional exit status after sig: 128 + its number.
func signalCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// interrupted turns the error of a command stopped by a signal into that
// signal's exit status.
func interrupted(ctx context.Context, err error) error {
	se, ok := context.Cause(ctx).(*signalError)
	if err == nil || !ok {
		return err
	}
	return &exitError{code: signalCode(se.sig), err: se}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "faregate",
		Short: "Open-loop contactless fare system: gate, back office and tools",
		Long: `faregate runs every part of an open-loop contactless fare system:
the gate that authenticates bank cards offline, the back office that caps
and charges fares, and the tools operators script.

Start with "faregate demo" to see the system end to end.`,
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
		newBackendCmd(),
		newSettleCmd(),
		newValidatorCmd(),
		newJournalCmd(),
		newAcquirerSimCmd(),
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
