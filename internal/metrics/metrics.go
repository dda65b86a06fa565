// Package metrics is the gateway's Prometheus exposition: the link's and
// outbox's state read at scrape time, decisions and device states counted
// as they happen, the data files' sizes; and the files' growth for the
// status document.
package metrics

import (
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cargogate/cargogate/drivers"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/sync/link"
)

// Source is the link's state, read at every scrape (*link.Link).
type Source interface {
	Snapshot() link.Snapshot
}

var _ Source = (*link.Link)(nil)

// Metrics is the gateway's Prometheus exposition; it hears outcomes and
// device changes as a station.Observer.
type Metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	devices   *prometheus.GaugeVec
}

var _ station.Observer = (*Metrics)(nil)

// New returns the exposition of src and of the sizes of files, with Go
// runtime and process metrics.
func New(src Source, files ...string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cargogate_decisions_total", Help: "Scans decided, by station, decision and reason.",
	}, []string{"station", "decision", "reason"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cargogate_scan_to_gate_seconds", Help: "From the scanner line read to the gate told, event journalled first.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .3, 1},
	}, []string{"station"})
	m.devices = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cargogate_device_up", Help: "1 while a device is up, 0 while down or faulty.",
	}, []string{"station", "device"})
	m.reg.MustRegister(m.decisions, m.latency, m.devices, linkCollector{src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		fileCollector(files))
	return m
}

// CounterFunc registers a counter read from f at each scrape, for a count
// another part keeps (the audit log's lost records, say).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Handler serves the exposition (GET /metrics). Under the unit's
// ProcSubset=pid, /proc/stat is hidden: the process collector leaves out
// process_start_time_seconds (it needs the boot time) and serves the rest.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// BuildInfo registers cargogate_build_info, always 1, whose labels are
// the version, commit and build date of the running binary and the Go
// release it was built with.
func (m *Metrics) BuildInfo(version, commit, date, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cargogate_build_info", Help: "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "date": date, "goversion": goVersion},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// Decided counts a decided scan and, at a station with a gate, its
// scan-to-gate latency.
func (m *Metrics) Decided(o station.Outcome) {
	if o.Kind != "" && o.Kind != "scan" {
		return
	}
	d := "stop"
	if o.Pass {
		d = "pass"
	}
	m.decisions.WithLabelValues(o.Station, d, o.Reason).Inc()
	// Gate is "none" (or unset) where no gate was told: a station without
	// one has no scan-to-gate time.
	if o.Gate != "" && o.Gate != "none" {
		m.latency.WithLabelValues(o.Station).Observe(o.Latency.Seconds())
	}
}

// Device sets a device's up gauge.
func (m *Metrics) Device(st, dev string, state drivers.State, _ string) {
	v := 0.0
	if state == drivers.Up {
		v = 1
	}
	m.devices.WithLabelValues(st, dev).Set(v)
}

var (
	descOnline    = prometheus.NewDesc("cargogate_link_online", "1 while the order connection to the broker is up.", nil, nil)
	descWatermark = prometheus.NewDesc("cargogate_applied_seq", "The applied watermark: every seq up to it is applied.", nil, nil)
	descHead      = prometheus.NewDesc("cargogate_head_seq", "Central's highest seq as last heard.", nil, nil)
	descLag       = prometheus.NewDesc("cargogate_lag_orders", "Head (or highest seq seen) minus the watermark.", nil, nil)
	descApplied   = prometheus.NewDesc("cargogate_orders_applied_total", "Orders applied (new to the store).", nil, nil)
	descDup       = prometheus.NewDesc("cargogate_orders_duplicate_total", "Orders received again with the same content.", nil, nil)
	descConflict  = prometheus.NewDesc("cargogate_orders_conflict_total", "Orders under a seq already applied with other content.", nil, nil)
	descRejected  = prometheus.NewDesc("cargogate_messages_rejected_total", "Messages rejected (§2), by reason.", []string{"reason"}, nil)
	descResyncs   = prometheus.NewDesc("cargogate_resyncs_total", "Resync requests sent.", nil, nil)
	descOutbox    = prometheus.NewDesc("cargogate_outbox_events", "Events waiting for central's PUBACK.", nil, nil)
	descOutboxB   = prometheus.NewDesc("cargogate_outbox_bytes", "Bytes of events waiting.", nil, nil)
	descOldest    = prometheus.NewDesc("cargogate_outbox_oldest_seconds", "Age of the oldest event not yet acknowledged by central (events_ack).", nil, nil)
	descSent      = prometheus.NewDesc("cargogate_events_delivered_total", "Events delivered to central's broker.", nil, nil)
	descStoreOK   = prometheus.NewDesc("cargogate_store_writable", "1 while the order store takes commits.", nil, nil)
	descReady     = prometheus.NewDesc("cargogate_ready", "1 while the gateway is ready (store writable, config valid).", nil, nil)
	descGaps      = prometheus.NewDesc("cargogate_order_gaps", "Seqs held open by orders that cannot be applied (amendment 2): the watermark stops below the lowest.", nil, nil)
	descUndeliv   = prometheus.NewDesc("cargogate_order_seqs_undelivered", "Seqs a resync asked for and central's replay did not deliver (sent unreadable, or above what it can replay): held open like cargogate_order_gaps, asked for again every resync_timeout.", nil, nil)
	descUnapp     = prometheus.NewDesc("cargogate_orders_unappliable_total", "Orders received that could not be applied at all (amendment 2).", nil, nil)
	descDropped   = prometheus.NewDesc("cargogate_order_fields_dropped_total", "Fields out of form set aside in orders applied (office, ref, note, issued_at, an unlisted hold reason).", nil, nil)
	descBroker    = prometheus.NewDesc("cargogate_broker_connected", "1 for the broker each connection (conn: orders, events) is on, 0 for the other brokers of central.brokers.", []string{"conn", "broker"}, nil)
	descFileSize  = prometheus.NewDesc("cargogate_file_bytes", "Size of the gateway's data files.", []string{"file"}, nil)
)

type linkCollector struct{ src Source }

func (c linkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOnline, descWatermark, descHead, descLag, descApplied, descDup, descConflict,
		descRejected, descResyncs, descOutbox, descOutboxB, descOldest, descSent, descStoreOK, descReady,
		descGaps, descUndeliv, descUnapp, descDropped, descBroker} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c linkCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(descOnline, b2f(s.Online))
	g(descWatermark, float64(s.Watermark))
	g(descHead, float64(s.Head))
	g(descLag, float64(s.Lag))
	k(descApplied, float64(s.Applied))
	k(descDup, float64(s.Duplicates))
	k(descConflict, float64(s.Conflicts))
	for r, n := range s.RejectedBy {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n), r)
	}
	k(descResyncs, float64(s.Resyncs))
	g(descOutbox, float64(s.Outbox))
	g(descOutboxB, float64(s.OutboxBytes))
	g(descOldest, s.OutboxOldest)
	k(descSent, float64(s.EventsSent))
	g(descStoreOK, b2f(s.StoreWritable))
	g(descReady, b2f(s.Ready))
	g(descGaps, float64(s.GapCount))
	g(descUndeliv, float64(s.UndeliveredOpen))
	k(descUnapp, float64(s.Unappliable))
	k(descDropped, float64(s.FieldsDropped))
	for _, b := range s.Brokers {
		ch <- prometheus.MustNewConstMetric(descBroker, prometheus.GaugeValue, b2f(b == s.Broker), "orders", b)
		ch <- prometheus.MustNewConstMetric(descBroker, prometheus.GaugeValue, b2f(b == s.EventsBroker), "events", b)
	}
}

type fileCollector []string

func (f fileCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descFileSize }

func (f fileCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range f {
		if fi, err := os.Stat(p); err == nil {
			ch <- prometheus.MustNewConstMetric(descFileSize, prometheus.GaugeValue, float64(fi.Size()), fi.Name())
		}
	}
}

// Sizes tracks the data files' total size and its growth over the last
// hour, for the supervisor screen and status.
type Sizes struct {
	files []string

	mu      sync.Mutex
	samples []sizeSample
}

type sizeSample struct {
	at    time.Time
	bytes int64
}

// NewSizes tracks files.
func NewSizes(files ...string) *Sizes { return &Sizes{files: files} }

// Snapshot returns the files' sizes at now, their total, and, once there
// are five minutes of samples (one a minute, an hour kept), the growth in
// bytes per hour.
func (s *Sizes) Snapshot(now time.Time) map[string]any {
	var total int64
	files := map[string]int64{}
	for _, p := range s.files {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
			files[fi.Name()] = fi.Size()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.samples); n == 0 || now.Sub(s.samples[n-1].at) >= time.Minute {
		s.samples = append(s.samples, sizeSample{now, total})
	}
	for len(s.samples) > 1 && now.Sub(s.samples[0].at) > time.Hour {
		s.samples = s.samples[1:]
	}
	out := map[string]any{"bytes": total, "files": files}
	if first := s.samples[0]; now.Sub(first.at) >= 5*time.Minute {
		out["growth_bytes_per_hour"] = float64(total-first.bytes) / now.Sub(first.at).Hours()
	}
	return out
}
