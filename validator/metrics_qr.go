package validator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/faregate/faregate/qr"
)

// qrCollector exports a qr.Gate's Stats at scrape time.
type qrCollector struct {
	g                                  *qr.Gate
	accepted, refused, devices, evicts *prometheus.Desc
}

// RegisterQRMetrics registers the QR verifier's own counters on reg (the
// taps themselves are in faregate_taps_total{scheme="qr"}):
//
//	faregate_qr_verified_total                 codes the verifier accepted
//	faregate_qr_refused_total{reason}          codes it refused, by qr reason
//	faregate_qr_replay_devices                 device keys in the replay memory
//	faregate_qr_replay_evicted_total           live entries dropped because the memory was full
func RegisterQRMetrics(reg prometheus.Registerer, g *qr.Gate) error {
	c := &qrCollector{g: g,
		accepted: prometheus.NewDesc("faregate_qr_verified_total", "QR codes the gate's verifier accepted.", nil, nil),
		refused:  prometheus.NewDesc("faregate_qr_refused_total", "QR codes the gate's verifier refused, by reason.", []string{"reason"}, nil),
		devices:  prometheus.NewDesc("faregate_qr_replay_devices", "Device keys in the gate's QR replay memory.", nil, nil),
		evicts:   prometheus.NewDesc("faregate_qr_replay_evicted_total", "Live replay-memory entries dropped because the memory was full.", nil, nil),
	}
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("validator qr metrics: %w", err)
	}
	return nil
}

func (c *qrCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.accepted
	ch <- c.refused
	ch <- c.devices
	ch <- c.evicts
}

func (c *qrCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.g.Stats()
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(s.Accepted))
	for r, n := range s.Refused {
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(n), string(r))
	}
	ch <- prometheus.MustNewConstMetric(c.devices, prometheus.GaugeValue, float64(s.Devices))
	ch <- prometheus.MustNewConstMetric(c.evicts, prometheus.CounterValue, float64(s.Evicted))
}
