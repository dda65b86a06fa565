package fleet

import (
	"embed"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// Handler serves the fleet view, read only, at paths relative to where it
// is mounted (the page fetches them relatively, so it works at / and
// under a prefix with http.StripPrefix):
//
//	GET /            the page (bilingual, fluid from 360×640 to 1920×1080)
//	GET /static/...  its script and style
//	GET /api/fleet   View as JSON
//	GET /metrics     Prometheus metrics, one gauge family per figure, by gateway
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.FileServerFS(static))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := static.ReadFile("static/fleet.html")
		if err != nil {
			http.Error(w, "page missing from the build", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("GET /api/fleet", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(f.View())
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{f})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

var (
	gwLabel    = []string{"gateway"}
	descUp     = prometheus.NewDesc("cargogate_fleet_gateway_up", "1 while the gateway's last status says online and is recent, else 0.", gwLabel, nil)
	descAlarm  = prometheus.NewDesc("cargogate_fleet_gateway_offline_alarm", "1 while the offline alarm is raised: its status says offline, or it has been silent (or never seen) for offline_after.", gwLabel, nil)
	descApp    = prometheus.NewDesc("cargogate_fleet_gateway_applied_seq", "The gateway's contiguous watermark (applied_seq) in its last status.", gwLabel, nil)
	descLag    = prometheus.NewDesc("cargogate_fleet_gateway_lag", "The site's head minus the gateway's applied_seq.", gwLabel, nil)
	descOutbox = prometheus.NewDesc("cargogate_fleet_gateway_outbox_events", "Events not yet acknowledged by central, in the gateway's last status.", gwLabel, nil)
	descOldest = prometheus.NewDesc("cargogate_fleet_gateway_outbox_oldest_seconds", "Age of the gateway's oldest event not yet acknowledged by central.", gwLabel, nil)
	descCP     = prometheus.NewDesc("cargogate_fleet_gateway_checkpoint_age_seconds", "Age of the gateway's last signed audit checkpoint.", gwLabel, nil)
	descSeen   = prometheus.NewDesc("cargogate_fleet_gateway_last_seen_seconds", "Time since the gateway's last status was received.", gwLabel, nil)
	descInfo   = prometheus.NewDesc("cargogate_fleet_gateway_info", "The gateway's version, from its last status (value 1).", []string{"gateway", "version"}, nil)
	descHead   = prometheus.NewDesc("cargogate_fleet_head_seq", "The site's head: central's signed head, or the highest head_seq a gateway reported.", nil, nil)
	descConn   = prometheus.NewDesc("cargogate_fleet_connected", "1 while the fleet view's subscription to the broker is up.", nil, nil)
	descIgn    = prometheus.NewDesc("cargogate_fleet_statuses_ignored_total", "Status (and head) messages ignored, by reason: unsigned, forged, unknown gateway, stale...", []string{"reason"}, nil)
)

type collector struct{ f *Fleet }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descAlarm, descApp, descLag, descOutbox, descOldest, descCP, descSeen, descInfo, descHead, descConn, descIgn} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	v := c.f.View()
	g := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	g(descHead, float64(v.Head))
	g(descConn, b2f(v.Connected))
	for reason, n := range v.Ignored {
		ch <- prometheus.MustNewConstMetric(descIgn, prometheus.CounterValue, float64(n), reason)
	}
	for _, r := range v.Gateways {
		g(descUp, b2f(r.State == StateOnline), r.Gateway)
		g(descAlarm, b2f(r.Alarm), r.Gateway)
		if r.LastSeen == nil {
			continue // never seen: no figures to give
		}
		g(descApp, float64(r.AppliedSeq), r.Gateway)
		g(descLag, float64(r.Lag), r.Gateway)
		g(descOutbox, float64(r.Outbox), r.Gateway)
		g(descOldest, f0(r.OldestS), r.Gateway)
		g(descSeen, f0(r.SeenAgeS), r.Gateway)
		if r.CheckAgeS != nil {
			g(descCP, *r.CheckAgeS, r.Gateway)
		}
		g(descInfo, 1, r.Gateway, r.Version)
	}
}
