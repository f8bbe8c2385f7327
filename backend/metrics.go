package backend

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the back office's Prometheus metrics, registered on the
// registry given to NewMetrics.
type Metrics struct {
	ingestTaps     *prometheus.CounterVec
	ingestRefused  *prometheus.CounterVec
	ingestSeconds  prometheus.Histogram
	batchTaps      prometheus.Histogram
	queueTaps      prometheus.Gauge
	gateLastSeen   *prometheus.GaugeVec
	settleSeconds  prometheus.Histogram
	settleRiders   prometheus.Counter
	settleTaps     prometheus.Counter
	settleCharges  *prometheus.CounterVec
	settleLastDone prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ingestTaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_ingest_taps_total",
			Help: "Taps acknowledged to gates: stored (new) or duplicate (stored before).",
		}, []string{"result"}),
		ingestRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_ingest_refused_total",
			Help: "Upload requests refused, by reason (unauthorized, malformed, invalid_record, too_large, busy, overloaded, store).",
		}, []string{"reason"}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "faregate_backend_ingest_request_seconds",
			Help:    "Time to answer an accepted upload, taps durably stored.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		batchTaps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "faregate_backend_ingest_batch_taps",
			Help:    "Taps per accepted upload batch.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000},
		}),
		queueTaps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_backend_ingest_queue_taps",
			Help: "Taps waiting for the store.",
		}),
		gateLastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "faregate_backend_gate_last_seen_timestamp_seconds",
			Help: "When each gate's last accepted upload arrived (Unix seconds).",
		}, []string{"gate"}),
		settleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "faregate_backend_settle_seconds",
			Help:    "Duration of a settlement run (or shard).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		settleRiders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_backend_settle_riders_total",
			Help: "Riders settled (one charge each).",
		}),
		settleTaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_backend_settle_taps_total",
			Help: "Legs of the settled days.",
		}),
		settleCharges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_settle_charges_total",
			Help: "Charges with an adjustment of earlier days (late taps) and refunds.",
		}, []string{"kind"}),
		settleLastDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_backend_settle_last_run_timestamp_seconds",
			Help: "When the last settlement run finished (Unix seconds).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ingestTaps, m.ingestRefused, m.ingestSeconds, m.batchTaps, m.queueTaps, m.gateLastSeen,
			m.settleSeconds, m.settleRiders, m.settleTaps, m.settleCharges, m.settleLastDone)
	}
	return m
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.ingestRefused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) settled(s Summary, d time.Duration) {
	m.settleSeconds.Observe(d.Seconds())
	m.settleRiders.Add(float64(s.Riders))
	m.settleTaps.Add(float64(s.Taps))
	m.settleCharges.WithLabelValues("adjustment").Add(float64(s.Adjustments))
	m.settleCharges.WithLabelValues("refund").Add(float64(s.Refunds))
	m.settleLastDone.SetToCurrentTime()
}
