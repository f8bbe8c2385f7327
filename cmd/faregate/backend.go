package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/faregate/faregate/acquirer"
	"github.com/faregate/faregate/backend"
	"github.com/faregate/faregate/backend/charging"
	"github.com/faregate/faregate/backend/console"
	"github.com/faregate/faregate/backend/denylistreg"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/rider"
	"github.com/faregate/faregate/tap"
)

// storeFlags are the flags that choose the back office's store.
type storeFlags struct {
	data string
	db   string
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "", "data directory of the embedded SQLite store")
	cmd.Flags().StringVar(&f.db, "db", "", "PostgreSQL URL (postgres://user@host:5432/db?sslmode=…) instead of --data")
}

func (f *storeFlags) open(ctx context.Context, name string) (backend.Store, error) {
	if (f.data == "") == (f.db == "") {
		return nil, usageErr("%s: give one of --data DIR or --db postgres://…", name)
	}
	s, err := backend.Open(ctx, f.db, f.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

func newBackendCmd() *cobra.Command {
	var sf storeFlags
	var qf backendQRFlags
	var listen, rulesPath, vaultKeyPath, tokenKeyPath, operatorPath, denylistKeyPath string
	var dlRotate dlRotation
	var af acquirerFlags
	var grace time.Duration
	var noSettle, secureCookie bool
	cmd := &cobra.Command{
		Use:   "backend (--data DIR | --db URL) --rules RULES.json --vault-key vault.key [--listen ADDR]",
		Short: "Run the back office: tap ingest, payment vault, read API, daily settlement",
		Long: `backend runs the back office (docs/backend.md): gates upload their taps to
POST /v1/taps (docs/api.md); the payment vault keeps the sealed card data;
operators read charges, receipts and gates with a bearer token, and log in
to the web console at /console/ with the same token; each service
day is settled with the capping engine once it has ended plus --grace.
With --acquirer the charges go to the acquirer over ISO 8583, new cards get
an account check, and declined charges are recovered (docs/backend.md).
Schema migrations are applied at start. SIGINT/SIGTERM shut down gracefully.`,
		Args: noArgs("backend"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if rulesPath == "" || vaultKeyPath == "" {
				return usageErr("backend: --rules and --vault-key are required")
			}
			if denylistKeyPath == "" && (dlRotate.nextPath != "" || dlRotate.switchKeys) {
				return usageErr("backend: --denylist-next-key and --denylist-switch need --denylist-key")
			}
			if dlRotate.switchKeys && dlRotate.nextPath == "" {
				return usageErr("backend: --denylist-switch needs --denylist-next-key: the key to switch to")
			}
			rules, err := readRules(ctx, rulesPath)
			if err != nil {
				return err
			}
			vaultKey, err := readVaultKey(ctx, vaultKeyPath)
			if err != nil {
				return err
			}
			var tokenKey []byte
			if tokenKeyPath != "" {
				if tokenKey, err = readTokenKey(ctx, tokenKeyPath); err != nil {
					return err
				}
			}
			operator := ""
			if operatorPath != "" {
				b, err := os.ReadFile(operatorPath)
				if err != nil {
					return usageErr("backend: --operator-token: %w", err)
				}
				operator = strings.TrimSpace(string(b))
			}
			store, err := sf.open(ctx, "backend")
			if err != nil {
				return err
			}
			defer store.Close()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			m := backend.NewMetrics(reg)
			writers := 1
			if sf.db != "" {
				writers = 4
			}
			qrv, qrAPI, err := qf.open(ctx, store, reg, operator)
			if err != nil {
				return err
			}
			ingest := backend.NewIngest(store, m, backend.IngestOptions{Writers: writers, QR: qrv})
			srv := &backend.Server{
				Ingest:   ingest,
				Read:     &backend.ReadAPI{Store: store, Rules: rules, Token: operator},
				QR:       qrAPI,
				Gatherer: reg,
			}
			vault := backend.NewVault(store, vaultKey, tokenKey) // also the acquirer link's way to card data (issue 12)
			srv.Extra = map[string]http.Handler{}
			var denyList *denylistreg.Registry
			if denylistKeyPath != "" {
				reg, h, closeDL, err := openDenylistRegistry(ctx, sf, denylistKeyPath, dlRotate)
				if err != nil {
					return err
				}
				defer closeDL()
				denyList = reg
				srv.Read.DenyList = reg
				if qrAPI != nil {
					qrAPI.Denylist = reg // a revoked QR device key lists its token
				}
				srv.Extra["GET "+dlsync.ListPath] = h
				srv.Extra["GET "+dlsync.HeadPath] = h
			}
			if operator != "" { // the web console (docs/console.md): log in with the operator token
				var pv *backend.Vault
				if tokenKey != nil {
					pv = vault
				}
				con, err := console.New(console.Options{API: srv.Read, Vault: pv, SecureCookie: secureCookie})
				if err != nil {
					return err
				}
				defer con.Close()
				srv.Extra[console.Prefix] = con.Handler()
				srv.Extra["GET /{$}"] = http.RedirectHandler(console.Prefix, http.StatusSeeOther)
			}
			if af.addr != "" { // the acquirer link (docs/iso8583.md)
				if denyList == nil {
					return usageErr("backend: --acquirer needs --denylist-key: a declined charge puts the card on the deny list")
				}
				client, err := af.dial(ctx, log)
				if err != nil {
					return err
				}
				defer client.Close()
				policy := acquirer.DefaultPolicy
				if af.firstRide != "" {
					if policy.FirstRideLimit, err = rules.Currency.ParseAmount(af.firstRide); err != nil || policy.FirstRideLimit < 0 {
						return usageErr("backend: --first-ride-limit %q: want an amount in %s such as 2.50", af.firstRide, rules.Currency.Code)
					}
				}
				link := charging.New(client, store, vault, denyList, charging.Options{Currency: rules.Currency, Policy: policy, Metrics: charging.NewMetrics(reg), RetapSpacing: af.retapSpacing})
				mux := http.NewServeMux()
				link.Register(mux, operator, rules, func(t rider.Token) bool { return denyList.Current().Contains(t) })
				srv.Extra["GET /v1/riders/{token}/debt"], srv.Extra["POST /v1/riders/{token}/debt/pay"] = mux, mux
				log.Info("acquirer link", "addr", af.addr, "every", af.interval.String())
				go link.Run(ctx, af.interval, func(err error) { log.Error("acquirer link", "err", err) })
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("backend: %w", err)
			}
			log.Info("back office listening", "addr", l.Addr().String(), "store", storeName(sf))
			if qrAPI != nil && denylistKeyPath == "" {
				log.Warn("QR revocation will not reach the gates: no --denylist-key")
			}
			if !noSettle {
				sc := &backend.Scheduler{Settler: &backend.Settler{Store: store, Rules: rules, Metrics: m}, Grace: grace, Log: log}
				go sc.Run(ctx)
			}
			err = srv.Serve(ctx, l)
			log.Info("back office stopped")
			return err
		},
	}
	sf.add(cmd)
	qf.add(cmd)
	af.add(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address to serve HTTP on")
	cmd.Flags().StringVar(&rulesPath, "rules", "", "fare rules (the capping rules format, docs/capping.md)")
	cmd.Flags().StringVar(&vaultKeyPath, "vault-key", "", "the payment vault's private key (vault.key, faregate keys vault)")
	cmd.Flags().StringVar(&tokenKeyPath, "token-key", "", "the agency's token key (token.key): lets the vault check cards against tokens")
	cmd.Flags().StringVar(&operatorPath, "operator-token", "", "file holding the operator bearer token of the read API (unset: read API closed)")
	cmd.Flags().StringVar(&denylistKeyPath, "denylist-key", "", "the deny-list signing key (denylist.key): serve GET /v1/denylist to gates")
	cmd.Flags().StringVar(&dlRotate.nextPath, "denylist-next-key", "", "key rotation: the next deny-list signing key (a private key file); its public key is announced to gates in every signed head")
	cmd.Flags().BoolVar(&dlRotate.switchKeys, "denylist-switch", false, "key rotation: sign with --denylist-next-key from now on; --denylist-key only vouches for the stored list")
	cmd.Flags().DurationVar(&grace, "grace", 2*time.Hour, "wait this long after a service day ends before settling it (late uploads)")
	cmd.Flags().BoolVar(&secureCookie, "console-secure-cookie", false, "mark the console's session cookie Secure (set when operators reach it over TLS)")
	cmd.Flags().BoolVar(&noSettle, "no-settle", false, "do not settle days here (run faregate settle elsewhere)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("backend: %w", err) })
	cmd.AddCommand(newBackendGatesCmd())
	return cmd
}

// openDenylistRegistry opens the deny-list registry next to the store and
// returns its GET /v1/denylist handler.
func openDenylistRegistry(ctx context.Context, sf storeFlags, keyPath string, rot dlRotation) (*denylistreg.Registry, http.Handler, func(), error) {
	key, err := dlReadPrivateKey(ctx, keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := denylistreg.Options{Key: key}
	if rot.nextPath != "" {
		next, err := dlReadPrivateKey(ctx, rot.nextPath)
		if err != nil {
			return nil, nil, nil, err
		}
		if next.Equal(key) {
			return nil, nil, nil, usageErr("backend: --denylist-next-key is the --denylist-key")
		}
		opts = rot.options(key, next)
	}
	var store interface {
		denylistreg.Store
		Close() error
	}
	if sf.db != "" {
		store, err = denylistreg.OpenPostgres(ctx, sf.db)
	} else {
		store, err = denylistreg.OpenSQLite(ctx, filepath.Join(sf.data, "denylist.db"))
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("backend: deny list: %w", err)
	}
	reg, err := denylistreg.New(ctx, store, opts)
	if err == nil {
		var h http.Handler
		if h, err = reg.NewServer(dlsync.ServerOptions{}); err == nil {
			return reg, h, func() { store.Close() }, nil
		}
	}
	store.Close()
	return nil, nil, nil, fmt.Errorf("backend: deny list: %w", err)
}

// dlRotation holds the key-rotation flags of faregate backend
// (docs/denylist.md, "Key rotation").
type dlRotation struct {
	nextPath   string // --denylist-next-key
	switchKeys bool   // --denylist-switch
}

// options returns the registry options of a rotation from key to next:
// before the switch key signs and next is announced; after it next signs
// and key only vouches for the list the store recorded under it.
func (rot dlRotation) options(key, next ed25519.PrivateKey) denylistreg.Options {
	if rot.switchKeys {
		return denylistreg.Options{Key: next, PreviousKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
	}
	return denylistreg.Options{Key: key, NextKey: next.Public().(ed25519.PublicKey)}
}

func storeName(sf storeFlags) string {
	if sf.db != "" {
		return "postgres"
	}
	return "sqlite:" + sf.data
}

func noArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErr("%s: unexpected argument %q", name, args[0])
		}
		return nil
	}
}

func readVaultKey(ctx context.Context, path string) (*ecdh.PrivateKey, error) {
	b, err := readInput(ctx, "--vault-key", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := tap.ParseVaultKey(b)
	if err != nil {
		return nil, usageErr("--vault-key %s: %w", path, err)
	}
	return k, nil
}

// readGatePublicKey reads gate.pub (faregate keys gate).
func readGatePublicKey(ctx context.Context, path string) (ed25519.PublicKey, error) {
	b, err := readInput(ctx, "--pub", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	pub, err := tap.ParseGatePublicKey(b)
	if err != nil {
		return nil, usageErr("--pub %s: %w", path, err)
	}
	return pub, nil
}

func newBackendGatesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gates",
		Short: "Register, list and disable the gates that upload taps",
	}
	var sf storeFlags
	var id, pubPath string
	add := &cobra.Command{
		Use:   "add --id G --pub gate.pub (--data DIR | --db URL)",
		Short: "Register a gate's upload key",
		Args:  noArgs("gates add"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" || pubPath == "" {
				return usageErr("gates add: --id and --pub are required")
			}
			if len(id) > tap.MaxField || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
				return usageErr("gates add: --id must be 1 to %d printable bytes without spaces", tap.MaxField)
			}
			pub, err := readGatePublicKey(cmd.Context(), pubPath)
			if err != nil {
				return err
			}
			s, err := sf.open(cmd.Context(), "gates add")
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.AddGate(cmd.Context(), id, pub, time.Now()); err != nil {
				if errors.Is(err, backend.ErrGateExists) {
					return usageErr("gates add: %w", err)
				}
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "gate %s registered\n", id)
			return err
		},
	}
	sf.add(add)
	add.Flags().StringVar(&id, "id", "", "the gate's id (as in its uploads)")
	add.Flags().StringVar(&pubPath, "pub", "", "the gate's public key (gate.pub, faregate keys gate)")

	var asJSON bool
	var lf storeFlags
	list := &cobra.Command{
		Use:   "list (--data DIR | --db URL) [--json]",
		Short: "List gates: last seen, last sequence number, backlog",
		Args:  noArgs("gates list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := lf.open(cmd.Context(), "gates list")
			if err != nil {
				return err
			}
			defer s.Close()
			gs, err := s.Gates(cmd.Context())
			if err != nil {
				return err
			}
			return writeGates(cmd, gs, asJSON)
		},
	}
	lf.add(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	toggle := func(use string, disabled bool) *cobra.Command {
		var f storeFlags
		var gid string
		c := &cobra.Command{
			Use:   use + " --id G (--data DIR | --db URL)",
			Short: map[bool]string{true: "Disable a gate: its uploads are refused (401)", false: "Enable a disabled gate again"}[disabled],
			Args:  noArgs("gates " + use),
			RunE: func(cmd *cobra.Command, _ []string) error {
				if gid == "" {
					return usageErr("gates %s: --id is required", use)
				}
				s, err := f.open(cmd.Context(), "gates "+use)
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.SetGateDisabled(cmd.Context(), gid, disabled); err != nil {
					if errors.Is(err, backend.ErrNoGate) {
						return usageErr("gates %s: %w", use, err)
					}
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "gate %s %sd\n", gid, use)
				return err
			},
		}
		f.add(c)
		c.Flags().StringVar(&gid, "id", "", "the gate's id")
		return c
	}
	for _, c := range []*cobra.Command{add, list, toggle("disable", true), toggle("enable", false)} {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("gates: %w", err) })
		cmd.AddCommand(c)
	}
	return cmd
}

func writeGates(cmd *cobra.Command, gs []backend.Gate, asJSON bool) error {
	out := cmd.OutOrStdout()
	if asJSON {
		type gateJSON struct {
			ID              string     `json:"id"`
			Disabled        bool       `json:"disabled"`
			LastSeen        *time.Time `json:"last_seen,omitempty"`
			LastSeq         uint64     `json:"last_seq"`
			Backlog         int64      `json:"backlog"`
			DenylistVersion uint64     `json:"denylist_version"`
			Taps            int64      `json:"taps"`
		}
		list := []gateJSON{}
		for _, g := range gs {
			j := gateJSON{ID: g.ID, Disabled: g.Disabled, LastSeq: g.LastSeq, Backlog: g.Backlog, DenylistVersion: g.DenylistVersion, Taps: g.Taps}
			if !g.LastSeen.IsZero() {
				j.LastSeen = &g.LastSeen
			}
			list = append(list, j)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"gates": list})
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tSTATE\tLAST SEEN\tLAST SEQ\tBACKLOG\tDENY LIST\tTAPS")
	for _, g := range gs {
		state, seen := "enabled", "never"
		if g.Disabled {
			state = "disabled"
		}
		if !g.LastSeen.IsZero() {
			seen = g.LastSeen.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", g.ID, state, seen, g.LastSeq, g.Backlog, g.DenylistVersion, g.Taps)
	}
	return tw.Flush()
}
