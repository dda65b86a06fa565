package central

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/fleet"
	"github.com/cargogate/cargogate/internal/testenv"
)

// The reference central shows the fleet view under /fleet/: every gateway
// whose key it trusts (a key added at run time too), from its signed
// status, worst first; a status signed by another gateway is ignored and
// counted there, not shown.
func TestFleetView(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	h := start(t, broker, nil)
	h.c.AddGatewayKey(g08.Kid, g08.Public())
	gw := dial(t, broker, "gw")
	now := time.Now().UTC()
	pub := func(name string, s customs.Status, signer interface{ Seal(any) ([]byte, error) }) {
		t.Helper()
		msg, err := signer.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		gw.publish(t, customs.GatewayTopic(site, name, customs.LeafStatus), msg, true)
	}
	pub("g07", customs.Status{Type: customs.TypeStatus, Site: site, Gateway: "g07", State: "online", AppliedSeq: 10, HeadSeq: 12, Outbox: 3, OutboxOldest: 4, Version: "1.4.0", At: now}, g07)
	h.expectHandled(t, "status:")
	pub("g08", customs.Status{Type: customs.TypeStatus, Site: site, Gateway: "g08", State: "offline", AppliedSeq: 12, HeadSeq: 12, Version: "1.4.0", At: now}, g08)
	h.expectHandled(t, "status:")
	// g08 says g07 is offline: refused by central and by the view.
	pub("g07", customs.Status{Type: customs.TypeStatus, Site: site, Gateway: "g07", State: "offline", AppliedSeq: 10, HeadSeq: 12, At: now.Add(time.Second)}, g08)
	h.expectHandled(t, "status:"+RejectWrongKid)

	srv := httptest.NewServer(h.c.Handler())
	defer srv.Close()
	get := func(path string) string {
		t.Helper()
		r, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, r.StatusCode, b)
		}
		return string(b)
	}
	var v fleet.View
	if err := json.Unmarshal([]byte(get("/fleet/api/fleet")), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Gateways) != 2 || v.Gateways[0].Gateway != "g08" || !v.Gateways[0].Alarm || v.Gateways[0].State != fleet.StateOffline ||
		v.Gateways[1].Gateway != "g07" || v.Gateways[1].State != fleet.StateOnline || v.Gateways[1].Lag != 2 || v.Gateways[1].Outbox != 3 {
		t.Fatalf("fleet view %+v", v.Gateways)
	}
	if v.Ignored[fleet.IgnoredWrongKid] != 1 {
		t.Errorf("ignored %v, want wrong_kid 1", v.Ignored)
	}
	if p := get("/fleet/"); !strings.Contains(p, "static/fleet.js") {
		t.Errorf("/fleet/ is not the page: %.200s", p)
	}
	if m := get("/fleet/metrics"); !strings.Contains(m, `cargogate_fleet_gateway_offline_alarm{gateway="g08"} 1`) {
		t.Errorf("/fleet/metrics lacks g08's alarm:\n%s", m)
	}
}
