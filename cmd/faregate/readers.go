package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/emv"
	"github.com/faregate/faregate/reader"
)

func newReadersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "readers",
		Short: "List the PC/SC card readers pcscd knows",
		Long: `Prints the name of every reader pcscd knows, one per line, in pcscd's
order (the first is the one "faregate tap --reader ''" uses). No reader
attached prints nothing. Needs a binary built with -tags pcsc and a running
pcscd (docs/reader.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			names, err := reader.List(ctx)
			if err != nil {
				return err
			}
			for _, n := range names {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), n); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// readerTap waits up to wait for a card in the named PC/SC reader and taps
// it once through the kernel. The output names the reader as the card.
func readerTap(ctx context.Context, k *emv.Kernel, name string, wait time.Duration) (tapOutput, *emv.Tap, error) {
	r, err := reader.Open(ctx, reader.Options{Name: name})
	if err != nil {
		return tapOutput{}, nil, err
	}
	defer r.Close()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	s, err := r.WaitCard(wctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return tapOutput{}, nil, fmt.Errorf("no card in %q within %v", r.Name(), wait)
	}
	if err != nil {
		return tapOutput{}, nil, err
	}
	defer s.Close()
	out, tap := runTap(ctx, k, s, s.Reader())
	return out, tap, nil
}
