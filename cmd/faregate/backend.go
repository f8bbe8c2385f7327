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
	"github.com/faregate/faregate/capping"
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

// backendFlags are the flags of faregate backend.
type backendFlags struct {
	sf                                                                       storeFlags
	qf                                                                       backendQRFlags
	af                                                                       acquirerFlags
	dlRotate                                                                 dlRotation
	listen, rulesPath, vaultKeyPath, tokenKeyPath, operatorPath, denylistKey string
	usersPath, configPath                                                    string
	grace                                                                    time.Duration
	noSettle, secureCookie                                                   bool
}

func newBackendCmd() *cobra.Command {
	var f backendFlags
	cmd := &cobra.Command{
		Use:   "backend (--data DIR | --db URL) --rules RULES.json --vault-key vault.key [--listen ADDR]",
		Short: "Run the back office: tap ingest, payment vault, read API, daily settlement",
		Long: `backend runs the back office (docs/backend.md): gates upload their taps to
POST /v1/taps (docs/api.md); the payment vault keeps the sealed card data;
operators read charges, receipts and gates with a bearer token, and log in
to the web console at /console/ with the same token or with a user name
and password from --console-users (docs/console.md); each service
day is settled with the capping engine once it has ended plus --grace.
With --acquirer the charges go to the acquirer over ISO 8583, new cards get
an account check, and declined charges are recovered (docs/backend.md).
Schema migrations are applied at start. SIGINT/SIGTERM shut down gracefully.`,
		Args: noArgs("backend"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.configPath != "" {
				if err := applyConfigFile(cmd.Context(), cmd, f.configPath); err != nil {
					return err
				}
			}
			return f.run(cmd)
		},
	}
	cmd.Flags().StringVar(&f.configPath, "config", "", "configuration file: a JSON object of flag names and values (docs/backend.md); flags override it")
	f.sf.add(cmd)
	f.qf.add(cmd)
	f.af.add(cmd)
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:8443", "address to serve HTTP on")
	cmd.Flags().StringVar(&f.rulesPath, "rules", "", "fare rules (the capping rules format, docs/capping.md)")
	cmd.Flags().StringVar(&f.vaultKeyPath, "vault-key", "", "the payment vault's private key (vault.key, faregate keys vault)")
	cmd.Flags().StringVar(&f.tokenKeyPath, "token-key", "", "the agency's token key (token.key): lets the vault check cards against tokens")
	cmd.Flags().StringVar(&f.operatorPath, "operator-token", "", "file holding the operator bearer token of the read API (unset: read API closed)")
	cmd.Flags().StringVar(&f.denylistKey, "denylist-key", "", "the deny-list signing key (denylist.key): serve GET /v1/denylist to gates")
	cmd.Flags().StringVar(&f.dlRotate.nextPath, "denylist-next-key", "", "key rotation: the next deny-list signing key (a private key file); its public key is announced to gates in every signed head")
	cmd.Flags().BoolVar(&f.dlRotate.switchKeys, "denylist-switch", false, "key rotation: sign with --denylist-next-key from now on; --denylist-key only vouches for the stored list")
	cmd.Flags().DurationVar(&f.grace, "grace", 2*time.Hour, "wait this long after a service day ends before settling it (late uploads)")
	cmd.Flags().BoolVar(&f.secureCookie, "console-secure-cookie", false, "mark the console's session cookie Secure (set when operators reach it over TLS)")
	cmd.Flags().StringVar(&f.usersPath, "console-users", "", "console operators: a file of NAME:bcrypt-hash lines (faregate backend hash-password)")
	cmd.Flags().BoolVar(&f.noSettle, "no-settle", false, "do not settle days here (run faregate settle elsewhere)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("backend: %w", err) })
	cmd.AddCommand(newBackendGatesCmd(), newBackendHashPasswordCmd())
	return cmd
}

// backendRun is what one run of the back office holds: its configuration
// read from the flags, and what it opened (closed in reverse at the end).
type backendRun struct {
	rules    *capping.Rules
	vaultKey *ecdh.PrivateKey
	tokenKey []byte
	operator string
	users    *console.Users
	store    backend.Store
	log      *slog.Logger
	reg      *prometheus.Registry
	m        *backend.Metrics
	srv      *backend.Server
	vault    *backend.Vault
	denyList *denylistreg.Registry
	closers  []func()
}

func (f *backendFlags) run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	b, err := f.open(ctx, cmd)
	if err != nil {
		return err
	}
	defer func() {
		for i := len(b.closers) - 1; i >= 0; i-- {
			b.closers[i]()
		}
	}()
	if err := f.mount(ctx, b); err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	b.log.Info("back office listening", "addr", l.Addr().String(), "store", storeName(f.sf))
	if b.srv.QR != nil && f.denylistKey == "" {
		b.log.Warn("QR revocation will not reach the gates: no --denylist-key")
	}
	if !f.noSettle {
		sc := &backend.Scheduler{Settler: &backend.Settler{Store: b.store, Rules: b.rules, Metrics: b.m}, Grace: f.grace, Log: b.log}
		go sc.Run(ctx)
	}
	err = b.srv.Serve(ctx, l)
	b.log.Info("back office stopped")
	return err
}

// open checks the flags, reads the rules and keys and opens the store.
func (f *backendFlags) open(ctx context.Context, cmd *cobra.Command) (*backendRun, error) {
	if f.rulesPath == "" || f.vaultKeyPath == "" {
		return nil, usageErr("backend: --rules and --vault-key are required")
	}
	if f.denylistKey == "" && (f.dlRotate.nextPath != "" || f.dlRotate.switchKeys) {
		return nil, usageErr("backend: --denylist-next-key and --denylist-switch need --denylist-key")
	}
	if f.dlRotate.switchKeys && f.dlRotate.nextPath == "" {
		return nil, usageErr("backend: --denylist-switch needs --denylist-next-key: the key to switch to")
	}
	b := &backendRun{log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))}
	var err error
	if b.rules, err = readRules(ctx, f.rulesPath); err != nil {
		return nil, err
	}
	if b.vaultKey, err = readVaultKey(ctx, f.vaultKeyPath); err != nil {
		return nil, err
	}
	if f.tokenKeyPath != "" {
		if b.tokenKey, err = readTokenKey(ctx, f.tokenKeyPath); err != nil {
			return nil, err
		}
	}
	if f.operatorPath != "" {
		t, err := readInput(ctx, "--operator-token", f.operatorPath, maxKeyFile)
		if err != nil {
			return nil, err
		}
		b.operator = strings.TrimSpace(string(t))
	}
	if f.usersPath != "" {
		if b.users, err = readConsoleUsers(ctx, f.usersPath); err != nil {
			return nil, err
		}
	}
	if b.store, err = f.sf.open(ctx, "backend"); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { b.store.Close() })
	return b, nil
}

// mount builds the HTTP server: ingest (with QR verification), the read
// API, the deny list, the web console and the acquirer link's debt API.
func (f *backendFlags) mount(ctx context.Context, b *backendRun) error {
	b.reg = prometheus.NewRegistry()
	b.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b.m = backend.NewMetrics(b.reg)
	writers := 1
	if f.sf.db != "" {
		writers = 4
	}
	qrv, qrAPI, err := f.qf.open(ctx, b.store, b.reg, b.operator)
	if err != nil {
		return err
	}
	b.srv = &backend.Server{
		Ingest:   backend.NewIngest(b.store, b.m, backend.IngestOptions{Writers: writers, QR: qrv}),
		Read:     &backend.ReadAPI{Store: b.store, Rules: b.rules, Token: b.operator},
		QR:       qrAPI,
		Gatherer: b.reg,
		Extra:    map[string]http.Handler{},
	}
	b.vault = backend.NewVault(b.store, b.vaultKey, b.tokenKey)
	if f.denylistKey != "" {
		if err := f.mountDenylist(ctx, b); err != nil {
			return err
		}
	}
	if b.operator != "" || b.users != nil {
		if err := f.mountConsole(b); err != nil {
			return err
		}
	}
	if f.af.addr != "" {
		return f.startAcquirer(ctx, b)
	}
	return nil
}

// mountDenylist serves the deny-list registry to the gates.
func (f *backendFlags) mountDenylist(ctx context.Context, b *backendRun) error {
	reg, h, closeDL, err := openDenylistRegistry(ctx, f.sf, f.denylistKey, f.dlRotate)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, closeDL)
	b.denyList = reg
	b.srv.Read.DenyList = reg
	if b.srv.QR != nil {
		b.srv.QR.Denylist = reg // a revoked QR device key lists its token
	}
	b.srv.Extra["GET "+dlsync.ListPath] = h
	b.srv.Extra["GET "+dlsync.HeadPath] = h
	return nil
}

// mountConsole serves the web console (docs/console.md): operators log in
// with the operator token or a user name and password of --console-users.
// Look-up by PAN needs the token key.
func (f *backendFlags) mountConsole(b *backendRun) error {
	var pv *backend.Vault
	if b.tokenKey != nil {
		pv = b.vault
	}
	con, err := console.New(console.Options{API: b.srv.Read, Vault: pv, Users: b.users, SecureCookie: f.secureCookie})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { con.Close() })
	b.srv.Extra[console.Prefix] = con.Handler()
	b.srv.Extra["GET /{$}"] = http.RedirectHandler(console.Prefix, http.StatusSeeOther)
	return nil
}

// startAcquirer dials the acquirer (docs/iso8583.md), serves the debt API
// and runs the charging loop until ctx ends.
func (f *backendFlags) startAcquirer(ctx context.Context, b *backendRun) error {
	af := &f.af
	if b.denyList == nil {
		return usageErr("backend: --acquirer needs --denylist-key: a declined charge puts the card on the deny list")
	}
	client, err := af.dial(ctx, b.log)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { client.Close() })
	policy := acquirer.DefaultPolicy
	if af.firstRide != "" {
		if policy.FirstRideLimit, err = b.rules.Currency.ParseAmount(af.firstRide); err != nil || policy.FirstRideLimit < 0 {
			return usageErr("backend: --first-ride-limit %q: want an amount in %s such as 2.50", af.firstRide, b.rules.Currency.Code)
		}
	}
	link := charging.New(client, b.store, b.vault, b.denyList, charging.Options{Currency: b.rules.Currency, Policy: policy, Metrics: charging.NewMetrics(b.reg), RetapSpacing: af.retapSpacing})
	mux := http.NewServeMux()
	deny := b.denyList
	link.Register(mux, b.operator, b.rules, func(t rider.Token) bool { return deny.Current().Contains(t) })
	b.srv.Extra["GET /v1/riders/{token}/debt"], b.srv.Extra["POST /v1/riders/{token}/debt/pay"] = mux, mux
	b.log.Info("acquirer link", "addr", af.addr, "every", af.interval.String())
	go link.Run(ctx, af.interval, func(err error) { b.log.Error("acquirer link", "err", err) })
	return nil
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
	for _, c := range []*cobra.Command{newGatesAddCmd(), newGatesListCmd(), newGatesToggleCmd("disable", true), newGatesToggleCmd("enable", false)} {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("gates: %w", err) })
		cmd.AddCommand(c)
	}
	return cmd
}

func newGatesAddCmd() *cobra.Command {
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

	return add
}

func newGatesListCmd() *cobra.Command {
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

	return list
}

// newGatesToggleCmd is gates disable (disabled) or gates enable.
func newGatesToggleCmd(use string, disabled bool) *cobra.Command {
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
