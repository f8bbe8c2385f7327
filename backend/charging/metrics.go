package charging

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the acquirer link's Prometheus metrics, registered on the
// registry given to NewMetrics. No label holds a token or card data.
type Metrics struct {
	outcomes  *prometheus.CounterVec
	checks    *prometheus.CounterVec
	retaps    prometheus.Counter
	payoffs   *prometheus.CounterVec
	held      prometheus.Gauge
	roundErrs prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_acquirer_charges_total",
			Help: "Charges (and resubmissions) answered, by result: approved, declined, failed, reversal_pending.",
		}, []string{"result"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_acquirer_account_checks_total",
			Help: "First-use account checks recorded, by result: approved, declined, failed.",
		}, []string{"result"}),
		retaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_backend_acquirer_retap_resubmissions_total",
			Help: "Debts made due because the deny-listed card tapped again.",
		}),
		payoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "faregate_backend_acquirer_payoffs_total",
			Help: "POST /v1/riders/{token}/debt/pay calls, by result: paid, owed (a debt left), none (no debt), no_answer, error.",
		}, []string{"result"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "faregate_backend_acquirer_reversals_pending",
			Help: "Charges held until the acquirer acknowledges their reversal.",
		}),
		roundErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "faregate_backend_acquirer_round_errors_total",
			Help: "Rounds of the link that ended with an error (acquirer down, store).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.checks, m.retaps, m.payoffs, m.held, m.roundErrs)
	}
	return m
}
