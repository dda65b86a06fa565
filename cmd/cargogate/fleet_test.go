package main

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/fleet"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

// addGateway starts one more gateway process of the site on its broker,
// with a sort station on a pty, and returns it and its public key.
func (s *site) addGateway(name string) (*testenv.Proc, string) {
	s.t.Helper()
	scanner := testenv.NewPty(s.t)
	cfg := filepath.Join(s.dir, name+".yaml")
	body := fmt.Sprintf(`site: PVG-W
gateway: %s
data_dir: %s
central:
  broker: %s
  keys:
    central-sim: %q
stations:
  - id: sort-1
    role: sort
    scanner: {driver: serial, port: %s, baud: 9600}
`, name, filepath.Join(s.dir, name), s.broker.URL(), s.centralKey, scanner.Path)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		s.t.Fatal(err)
	}
	out, err := exec.Command(bins["cargogate"], "keys", "--config", cfg).Output()
	if err != nil {
		s.t.Fatalf("cargogate keys: %v", err)
	}
	_, pub, _ := strings.Cut(string(out), "public_key: ")
	return testenv.Start(s.t, "cargogate "+name, bins["cargogate"], "run", "--config", cfg), strings.TrimSpace(pub)
}

// fleetView reads /api/fleet (from loopback: no token needed).
func fleetView(t *testing.T, addr string) fleet.View {
	t.Helper()
	var v fleet.View
	getJSON(t, "http://"+addr+"/api/fleet", &v)
	return v
}

// waitFleet polls /api/fleet until ok holds.
func waitFleet(t *testing.T, addr, what string, ok func(fleet.View) bool) fleet.View {
	t.Helper()
	var v fleet.View
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if v = fleetView(t, addr); ok(v) {
			return v
		}
	}
	t.Fatalf("fleet view never showed %s: %+v", what, v)
	return v
}

func row(v fleet.View, name string) fleet.Row {
	for _, r := range v.Gateways {
		if r.Gateway == name {
			return r
		}
	}
	return fleet.Row{}
}

// TestFleet runs `cargogate fleet` against three real gateway processes on
// mosquitto with the reference central: it shows each with its version
// and lag against central's signed head; a status forged for one of them
// is ignored and counted; a gateway killed with SIGKILL (its will) raises
// the offline alarm and comes first; a client off loopback needs a token.
// Then the page in Chromium at 1366×768 and 360×640: worst first, the
// offline row visible, nothing wider than the screen.
func TestFleet(t *testing.T) {
	s := newSite(t)
	g08, k08 := s.addGateway("g08")
	g09, k09 := s.addGateway("g09")
	_ = g08
	addr := freePort(t)
	cfg := filepath.Join(s.dir, "fleet.yaml")
	body := fmt.Sprintf(`site: PVG-W
broker: {url: %s}
central_keys: {central-sim: %q}
gateways:
  g07: %s
  g08: %s
  g09: %s
offline_after: 1m
http:
  listen: %s
  tokens: [{name: it-wall, role: screens, token: %s}]
`, s.broker.URL(), s.centralKey, s.gwKey, k08, k09, addr, testOpToken)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, "cargogate fleet", bins["cargogate"], "fleet", "--config", cfg)
	s.waitHTTP(addr + "/api/fleet")

	waitFleet(t, addr, "three gateways online", func(v fleet.View) bool { return v.Online == 3 && v.Connected })
	last := s.issue(customs.Order{Action: customs.Release, Subject: sub(customs.Parcel, s10(1)), ExpiresAt: time.Now().Add(time.Hour).UTC()},
		customs.Order{Action: customs.Release, Subject: sub(customs.Parcel, s10(2)), ExpiresAt: time.Now().Add(time.Hour).UTC()})
	v := waitFleet(t, addr, "every gateway at central's head", func(v fleet.View) bool {
		for _, r := range v.Gateways {
			if r.AppliedSeq != last || r.Lag != 0 {
				return false
			}
		}
		return v.Head == last && v.CentralHead
	})
	for _, r := range v.Gateways {
		if r.Version == "" || r.Level != fleet.LevelOK || r.LastSeen == nil {
			t.Errorf("%s: %+v, want ok with a version and a last seen", r.Gateway, r)
		}
	}

	// A status for g07 signed with another key (same kid): ignored, counted.
	forger := envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{66}, 32))}
	forged, _ := forger.Seal(customs.Status{Type: customs.TypeStatus, Site: "PVG-W", Gateway: "g07", State: "offline", At: time.Now().UTC()})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(s.broker.URL()).SetClientID("forger"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("forger connect: %v", tok.Error())
	}
	// Not retained: the real retained status stays the broker's.
	if tok := c.Publish(customs.GatewayTopic("PVG-W", "g07", customs.LeafStatus), 1, false, forged); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("forger publish: %v", tok.Error())
	}
	c.Disconnect(100)
	v = waitFleet(t, addr, "the forged status counted", func(v fleet.View) bool { return v.Ignored[envelope.ReasonBadSignature] == 1 })
	if r := row(v, "g07"); r.State != fleet.StateOnline || r.Alarm {
		t.Fatalf("after a forged offline status g07 shows %+v", r)
	}

	g09.Kill()
	v = waitFleet(t, addr, "g09's offline alarm", func(v fleet.View) bool { return row(v, "g09").Alarm })
	if r := v.Gateways[0]; r.Gateway != "g09" || r.State != fleet.StateOffline || r.AppliedSeq != last || v.Alarms != 1 || v.Online != 2 {
		t.Fatalf("after g09 was killed: first %+v, alarms %d, online %d", r, v.Alarms, v.Online)
	}

	// Off loopback (as through a reverse proxy): a token of a view role.
	get := func(token string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/fleet", nil)
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	if a, b := get(""), get(testOpToken); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Errorf("off loopback: without a token %d, with the screens token %d; want 401, 200", a, b)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if r, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(b), `cargogate_fleet_gateway_offline_alarm{gateway="g09"} 1`) {
			t.Errorf("/metrics lacks g09's alarm:\n%s", b)
		}
	}

	t.Run("browser", func(t *testing.T) {
		tab := browser(t)
		p := &page{t: t, tab: tab, dir: artifactsDir(t)}
		for _, sz := range []struct{ w, h int }{{1366, 768}, {360, 640}} {
			for _, lang := range []string{"zh", "en"} {
				where := fmt.Sprintf("%s %dx%d", lang, sz.w, sz.h)
				p.do(where, chromedp.EmulateViewport(int64(sz.w), int64(sz.h)))
				p.do("open "+where, chromedp.Navigate("http://"+addr+"/?lang="+lang))
				p.wait("three rows", `document.querySelectorAll("#rows tr").length === 3 && document.body.dataset.state === "ok"`)
				if got := p.eval(`[...document.querySelectorAll("#rows tr")].map((r) => r.dataset.gateway + ":" + r.dataset.state).join(" ")`); !strings.HasPrefix(got, "g09:offline ") {
					t.Errorf("%s: rows %q, want g09 offline first", where, got)
				}
				l := p.measure(`#rows tr[data-gateway="g09"] td.gateway`, `#rows tr[data-gateway="g09"] td.state`, `#alarms li[data-gateway="g09"]`)
				l.inside(t, where, `#rows tr[data-gateway="g09"] td.gateway`, `#rows tr[data-gateway="g09"] td.state`, `#alarms li[data-gateway="g09"]`)
				if l.SW > l.VW+1 {
					t.Errorf("%s: the page is %.0f px wide in a %.0f px viewport", where, l.SW, l.VW)
				}
				if over := p.eval(`JSON.stringify([...document.querySelectorAll("td, th, li, .pill, .foot, .bar > *")].filter((e) => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > innerWidth + 1).map((e) => e.className + " " + e.innerText.slice(0, 40)))`); over != "[]" {
					t.Errorf("%s: overflowing: %s", where, over)
				}
				if lang == "zh" {
					p.shot(fmt.Sprintf("screens/fleet-%dx%d.png", sz.w, sz.h))
				}
			}
		}
	})
}
