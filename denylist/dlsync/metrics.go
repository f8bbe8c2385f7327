package dlsync

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/faregate/faregate/denylist"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the deny-list sync metrics of a gate.
type Metrics struct {
	version     prometheus.Gauge
	entries     prometheus.Gauge
	created     prometheus.Gauge
	lastSuccess prometheus.Gauge
	headExpires prometheus.Gauge
	headVersion prometheus.Gauge
	trusted     prometheus.Gauge
	failures    *prometheus.CounterVec
	updates     *prometheus.CounterVec

	now     atomic.Pointer[func() time.Time]
	ageFrom atomic.Int64 // Unix ns the age is measured from; 0: unknown
	stale   atomic.Pointer[func() bool]
}

// FailureReasons are the values of the reason label of
// faregate_denylist_sync_failures_total, in the order docs/denylist.md
// explains them.
var FailureReasons = []string{
	// the transport
	"fetch", "timeout", "too_large", "protocol", "behind",
	// the head statement
	"head", "head_expired", "head_replay", "head_future", "unconfirmed", "diverged",
	// a file refused by the replica
	"malformed", "truncated", "signature", "list_id", "gap", "replay", "inconsistent",
	// housekeeping
	"compact", "other",
}

// NewMetrics registers the deny-list metrics on reg:
//
//	faregate_denylist_version                            version in force (0: none)
//	faregate_denylist_entries                            entries in force
//	faregate_denylist_created_timestamp_seconds          when the version in force was published
//	faregate_denylist_last_success_timestamp_seconds     last time the gate confirmed it up to date
//	faregate_denylist_age_seconds                        seconds since the newest signed head that matched it
//	faregate_denylist_stale                              1: no fresh signed head vouches for the list in force
//	faregate_denylist_head_version                       version named by the newest verified head
//	faregate_denylist_head_expires_timestamp_seconds     when that head expires
//	faregate_denylist_trusted_keys                       signing keys the gate trusts (more than 1 during a key rotation)
//	faregate_denylist_sync_failures_total{reason}        failed polls and refused files (FailureReasons)
//	faregate_denylist_updates_total{kind}                files applied, snapshot or delta
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &Metrics{
		version:     gauge("faregate_denylist_version", "Version of the deny list in force (0: none)."),
		entries:     gauge("faregate_denylist_entries", "Entries in the deny list in force."),
		created:     gauge("faregate_denylist_created_timestamp_seconds", "When the back office published the version in force."),
		lastSuccess: gauge("faregate_denylist_last_success_timestamp_seconds", "Last time the gate confirmed its deny list up to date."),
		headVersion: gauge("faregate_denylist_head_version", "Version named by the newest verified signed head statement."),
		headExpires: gauge("faregate_denylist_head_expires_timestamp_seconds", "When the newest verified signed head statement expires."),
		trusted:     gauge("faregate_denylist_trusted_keys", "Deny-list signing keys the gate trusts: 1, more while a key rotation is under way."),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_denylist_sync_failures_total", Help: "Deny-list polls that failed or files refused, by reason.",
		}, []string{"reason"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_denylist_updates_total", Help: "Deny-list files applied, by kind.",
		}, []string{"kind"}),
	}
	now := time.Now
	m.now.Store(&now)
	never := func() bool { return false }
	m.stale.Store(&never)
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_denylist_age_seconds",
		Help: "Seconds since the issue of the newest signed head statement that matched the deny list in force (before the first: since that list was published).",
	}, m.age)
	stale := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_denylist_stale",
		Help: "1 when no fresh signed head statement vouches for the deny list in force (expired, missing or not matching).",
	}, func() float64 {
		if (*m.stale.Load())() {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.version, m.entries, m.created, m.lastSuccess, m.headVersion, m.headExpires, m.trusted, m.failures, m.updates, age, stale} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dlsync: metrics: %w", err)
		}
	}
	for _, r := range FailureReasons {
		m.failures.WithLabelValues(r)
	}
	for _, k := range []string{"snapshot", "delta"} {
		m.updates.WithLabelValues(k)
	}
	return m, nil
}

func (m *Metrics) age() float64 {
	from := m.ageFrom.Load()
	if from == 0 {
		return 0
	}
	return (*m.now.Load())().Sub(time.Unix(0, from)).Seconds()
}

func (m *Metrics) setList(l *denylist.List) {
	m.version.Set(float64(l.Version()))
	m.entries.Set(float64(l.Len()))
	if l.Version() != 0 {
		m.created.Set(seconds(l.Created()))
	}
}

func (m *Metrics) setHead(h *denylist.Head, trustedKeys int) {
	m.trusted.Set(float64(trustedKeys))
	m.headVersion.Set(float64(h.Version))
	m.headExpires.Set(seconds(h.Expires))
}

func seconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

// syncError is a failed poll with its metric reason.
type syncError struct {
	reason string
	err    error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// failureReason maps an error to its metric label.
func failureReason(err error) string {
	if se, ok := errors.AsType[*syncError](err); ok {
		return se.reason
	}
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrTimeout, "timeout"},
		{ErrTooLarge, "too_large"},
		{denylist.ErrTooLarge, "too_large"},
		{ErrProtocol, "protocol"},
		{ErrBehind, "behind"},
		{denylist.ErrTruncated, "truncated"},
		{denylist.ErrMalformed, "malformed"},
		{denylist.ErrKind, "malformed"},
		{denylist.ErrSignature, "signature"},
		{denylist.ErrListID, "list_id"},
		{denylist.ErrGap, "gap"},
		{denylist.ErrReplay, "replay"},
		{denylist.ErrInconsistent, "inconsistent"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}
