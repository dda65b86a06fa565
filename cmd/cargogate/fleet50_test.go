package main

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/fleet"
	"github.com/cargogate/cargogate/sync/envelope"
)

// A large site on a phone: 50 gateways, some with 64-character names and
// long versions, a few in alarm, at 360×640 and 1366×768. The worst
// gateway's alarm is on the first screen, nothing is wider than the
// screen, and a gateway-given string is shown as text, never as markup.
func TestFleetPage50(t *testing.T) {
	keys := map[string]ed25519.PublicKey{}
	signers := map[string]envelope.Signer{}
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("g%02d", i)
		if i%10 == 3 {
			names[i] = fmt.Sprintf("g%02d-", i) + strings.Repeat("W", 60) // 64 characters, no break
		}
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		keys[names[i]] = k.Public().(ed25519.PublicKey)
		signers[names[i]] = envelope.Signer{Kid: "PVG-W/" + names[i], Key: k}
	}
	f, err := fleet.New(fleet.Options{Site: "PVG-W", Gateways: keys})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, n := range names {
		s := customs.Status{Type: customs.TypeStatus, Site: "PVG-W", Gateway: n, State: "online", AppliedSeq: 1000, HeadSeq: 1000,
			Version: "1.4.0-rc.2+build.20261206.0123456789abcdef0123456789abcdef", At: now}
		switch {
		case i == 47:
			s.State = "offline" // the worst: shown first
		case i%7 == 0:
			s.AppliedSeq, s.Outbox, s.OutboxOldest = 990, 123456, 86400*3
		case i == 22:
			s.AppliedSeq = 995 // behind for a moment
		case i == 13:
			s.Version = `<img src=x onerror="document.body.dataset.xss=1">`
		}
		msg, err := signers[n].Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		if why := f.Handle(customs.GatewayTopic("PVG-W", n, customs.LeafStatus), msg, false); why != "" {
			t.Fatalf("%s: %s", n, why)
		}
	}
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	tab := browser(t)
	p := &page{t: t, tab: tab, dir: artifactsDir(t)}
	for _, sz := range []struct{ w, h int }{{360, 640}, {1366, 768}} {
		where := fmt.Sprintf("%dx%d", sz.w, sz.h)
		p.do(where, chromedp.EmulateViewport(int64(sz.w), int64(sz.h)))
		p.do("open "+where, chromedp.Navigate(srv.URL+"/?lang=en"))
		p.wait("50 rows", `document.querySelectorAll("#rows tr").length === 50`)
		if got := p.eval(`document.querySelector("#rows tr").dataset.gateway`); got != "g47" {
			t.Errorf("%s: first row %q, want g47 (offline)", where, got)
		}
		l := p.measure(`#alarms li[data-gateway="g47"]`)
		l.inside(t, where, `#alarms li[data-gateway="g47"]`)
		if l.SW > l.VW+1 {
			t.Errorf("%s: the page is %.0f px wide in a %.0f px viewport", where, l.SW, l.VW)
		}
		if over := p.eval(`JSON.stringify([...document.querySelectorAll("td, th, li, .pill, .foot, .bar > *")].filter((e) => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > innerWidth + 1).map((e) => e.className + " " + e.innerText.slice(0, 40)))`); over != "[]" {
			t.Errorf("%s: overflowing: %s", where, over)
		}
		if x := p.eval(`String(document.body.dataset.xss || "") + String(document.querySelectorAll("#rows img").length)`); x != "0" {
			t.Errorf("%s: a gateway's version became markup (%q)", where, x)
		}
		// Behind for a moment (within the grace): the figure, not a warning.
		if got := p.eval(`String(document.querySelectorAll('#rows tr.ok td.lag .bad').length) + "/" + String(document.querySelectorAll('#rows tr.ok[data-gateway="g22"]').length)`); got != "0/1" {
			t.Errorf("%s: healthy rows with a lag shown as a warning, / g22 healthy: %s, want 0/1", where, got)
		}
		p.shot(fmt.Sprintf("fleet50-%s.png", where))
	}
}
