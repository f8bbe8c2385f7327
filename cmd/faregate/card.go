package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/faregate/faregate/reader"
)

func newCardCmd() *cobra.Command {
	var (
		profile   string
		vpcd      string
		represent time.Duration
		once      bool
		noQuick   bool
	)
	cmd := &cobra.Command{
		Use:   "card --profile PROFILE [--vpcd HOST:PORT]",
		Short: "Put a software card into a virtual reader slot of pcscd (vpcd)",
		Long: `Connects a software card to the vpcd driver of pcscd (Debian package
vsmartcard-vpcd), so pcscd shows it in the slot "Virtual PCD 00 00" and any
PC/SC application — "faregate tap --reader", the gate — can tap it through
the real stack. Needs no cgo and no PC/SC library.

--profile names a card profile file, or an embedded profile by name
(visa-qvsdc, mastercard-cda, fault-card-removed …). The card stays in the
slot until interrupted; when it leaves the field (the card-removed fault, or
vpcd going away) it is presented again after --represent, unless --once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if profile == "" {
				return usageErr("--profile is required: a profile file or an embedded profile name")
			}
			c, err := loadCard(cmd.Context(), profile)
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) && ee.code == 2 {
					return usageErr("--profile %s: no such profile file, nor an embedded profile of that name", profile)
				}
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			opts := &reader.VPCDOptions{NoQuickAck: noQuick, Represent: represent, Logger: log}
			ctx := cmd.Context()
			if !once {
				log.Info("presenting card", "profile", c.Profile().Name, "vpcd", vpcd)
				return reader.ServeVPCD(ctx, vpcd, c, opts)
			}
			p, err := reader.PresentVPCD(ctx, vpcd, c, opts)
			if err != nil {
				return err
			}
			log.Info("card presented", "profile", c.Profile().Name, "vpcd", vpcd)
			<-p.Done()
			if err := p.Err(); err != nil && !errors.Is(err, reader.ErrCardLeft) {
				return err
			}
			log.Info("card out of the slot")
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "software card profile (file, or embedded profile name)")
	cmd.Flags().StringVar(&vpcd, "vpcd", reader.DefaultVPCD, "address of the vpcd slot (its second slot is on the next port)")
	cmd.Flags().DurationVar(&represent, "represent", time.Second, "present the card again this long after it left the field")
	cmd.Flags().BoolVar(&once, "once", false, "exit when the card leaves the field instead of presenting it again")
	cmd.Flags().BoolVar(&noQuick, "no-quickack", false, "leave TCP_QUICKACK off (costs ~40 ms per APDU; for measurements)")
	return cmd
}
