package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestArrivalScreenInBrowser drives the arrival screen (运抵) in headless
// Chromium against a real gateway with an arrival station, mosquitto and
// the reference central: a transit with 2 seals and 3 bags is opened, one
// of its seals and a foreign one are scanned, then two bags, one of them
// held for inspection. The screen shows 2 of 3 counted, the foreign seal
// flagged, the held bag in red, the missing seal; the supervisor shows the
// open transit and counts no seal as a STOP; closing the transit shows its
// result, also after a reload.
func TestArrivalScreenInBrowser(t *testing.T) {
	tab := browser(t)
	s := newSiteRole(t, "arrival", `  transit_patterns: ['^TR\d{10}$']
  seal_patterns: ['^SH-\d{6}$']`)
	tr := sub(customs.Transit, "TR0000000101")
	bag := func(n int) customs.Subject { return sub(customs.Bag, sscc(600+n)) }
	exp := time.Now().Add(24 * time.Hour).UTC()
	s.waitApplied(s.issue(
		customs.Order{Action: customs.Seal, Subject: tr, Seals: []string{"SH-000101", "SH-000102"}},
		customs.Order{Action: customs.Link, Subject: tr, Children: []customs.Subject{bag(1), bag(2), bag(3)}},
		customs.Order{Action: customs.Release, Subject: tr, ExpiresAt: exp},
		customs.Order{Action: customs.Hold, Subject: bag(2), HoldID: "insp-9", Reason: "inspection", Office: "2233"},
	), 30*time.Second)
	base := "http://" + s.gwHTTP
	p := &page{t: t, tab: tab, dir: artifactsDir(t)}
	t.Logf("screenshots in %s", p.dir)

	scan := func(code, frame string) {
		t.Helper()
		if got := s.scan(code); got != frame {
			t.Fatalf("scan %s: gate got %s, want %s", code, got, frame)
		}
	}
	sel := func(css string) string { return fmt.Sprintf("document.querySelector(%q)", css) }
	has := func(css string) string { return "!!" + sel(css) }
	bg := func(css string) string { return p.eval(fmt.Sprintf(`getComputedStyle(%s).backgroundColor`, sel(css))) }
	const vermillion = "rgb(196, 61, 0)" // --stop

	p.open(base + "/arrival/gate-3")
	if got := p.text("#head"); !strings.Contains(got, "无进行中的转关") {
		t.Errorf("idle head %q", got)
	}

	// The transit itself is stopped (contents): one of its bags is held.
	scan(tr.ID, "STOP")
	p.wait("the transit open", sel("#head")+`.dataset.transit === "TR0000000101"`)
	if got := p.text("#seals"); !strings.Contains(got, "已见 0/2") {
		t.Errorf("seals before any seal scan: %q", got)
	}
	s.scanner.Write(t, "SH-000101\r\n")
	p.wait("the seal seen", has(`#seal-list li[data-seal="SH-000101"][data-state="seen"]`))
	s.scanner.Write(t, "SH-999999\r\n")
	p.wait("the foreign seal flagged", has(`#seal-list li[data-seal="SH-999999"][data-state="foreign"]`))
	scan(bag(1).ID, "PASS")
	scan(bag(2).ID, "STOP")
	p.wait("2 of 3 counted", sel("#progress")+`.dataset.counted === "2"`)

	if got := p.text("#count"); strings.Join(strings.Fields(got), "") != "2/3" {
		t.Errorf("count %q, want 2 / 3", got)
	}
	if got := p.eval(sel(`#progress [role="progressbar"] .fill`) + `.style.width`); got != "67%" {
		t.Errorf("progress bar at %s, want 67%%", got)
	}
	if got := p.text(`#seal-list li[data-seal="SH-999999"]`); !strings.Contains(got, "非本车") || !strings.Contains(got, "FOREIGN") {
		t.Errorf("foreign seal shown as %q", got)
	}
	if n := p.eval(`String(` + sel(`#seal-list li[data-seal="SH-999999"]`) + `.querySelectorAll("svg polygon").length)`); n != "1" {
		t.Errorf("the foreign seal has no warning triangle")
	}
	if got := p.text(`#seal-list li[data-seal="SH-000102"]`); !strings.Contains(got, "未见") {
		t.Errorf("the seal not yet seen shown as %q", got)
	}
	if !strings.Contains(p.text("#seals"), "已见 1/2") || !strings.Contains(p.text("#seals"), "非本车 1") {
		t.Errorf("seals title %q", p.text("#seals h2"))
	}
	held := fmt.Sprintf(`#item-list li[data-id=%q]`, bag(2).ID)
	if got := p.eval(sel(held) + `.dataset.stopped`); got != "held:inspection" {
		t.Errorf("held bag marked %q in the contents", got)
	}
	if got := p.text(held); !strings.Contains(got, "停止") || !strings.Contains(got, "海关查验") {
		t.Errorf("held bag shown as %q", got)
	}
	if c := bg(held); c != vermillion {
		t.Errorf("held bag in the contents has background %s, want %s", c, vermillion)
	}
	heldRow := fmt.Sprintf(`#recent li.stop[data-code=%q]`, bag(2).ID)
	if !p.eval1(has(heldRow)) || bg(heldRow) != vermillion {
		t.Errorf("held bag not in red in the recent scans: %q", p.text("#recent"))
	}
	if !p.eval1(has(`#recent li.seal.foreign[data-code="SH-999999"]`)) {
		t.Errorf("the foreign seal's scan is not flagged in the recent scans")
	}
	if got := p.text(fmt.Sprintf(`#item-list li[data-id=%q]`, bag(3).ID)); !strings.Contains(got, "未到") {
		t.Errorf("bag 3 shown as %q", got)
	}
	if got := p.text(fmt.Sprintf(`#item-list li[data-id=%q]`, bag(1).ID)); !strings.Contains(got, "已点") {
		t.Errorf("bag 1 shown as %q", got)
	}
	p.shot("screen-arrival.png")

	// The supervisor shows the open transit, and no seal as a STOP: bag 1
	// passed, the transit and bag 2 stopped.
	p.open(base + "/supervisor")
	p.wait("the open transit", has(`tr[data-station="gate-3"] .trbrief[data-transit="TR0000000101"]`))
	if got := p.text(`tr[data-station="gate-3"] .trbrief`); !strings.Contains(got, "2/3") {
		t.Errorf("supervisor transit %q", got)
	}
	p.wait("counts", has("#count-stop"))
	if ps, st := p.text("#count-pass"), p.text("#count-stop"); !strings.HasSuffix(ps, " 1") || !strings.HasSuffix(st, " 2") {
		t.Errorf("counts %q / %q, want 1 PASS, 2 STOP (seals are no decisions)", ps, st)
	}
	if got := p.text(`tr[data-station="gate-3"]`); !strings.Contains(got, bag(2).ID) || !strings.Contains(got, "1 / 2") {
		t.Errorf("station row %q: last should be bag 2's STOP, 1 / 2 in the last hour", got)
	}
	if !p.eval1(has(`tr[data-station="gate-3"] a[href="/arrival/gate-3"]`)) {
		t.Errorf("no link to the arrival screen on the supervisor")
	}

	// The station screen links to it and sums the transit up.
	p.open(base + "/station/gate-3")
	p.wait("the link to the arrival screen", has("#arrival-link"))
	if got := p.text("#transit"); !strings.Contains(got, "TR0000000101") || !strings.Contains(got, "2/3") {
		t.Errorf("station screen transit %q", got)
	}

	// Closing the transit shows its result.
	p.open(base + "/arrival/gate-3")
	p.wait("the open transit after reload", has(held))
	scan(tr.ID, "STOP")
	p.wait("the result", sel("#head")+`.dataset.state === "closed"`)
	if ok, full := p.eval(sel("#result")+`.dataset.sealsOk`), p.eval(sel("#result")+`.dataset.complete`); ok != "false" || full != "false" {
		t.Errorf("result seals_ok %s complete %s, want false false", ok, full)
	}
	if got := p.text("#head"); !strings.Contains(got, "关锁异常") || !strings.Contains(got, "TR0000000101") {
		t.Errorf("closed head %q", got)
	}
	if got := p.text(fmt.Sprintf(`#item-list li[data-id=%q]`, bag(3).ID)); !strings.Contains(got, "缺少") {
		t.Errorf("bag 3 after closing: %q", got)
	}
	if got := p.text(`#seal-list li[data-seal="SH-000102"]`); !strings.Contains(got, "缺失") {
		t.Errorf("seal 102 after closing: %q", got)
	}
	if c := bg(held); c != vermillion {
		t.Errorf("the held bag is no longer red after closing: %s", c)
	}
	if got := p.text("#count"); strings.Join(strings.Fields(got), "") != "2/3" {
		t.Errorf("closing count %q", got)
	}
	closed := filepath.Join(p.dir, "screen-arrival-closed.png")
	p.do("settle", chromedp.Sleep(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	if b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(closed, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// In English, after a reload: the hello carries the result.
	p.open(base + "/arrival/gate-3?lang=en")
	p.wait("the result in English", sel("#head")+`.dataset.state === "closed"`)
	if got := p.text("#head"); !strings.Contains(got, "seals NOT OK") || !strings.Contains(got, "contents do not match") {
		t.Errorf("English head %q", got)
	}
	if got := p.text(`#seal-list li[data-seal="SH-999999"]`); !strings.Contains(got, "FOREIGN") {
		t.Errorf("English foreign seal %q", got)
	}
}

// eval1 evaluates a JavaScript boolean.
func (p *page) eval1(expr string) bool {
	p.t.Helper()
	b, err := chromedp.Run(p.tab, chromedp.Evaluate[bool](expr))
	if err != nil {
		p.t.Fatalf("eval %s: %v", expr, err)
	}
	return b
}
