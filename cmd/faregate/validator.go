package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/denylist/dlsync"
	"github.com/faregate/faregate/qr"
	"github.com/faregate/faregate/reader"
	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
	"github.com/google/uuid"
)

// validatorConfig is the daemon's configuration: the config file (JSON,
// the same names as the flags with "_" for "-", docs/validator.md), then
// the flags given on the command line on top.
type validatorConfig struct {
	Data        string `json:"data"`
	GateID      string `json:"gate_id"`
	GateKey     string `json:"gate_key"`
	VaultPub    string `json:"vault_pub"`
	TokenKey    string `json:"token_key"`
	CAPK        string `json:"capk"`
	Revoked     string `json:"revoked"`
	TestKeys    bool   `json:"test_keys"`
	Backend     string `json:"backend"`
	DenylistPub string `json:"denylist_pub"`
	DenylistDir string `json:"denylist_dir"`
	// DenylistStale: what the gate does while no fresh signed head vouches
	// for its deny list: "keep" deciding on the last list, or "reject".
	DenylistStale string       `json:"denylist_stale"`
	Location      tap.Location `json:"location"`
	Timezone      string       `json:"timezone"`
	Passback      int          `json:"passback"` // seconds; 0: off
	Metrics       string       `json:"metrics"`
	LogFormat     string       `json:"log_format"` // text, json
	LogLevel      string       `json:"log_level"`  // debug, info, warn, error
	MaxBytes      int64        `json:"journal_max_bytes"`
	Retention     string       `json:"retention"`         // Go duration
	UploadEvery   string       `json:"upload_interval"`   // Go duration
	DenylistEvery string       `json:"denylist_interval"` // Go duration
	Reader        *string      `json:"reader"`            // PC/SC reader name ("" the first)
	CardsFrom     string       `json:"cards_from"`
	QRFrom        string       `json:"qr_from"`   // -, FILE or unix:PATH
	QRIssuers     []string     `json:"qr_issuer"` // issuer public keys: current and retired
	QRWindow      int          `json:"qr_window"` // seconds; 0: qr.DefaultWindow
	Date          string       `json:"date"`      // test clock: transaction date YYYY-MM-DD
}

func newValidatorCmd() *cobra.Command {
	var (
		configFile string
		c          validatorConfig
		location   string
		reader     string
	)
	c.Passback = 60
	cmd := &cobra.Command{
		Use:   "validator --data DIR --gate-id ID --gate-key FILE --vault-pub FILE --token-key FILE [(--capk FILE | --test-keys) (--reader NAME | --cards-from FILE|-)] [--qr-from FILE|-|unix:PATH --qr-issuer FILE]",
		Short: "Run the gate daemon: decide taps offline, journal them, upload them",
		Long: `Runs a gate: every credential the card source presents is read, authenticated
offline and decided; the tap is committed to the journal (SQLite, fsync)
before the gate signals open; the journal is uploaded to the back office in
the background (--backend) and the deny list kept in sync. SIGTERM finishes
the tap under way, tries one last upload and exits 0. See docs/validator.md.

With --cards-from (software cards: one embedded profile name or profile
file per line, "-" for stdin) it prints one JSON line per tap to stdout
after the journal commit: {"id","time","decision","reason","token","scheme",
"message"}. A line is a promise that the tap is on disk.

With --qr-from (a QR scanner: lines from stdin, a device file or a unix
socket the gate listens on) it decides offline QR credentials too
(docs/qr.md), next to the card source or alone, and prints the same lines
(scheme "qr").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := loadValidatorConfig(cmd.Context(), configFile, &c, cmd); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("location") {
				l, err := parseLocation(location)
				if err != nil {
					return usageErr("--location: %w", err)
				}
				c.Location = l
			}
			if cmd.Flags().Changed("reader") {
				c.Reader = &reader
			}
			return runValidator(cmd.Context(), c, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "configuration file (JSON, docs/validator.md); flags override it")
	f.StringVar(&c.Data, "data", "", "data directory: journal and deny-list replica")
	f.StringVar(&c.GateID, "gate-id", "", "the gate's id, as registered at the back office")
	f.StringVar(&c.GateKey, "gate-key", "", "the gate's Ed25519 signing key (faregate keys gate)")
	f.StringVar(&c.VaultPub, "vault-pub", "", "the back office's vault public key: card data is sealed to it (faregate keys vault)")
	f.StringVar(&c.TokenKey, "token-key", "", "the agency token key (faregate keys token)")
	f.StringVar(&c.CAPK, "capk", "", "CA public key list (JSON, docs/oda.md)")
	f.StringVar(&c.Revoked, "revoked", "", "issuer certificate revocation list (JSON, docs/oda.md)")
	f.BoolVar(&c.TestKeys, "test-keys", false, "trust the software cards' test PKI instead of --capk: tests and the demo only")
	f.StringVar(&c.Backend, "backend", "", "back-office base URL for uploads and the deny list (none: nothing is uploaded)")
	f.StringVar(&c.DenylistPub, "denylist-pub", "", "the back office's deny-list signing key (faregate keys denylist); none: no deny list")
	f.StringVar(&c.DenylistStale, "denylist-stale", "keep", "while the deny list is stale (docs/denylist.md): keep deciding on the last list, or reject every tap")
	f.StringVar(&c.DenylistDir, "denylist-dir", "", "take deny-list files from this directory instead of --backend")
	f.StringVar(&location, "location", "", "where the gate stands: operator=…,line=…,stop=…,zones=1;2,direction=…,mode=…,role=on|off,group=…")
	f.StringVar(&c.Timezone, "timezone", "", "the gate's IANA time zone (default: the system's)")
	f.IntVar(&c.Passback, "passback", c.Passback, "refuse the same card at the same gate group within this many seconds (0: off)")
	f.StringVar(&c.Metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics")
	f.StringVar(&c.LogFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.Int64Var(&c.MaxBytes, "journal-max-bytes", 1<<30, "bound on the journal's size (docs/validator.md: when the disk fills)")
	f.StringVar(&c.Retention, "retention", "168h", "keep uploaded taps this long")
	f.StringVar(&c.UploadEvery, "upload-interval", "2s", "look for taps to upload this often when idle")
	f.StringVar(&c.DenylistEvery, "denylist-interval", "20s", "poll the back office for a new deny-list version this often")
	f.StringVar(&reader, "reader", "", `tap cards in this PC/SC reader ("" = the first; needs -tags pcsc)`)
	f.StringVar(&c.CardsFrom, "cards-from", "", `tap software cards named one per line in FILE ("-": stdin)`)
	f.StringVar(&c.QRFrom, "qr-from", "", `read QR codes a scanner writes, one per line, from FILE (a serial or HID device), "-" (stdin) or unix:PATH (listen)`)
	f.StringArrayVar(&c.QRIssuers, "qr-issuer", nil, "QR issuer public key (qr-issuer.pub from 'faregate keys qr'); repeat for the current and retired keys")
	f.IntVar(&c.QRWindow, "qr-window", int(qr.DefaultWindow/time.Second), "accept a QR code whose time is within this many seconds of the gate's clock, either way")
	f.StringVar(&c.Date, "date", "", "transaction date YYYY-MM-DD for the software cards' test clock (default: today)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	return cmd
}

// loadValidatorConfig reads the config file into c, except the settings
// given as flags: flags override the file.
func loadValidatorConfig(ctx context.Context, path string, c *validatorConfig, cmd *cobra.Command) error {
	b, err := readInput(ctx, "--config", path, maxJSONInput)
	if err != nil {
		return err
	}
	var file validatorConfig
	file.Passback = c.Passback
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return usageErr("--config %s: %w", path, err)
	}
	flags := *c
	*c = file
	overrideWithFlags(c, &flags, cmd)
	fillDefaults(c, &flags, cmd)
	return nil
}

// overrideWithFlags: a flag given on the command line wins over the file.
func overrideWithFlags(c, flags *validatorConfig, cmd *cobra.Command) {
	set := func(name string, dst, src any) {
		if !cmd.Flags().Changed(name) {
			return
		}
		switch d := dst.(type) {
		case *string:
			*d = *src.(*string)
		case *bool:
			*d = *src.(*bool)
		case *int:
			*d = *src.(*int)
		case *int64:
			*d = *src.(*int64)
		case *[]string:
			*d = *src.(*[]string)
		}
	}
	set("data", &c.Data, &flags.Data)
	set("gate-id", &c.GateID, &flags.GateID)
	set("gate-key", &c.GateKey, &flags.GateKey)
	set("vault-pub", &c.VaultPub, &flags.VaultPub)
	set("token-key", &c.TokenKey, &flags.TokenKey)
	set("capk", &c.CAPK, &flags.CAPK)
	set("revoked", &c.Revoked, &flags.Revoked)
	set("test-keys", &c.TestKeys, &flags.TestKeys)
	set("backend", &c.Backend, &flags.Backend)
	set("denylist-pub", &c.DenylistPub, &flags.DenylistPub)
	set("denylist-dir", &c.DenylistDir, &flags.DenylistDir)
	set("denylist-stale", &c.DenylistStale, &flags.DenylistStale)
	if c.DenylistStale == "" {
		c.DenylistStale = flags.DenylistStale
	}
	set("timezone", &c.Timezone, &flags.Timezone)
	set("passback", &c.Passback, &flags.Passback)
	set("metrics", &c.Metrics, &flags.Metrics)
	set("journal-max-bytes", &c.MaxBytes, &flags.MaxBytes)
	set("retention", &c.Retention, &flags.Retention)
	set("upload-interval", &c.UploadEvery, &flags.UploadEvery)
	set("denylist-interval", &c.DenylistEvery, &flags.DenylistEvery)
	set("cards-from", &c.CardsFrom, &flags.CardsFrom)
	set("date", &c.Date, &flags.Date)
	set("qr-from", &c.QRFrom, &flags.QRFrom)
	set("qr-issuer", &c.QRIssuers, &flags.QRIssuers)
	set("qr-window", &c.QRWindow, &flags.QRWindow)
	if c.QRWindow == 0 {
		c.QRWindow = flags.QRWindow
	}
}

// fillDefaults gives what neither the file nor a flag set its flag's
// default (flags holds them).
func fillDefaults(c, flags *validatorConfig, cmd *cobra.Command) {
	// Flags are bound to c's fields: flags holds their values.
	for name, f := range map[string]struct{ dst, v *string }{
		"log-format": {&c.LogFormat, &flags.LogFormat}, "log-level": {&c.LogLevel, &flags.LogLevel},
	} {
		if cmd.Flags().Changed(name) || *f.dst == "" {
			*f.dst = *f.v
		}
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = flags.MaxBytes
	}
	if c.Retention == "" {
		c.Retention = flags.Retention
	}
	if c.UploadEvery == "" {
		c.UploadEvery = flags.UploadEvery
	}
	if c.DenylistEvery == "" {
		c.DenylistEvery = flags.DenylistEvery
	}
}

// parseLocation reads "key=value,key=value"; zones are separated by ";".
func parseLocation(s string) (tap.Location, error) {
	var l tap.Location
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return l, fmt.Errorf("%q: want key=value", kv)
		}
		switch strings.TrimSpace(k) {
		case "operator":
			l.Operator = v
		case "line":
			l.Line = v
		case "stop":
			l.Stop = v
		case "zones":
			l.Zones = strings.Split(v, ";")
		case "direction":
			l.Direction = v
		case "mode":
			l.Mode = v
		case "role":
			l.Role = tap.Role(v)
		case "group":
			l.Group = v
		default:
			return l, fmt.Errorf("unknown key %q (operator, line, stop, zones, direction, mode, role, group)", k)
		}
	}
	return l, checkLocation(l)
}

// checkLocation applies the upload contract's limits, so a bad location
// is refused at start rather than by the back office later.
func checkLocation(l tap.Location) error {
	switch l.Role {
	case "", tap.RoleEntry, tap.RoleExit:
	default:
		return fmt.Errorf("role %q: want on, off or empty", l.Role)
	}
	probe := tap.Record{ID: mustV7(), Gate: "probe", Seq: 1, Time: time.Now(), Location: l, Kind: tap.KindEMV,
		Decision: tap.Reject, Reason: "probe"}
	if err := probe.Validate(); err != nil {
		return err
	}
	return nil
}

// runValidator is the daemon. It returns when the card source ends (after
// a last upload) or ctx is cancelled (SIGTERM, SIGINT).
func runValidator(ctx context.Context, c validatorConfig, stdin io.Reader, stdout, stderr io.Writer) error {
	log, err := newLogger(c.LogFormat, c.LogLevel, stderr)
	if err != nil {
		return err
	}
	st, err := checkConfig(c)
	if err != nil {
		return err
	}
	// Loading a large deny list makes garbage as large as the list: collect
	// it early while loading, hand it back to the OS after, and keep the
	// heap near what is live from then on (docs/validator.md, sizing).
	gc := debug.SetGCPercent(10)
	d, err := openDaemon(ctx, c, st, log)
	debug.SetGCPercent(gc)
	if err != nil {
		return err
	}
	defer d.close()
	boundMemory(log)
	// Sources stop when ctx is done, or when another source fails.
	sctx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	var srcs []validator.Source
	if hasCardSource(c) {
		src, closeSrc, err := openSource(sctx, c, stdin)
		if err != nil {
			return err
		}
		defer closeSrc()
		srcs = append(srcs, src)
	}
	if c.QRFrom != "" {
		src, closeSrc, err := openQRSource(sctx, c.QRFrom, stdin)
		if err != nil {
			return err
		}
		defer closeSrc()
		srcs = append(srcs, src)
	}
	var lines io.Writer
	if c.CardsFrom != "" || c.QRFrom != "" {
		lines = stdout
	}
	return d.serve(ctx, sctx, stopSources, srcs, lines, c.GateID)
}

func hasCardSource(c validatorConfig) bool { return c.CardsFrom != "" || c.Reader != nil }

// openSource opens the card source the configuration names.
func openSource(ctx context.Context, c validatorConfig, stdin io.Reader) (validator.Source, func(), error) {
	switch {
	case c.CardsFrom == "-":
		return newCardLines(stdin), func() {}, nil
	case c.CardsFrom != "":
		f, err := os.Open(c.CardsFrom)
		if err != nil {
			return nil, nil, usageErr("--cards-from: %w", err)
		}
		return newCardLines(f), func() { f.Close() }, nil
	default:
		rs, err := openReaderSource(ctx, *c.Reader)
		if err != nil {
			return nil, nil, err
		}
		return rs, rs.close, nil
	}
}

// serve runs the gate until every source ends or ctx is done, then
// drains. Sources run concurrently into the one station (the journal
// serialises their taps); sctx is ctx for the sources, and stopSources
// ends them all when one fails. With lines set, every tap is printed
// there after its commit.
func (d *daemon) serve(ctx, sctx context.Context, stopSources func(), srcs []validator.Source, lines io.Writer, gateID string) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	d.startBackground(bg, &wg)
	d.log.Info("gate in service", "gate", gateID, "next_seq", d.journal.NextSeq(),
		"backlog", d.journal.Stats().Unsent, "denylist_version", d.denylistVersion())
	var out *bufio.Writer
	if lines != nil {
		out = bufio.NewWriter(lines)
	}
	var outMu sync.Mutex
	report := func(o validator.Outcome) error {
		if o.Err != nil {
			d.log.Error("tap not journaled: gate refused it", "err", o.Err)
		}
		if d.uploader != nil && o.Record != nil {
			d.uploader.Kick()
		}
		if out == nil {
			return nil
		}
		outMu.Lock()
		defer outMu.Unlock()
		if err := writeOutcome(out, o); err != nil {
			return err
		}
		return out.Flush()
	}
	var (
		errMu sync.Mutex
		err   error
		swg   sync.WaitGroup
	)
	for _, src := range srcs {
		swg.Go(func() {
			serr := validator.Serve(sctx, src, d.station, report)
			if serr != nil && sctx.Err() == nil {
				errMu.Lock()
				if err == nil {
					err = serr
				}
				errMu.Unlock()
				stopSources()
			}
		})
	}
	swg.Wait()
	if err != nil && ctx.Err() == nil {
		stopBG()
		wg.Wait()
		return err
	}
	d.log.Info("draining", "backlog", d.journal.Stats().Unsent)
	stopBG()
	wg.Wait()
	d.drain(ctx)
	d.log.Info("gate stopped", "backlog", d.journal.Stats().Unsent)
	return nil
}

// drain tries one last upload of the backlog, bounded to 5 s.
func (d *daemon) drain(ctx context.Context) {
	if d.uploader == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for dctx.Err() == nil {
		if n, err := d.uploader.UploadOnce(dctx); err != nil || n == 0 {
			return
		}
	}
}

// memoryHeadroom is the heap the gate may use beyond what is live after
// start-up (the deny list above all) before the collector works harder:
// taps, uploads, and a deny-list delta being applied.
const memoryHeadroom = 32 << 20

// boundMemory returns the start-up garbage to the OS and, unless GOMEMLIMIT
// says otherwise, sets the runtime's soft memory limit to the live heap
// plus memoryHeadroom, so resident memory stays near the deny list's size
// instead of growing to twice the live heap between collections.
func boundMemory(log *slog.Logger) {
	debug.FreeOSMemory()
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := int64(ms.HeapAlloc) + memoryHeadroom
	debug.SetMemoryLimit(limit)
	log.Info("memory", "live_heap_mb", ms.HeapAlloc>>20, "soft_limit_mb", limit>>20)
}

// tapLine is the stdout contract of --cards-from (docs/cli.md).
type tapLine struct {
	ID       *string `json:"id"`
	Time     string  `json:"time"`
	Decision string  `json:"decision"`
	Reason   string  `json:"reason"`
	Token    *string `json:"token"`
	Scheme   string  `json:"scheme"`
	Message  string  `json:"message"`
}

func writeOutcome(w io.Writer, o validator.Outcome) error {
	l := tapLine{Time: o.Time.Format(time.RFC3339Nano), Decision: string(o.Verdict), Reason: string(o.Reason),
		Scheme: o.Scheme, Message: o.Message}
	if o.Record != nil {
		id := o.Record.ID.String()
		l.ID = &id
	}
	if !o.Token.IsZero() {
		t := o.Token.String()
		l.Token = &t
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", format)
}

// daemon is the gate's parts, built from the configuration.
type daemon struct {
	log      *slog.Logger
	journal  *validator.Journal
	station  *validator.Station
	uploader *validator.Uploader
	replica  *denylist.Replica
	sync     *dlsync.Client
	metrics  *http.Server
	reg      *prometheus.Registry
	damaged  *validator.Metrics // set while the gate runs on an empty list after a damaged snapshot
}

func (d *daemon) denylistVersion() uint64 {
	if d.replica == nil {
		return 0
	}
	return d.replica.List().Version()
}

func (d *daemon) close() {
	if d.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.metrics.Shutdown(ctx) //nolint:errcheck // closing down
		cancel()
	}
	if err := d.journal.Close(); err != nil {
		d.log.Error("journal close", "err", err)
	}
}

func (d *daemon) startBackground(ctx context.Context, wg *sync.WaitGroup) {
	if d.uploader != nil {
		wg.Go(func() { d.uploader.Run(ctx) }) //nolint:errcheck // ends with ctx
	}
	if d.sync != nil {
		wg.Go(func() { d.sync.Run(ctx) }) //nolint:errcheck // ends with ctx
	}
	if d.damaged != nil {
		wg.Go(func() { d.watchRepair(ctx) })
	}
	wg.Go(func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			if n, err := d.journal.Prune(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("journal prune", "err", err)
			} else if n > 0 {
				d.log.Info("journal pruned", "taps", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// watchRepair clears the damaged-at-start metric once a sync brought a list.
func (d *daemon) watchRepair(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if v := d.replica.List().Version(); v != 0 {
			d.damaged.DenylistDamagedAtStart(false)
			d.log.Info("deny list repaired by the sync", "version", v)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// settings are the values the configuration's strings stand for.
type settings struct {
	stale       validator.StalePolicy
	retention   time.Duration
	uploadEvery time.Duration
	dlEvery     time.Duration
	zone        *time.Location
}

// checkConfig refuses an unusable configuration (exit 2) before anything
// is opened, and parses what needs parsing.
func checkConfig(c validatorConfig) (settings, error) {
	var st settings
	switch {
	case c.Data == "":
		return st, usageErr("--data DIR is required")
	case c.GateID == "":
		return st, usageErr("--gate-id is required")
	case len(c.GateID) > tap.MaxField:
		return st, usageErr("--gate-id: at most %d bytes", tap.MaxField)
	case c.VaultPub == "":
		return st, usageErr("--vault-pub is required: card data is sealed to the back office's vault key")
	case c.TokenKey == "":
		return st, usageErr("--token-key is required")
	case c.Backend != "" && c.GateKey == "":
		return st, usageErr("--gate-key is required with --backend: uploads are signed")
	case c.CAPK == "" && !c.TestKeys && (c.CardsFrom != "" || c.Reader != nil):
		return st, usageErr("--capk FILE is required (or --test-keys, for tests and the demo only)")
	case c.Passback < 0:
		return st, usageErr("--passback: want seconds ≥ 0")
	case c.CardsFrom != "" && c.Reader != nil:
		return st, usageErr("--cards-from and --reader exclude each other")
	case c.CardsFrom == "" && c.Reader == nil && c.QRFrom == "":
		return st, usageErr("a source is required: --reader NAME, --cards-from FILE|- or --qr-from FILE|-|unix:PATH")
	case c.CardsFrom == "-" && c.QRFrom == "-":
		return st, usageErr("--cards-from - and --qr-from - cannot share standard input")
	case c.QRFrom != "" && len(c.QRIssuers) == 0:
		return st, usageErr("--qr-from needs --qr-issuer FILE (the back office's QR issuer public key)")
	case c.QRFrom == "" && len(c.QRIssuers) > 0:
		return st, usageErr("--qr-issuer without --qr-from: no QR scanner to read")
	case c.QRWindow <= 0:
		return st, usageErr("--qr-window: want seconds > 0")
	}
	if err := checkLocation(c.Location); err != nil {
		return st, usageErr("location: %w", err)
	}
	switch c.DenylistStale {
	case "", "keep":
		st.stale = validator.StaleKeepDeciding
	case "reject":
		st.stale = validator.StaleReject
	default:
		return st, usageErr("--denylist-stale %q: want keep or reject", c.DenylistStale)
	}
	var err error
	if st.retention, err = time.ParseDuration(c.Retention); err != nil || st.retention <= 0 {
		return st, usageErr("--retention %q: want a Go duration such as 168h", c.Retention)
	}
	if st.uploadEvery, err = time.ParseDuration(c.UploadEvery); err != nil || st.uploadEvery <= 0 {
		return st, usageErr("--upload-interval %q: want a Go duration such as 2s", c.UploadEvery)
	}
	if st.dlEvery, err = time.ParseDuration(c.DenylistEvery); err != nil || st.dlEvery <= 0 {
		return st, usageErr("--denylist-interval %q: want a Go duration such as 20s", c.DenylistEvery)
	}
	st.zone = time.Local
	if c.Timezone != "" {
		if st.zone, err = time.LoadLocation(c.Timezone); err != nil {
			return st, usageErr("--timezone: %w", err)
		}
	}
	return st, nil
}

// openDaemon builds the gate's parts from a checked configuration.
func openDaemon(ctx context.Context, c validatorConfig, st settings, log *slog.Logger) (*daemon, error) {
	vault, err := readVaultPub(ctx, c.VaultPub)
	if err != nil {
		return nil, err
	}
	tokenKey, err := readTokenKey(ctx, c.TokenKey)
	if err != nil {
		return nil, err
	}
	if c.TestKeys {
		log.Warn("TEST MODE: trusting the software cards' test PKI (--test-keys); never on a gate in service")
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	d := &daemon{log: log, reg: prometheus.NewRegistry()}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := validator.NewMetrics(d.reg)
	if err != nil {
		return nil, err
	}
	if err := d.openDenylist(ctx, c, st, m); err != nil {
		return nil, err
	}
	if d.journal, err = validator.OpenJournal(ctx, filepath.Join(c.Data, "journal.db"),
		validator.JournalOptions{MaxBytes: c.MaxBytes, Retention: st.retention}); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			d.journal.Close()
		}
	}()
	if d.station, err = d.openStation(ctx, c, st, m, vault, tokenKey); err != nil {
		return nil, err
	}
	if err := d.openUploader(ctx, c, st, m); err != nil {
		return nil, err
	}
	if c.Metrics != "" {
		if err := d.serveMetrics(c.Metrics); err != nil {
			return nil, err
		}
	}
	ok = true
	return d, nil
}

// openStation builds what decides and journals taps: the card gate (when
// a card source is configured), the QR verifier (with --qr-from), pass-back
// and the deny list.
func (d *daemon) openStation(ctx context.Context, c validatorConfig, st settings, m *validator.Metrics, vault *ecdh.PublicKey, tokenKey []byte) (*validator.Station, error) {
	rules := validator.Rules{TokenKey: tokenKey, StalePolicy: st.stale}
	if d.replica != nil {
		rules.DenyList = d.replica
	}
	if d.sync != nil {
		rules.DenyListStale = d.sync.Stale
	}
	so := validator.StationOptions{
		GateID: c.GateID, Location: c.Location, Zone: st.zone, Passback: time.Duration(c.Passback) * time.Second,
		Journal: d.journal, Vault: vault, DenylistVersion: d.denylistVersion, Metrics: m,
	}
	var err error
	if hasCardSource(c) {
		if so.Gate, err = buildGate(ctx, c, rules, st.zone); err != nil {
			return nil, err
		}
	}
	if c.QRFrom != "" {
		if so.QR, err = openQRGate(ctx, c, d.replica); err != nil {
			return nil, err
		}
		if st.stale == validator.StaleReject && d.sync != nil {
			so.QRStale = d.sync.Stale
		}
		if err := validator.RegisterQRMetrics(d.reg, so.QR); err != nil {
			return nil, err
		}
	}
	return validator.NewStation(ctx, so)
}

// openUploader starts nothing: it builds the uploader of --backend, or
// warns that taps stay in the journal.
func (d *daemon) openUploader(ctx context.Context, c validatorConfig, st settings, m *validator.Metrics) error {
	if c.Backend == "" {
		d.log.Warn("no --backend: taps stay in the journal, nothing is uploaded")
		return nil
	}
	key, err := readGateKey(ctx, c.GateKey)
	if err != nil {
		return err
	}
	if d.uploader, err = validator.NewUploader(validator.UploaderOptions{
		BaseURL: c.Backend, GateID: c.GateID, Key: key, Journal: d.journal, Interval: st.uploadEvery,
		DenylistVersion: d.denylistVersion, Logger: d.log, Metrics: m,
	}); err != nil {
		return usageErr("--backend: %w", err)
	}
	return nil
}

// buildGate builds the daemon's gate from the same flags as faregate tap
// (validator.Config: verifier → kernel → rules, written once).
func buildGate(ctx context.Context, c validatorConfig, rules validator.Rules, zone *time.Location) (*validator.Gate, error) {
	g := gateFlags{capk: c.CAPK, revoked: c.Revoked, testKeys: c.TestKeys, date: c.Date}
	cfg, err := g.config(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Terminal.Location = zone
	cfg.Rules = rules
	return validator.NewGateFromConfig(cfg)
}

// openDenylist opens the replica under DATA/denylist and its sync. A
// damaged snapshot is moved aside and the gate starts on an empty list,
// loudly: the sync repairs it.
func (d *daemon) openDenylist(ctx context.Context, c validatorConfig, st settings, m *validator.Metrics) error {
	if c.DenylistPub == "" {
		d.log.Warn("no --denylist-pub: no deny list is checked")
		return nil
	}
	b, err := readInput(ctx, "--denylist-pub", c.DenylistPub, maxKeyFile)
	if err != nil {
		return err
	}
	pub, err := denylist.ParsePublicKey(b)
	if err != nil {
		return usageErr("--denylist-pub: %w", err)
	}
	dir := filepath.Join(c.Data, "denylist")
	cfg := denylist.ReplicaConfig{ListID: denylist.DefaultListID, PublicKey: pub}
	d.replica, err = denylist.OpenReplica(ctx, dir, cfg)
	if errors.Is(err, denylist.ErrTrustFile) {
		// The keys announced since --denylist-pub are lost: move the file
		// aside and trust --denylist-pub alone (a gate whose back office
		// has switched keys then refuses its files until the new
		// denylist.pub is installed).
		bad := filepath.Join(dir, denylist.TrustFile)
		aside := bad + ".damaged-" + strconv.FormatInt(time.Now().Unix(), 10)
		if rerr := os.Rename(bad, aside); rerr != nil {
			return fmt.Errorf("deny list: %w (and cannot move it aside: %w)", err, rerr)
		}
		d.log.Error("deny-list trust file damaged: moved aside, trusting --denylist-pub alone", "err", err, "moved_to", aside)
		d.replica, err = denylist.OpenReplica(ctx, dir, cfg)
	}
	if err != nil {
		bad := filepath.Join(dir, denylist.SnapshotFile)
		aside := bad + ".damaged-" + strconv.FormatInt(time.Now().Unix(), 10)
		if rerr := os.Rename(bad, aside); rerr != nil {
			return fmt.Errorf("deny list: %w (and cannot move the snapshot aside: %w)", err, rerr)
		}
		d.log.Error("deny-list snapshot damaged: moved aside, starting on an EMPTY deny list until the sync repairs it",
			"err", err, "moved_to", aside)
		if d.replica, err = denylist.OpenReplica(ctx, dir, cfg); err != nil {
			return fmt.Errorf("deny list: %w", err)
		}
		m.DenylistDamagedAtStart(true)
		d.damaged = m
	}
	if d.replica.List().Version() == 0 {
		d.log.Warn("deny list empty (version 0) until the first sync")
	}
	dm, err := dlsync.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	var src dlsync.Source
	switch {
	case c.DenylistDir != "":
		src = &dlsync.DirSource{Dir: c.DenylistDir}
	case c.Backend != "":
		src = &dlsync.HTTPSource{BaseURL: c.Backend}
	default:
		d.log.Warn("no --backend nor --denylist-dir: the deny list is never updated")
		return nil
	}
	d.sync, err = dlsync.NewClient(dlsync.ClientOptions{Source: src, Replica: d.replica, Logger: d.log, Metrics: dm, Interval: st.dlEvery})
	return err
}

func (d *daemon) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageErr("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go d.metrics.Serve(ln) //nolint:errcheck // ends with Shutdown
	d.log.Info("metrics", "addr", ln.Addr().String())
	return nil
}

func readVaultPub(ctx context.Context, path string) (*ecdh.PublicKey, error) {
	b, err := readInput(ctx, "--vault-pub", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := tap.ParseVaultPublicKey(b)
	if err != nil {
		return nil, usageErr("--vault-pub: %w", err)
	}
	return k, nil
}

func readGateKey(ctx context.Context, path string) (ed25519.PrivateKey, error) {
	b, err := readInput(ctx, "--gate-key", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := tap.ParseGateKey(b)
	if err != nil {
		return nil, usageErr("--gate-key: %w", err)
	}
	return k, nil
}

// readTokenKey reads a token key file: 64 hex digits (faregate keys token).
func readTokenKey(ctx context.Context, path string) ([]byte, error) {
	b, err := readInput(ctx, "--token-key", path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := parseTokenKey(b)
	if err != nil {
		return nil, usageErr("--token-key %s: %w", path, err)
	}
	return k, nil
}

func parseTokenKey(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	k, err := hex.DecodeString(s)
	if err != nil || len(k) < 16 || len(k) > 64 {
		return nil, errors.New("want 32 to 128 hex digits (faregate keys token writes 64)")
	}
	return k, nil
}

// cardLines presents the software card named on each line of r.
type cardLines struct {
	sc *bufio.Scanner
}

func newCardLines(r io.Reader) *cardLines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	return &cardLines{sc: sc}
}

func (c *cardLines) Next(ctx context.Context) (validator.Presentation, error) {
	for {
		if err := ctx.Err(); err != nil {
			return validator.Presentation{}, err
		}
		if !c.sc.Scan() {
			if err := c.sc.Err(); err != nil {
				return validator.Presentation{}, fmt.Errorf("--cards-from: %w", err)
			}
			return validator.Presentation{}, io.EOF
		}
		name := strings.TrimSpace(c.sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		card, err := loadCard(ctx, name)
		if err != nil {
			return validator.Presentation{}, err
		}
		return validator.Presentation{Card: card}, nil
	}
}

// readerSource presents each card that enters a PC/SC reader's field.
type readerSource struct {
	r *reader.Reader
}

func openReaderSource(ctx context.Context, name string) (*readerSource, error) {
	r, err := reader.Open(ctx, reader.Options{Name: name})
	if err != nil {
		return nil, err
	}
	return &readerSource{r: r}, nil
}

func (s *readerSource) Next(ctx context.Context) (validator.Presentation, error) {
	sess, err := s.r.WaitCard(ctx)
	if err != nil {
		return validator.Presentation{}, err
	}
	return validator.Presentation{Card: sess, Release: func() {
		// Wait (bounded) for the card to leave, so one card is one tap.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sess.WaitRemoval(wctx) //nolint:errcheck // a card left in the field is tapped again after the wait
		cancel()
		sess.Close()
	}}, nil
}

func (s *readerSource) close() { s.r.Close() }

func mustV7() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return id
}
