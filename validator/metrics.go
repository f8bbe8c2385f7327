package validator

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gate daemon's tap, journal and upload metrics. The
// deny-list metrics are DenylistMetrics.
type Metrics struct {
	taps         *prometheus.CounterVec
	decide       prometheus.Histogram
	commit       prometheus.Histogram
	uploaded     prometheus.Counter
	uploadErrors *prometheus.CounterVec
	journalErrs  prometheus.Counter
	dlDamaged    prometheus.Gauge

	journal atomic.Pointer[Journal]
	now     atomic.Pointer[func() time.Time]
}

// Upload error kinds, the values of the kind label.
var uploadErrorKinds = []string{"network", "unauthorized", "refused", "too_large", "throttled", "server", "journal", "other"}

// latencyBuckets cover 50 µs to 1 s: a tap budget is 500 ms, a commit
// should cost about one fsync.
var latencyBuckets = []float64{50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1}

// NewMetrics registers the gate's metrics on reg:
//
//	faregate_taps_total{decision,reason,scheme}           decided taps
//	faregate_tap_decision_seconds                        card read to decision
//	faregate_journal_commit_seconds                      journal append with fsync
//	faregate_journal_errors_total                        appends that failed (the tap was refused)
//	faregate_journal_backlog                             taps not yet acknowledged by the back office
//	faregate_journal_oldest_unsent_age_seconds           age of the oldest of them (0: none)
//	faregate_journal_bytes                               estimated journal size
//	faregate_upload_taps_total                           taps acknowledged by the back office
//	faregate_upload_errors_total{kind}                   failed upload requests
//	faregate_denylist_damaged_at_start                   1: the gate started without its last deny list
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_taps_total", Help: "Decided taps by decision, reason and scheme.",
		}, []string{"decision", "reason", "scheme"}),
		decide: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "faregate_tap_decision_seconds", Help: "Time from card detection to decision (card read, ODA, rules).",
			Buckets: latencyBuckets,
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "faregate_journal_commit_seconds", Help: "Time to commit a tap to the journal, fsync included.",
			Buckets: latencyBuckets,
		}),
		uploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_upload_taps_total", Help: "Taps the back office acknowledged.",
		}),
		uploadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_upload_errors_total", Help: "Failed upload requests by kind.",
		}, []string{"kind"}),
		journalErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_journal_errors_total", Help: "Taps the journal could not record (refused at the gate).",
		}),
		dlDamaged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_denylist_damaged_at_start", Help: "1 when the deny-list snapshot was damaged at start and the gate runs on an empty list until a sync.",
		}),
	}
	now := time.Now
	m.now.Store(&now)
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_journal_backlog", Help: "Taps not yet acknowledged by the back office.",
	}, func() float64 {
		if j := m.journal.Load(); j != nil {
			return float64(j.Stats().Unsent)
		}
		return 0
	})
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_journal_oldest_unsent_age_seconds", Help: "Age of the oldest tap not yet acknowledged (0: none).",
	}, func() float64 {
		if j := m.journal.Load(); j != nil {
			if t := j.Stats().OldestUnsent; t != nil {
				return max(0, (*m.now.Load())().Sub(*t).Seconds())
			}
		}
		return 0
	})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "faregate_journal_bytes", Help: "Estimated size of the journal database.",
	}, func() float64 {
		if j := m.journal.Load(); j != nil {
			return float64(j.Bytes())
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.taps, m.decide, m.commit, m.uploaded, m.uploadErrors, m.journalErrs, m.dlDamaged, backlog, oldest, size} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("validator metrics: %w", err)
		}
	}
	for _, k := range uploadErrorKinds {
		m.uploadErrors.WithLabelValues(k)
	}
	return m, nil
}

// DenylistDamagedAtStart says the deny-list snapshot was damaged at start
// (true) or has been replaced since (false).
func (m *Metrics) DenylistDamagedAtStart(damaged bool) {
	if m == nil {
		return
	}
	v := 0.0
	if damaged {
		v = 1
	}
	m.dlDamaged.Set(v)
}

// observeJournal makes the backlog gauges read j, with the clock now.
func (m *Metrics) observeJournal(j *Journal, now func() time.Time) {
	if m == nil {
		return
	}
	m.journal.Store(j)
	m.now.Store(&now)
}

func (m *Metrics) tapDecided(decision, reason, scheme string, decide, commit time.Duration) {
	if m == nil {
		return
	}
	m.taps.WithLabelValues(decision, reason, scheme).Inc()
	m.decide.Observe(decide.Seconds())
	if commit >= 0 { // -1: nothing was committed
		m.commit.Observe(commit.Seconds())
	}
}

func (m *Metrics) journalFailed() {
	if m != nil {
		m.journalErrs.Inc()
	}
}

func (m *Metrics) uploadFailed(kind string) {
	if m != nil {
		m.uploadErrors.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) uploadAcked(n int) {
	if m != nil {
		m.uploaded.Add(float64(n))
	}
}
