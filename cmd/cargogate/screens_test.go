package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
)

var updateScreens = flag.Bool("update-screens", false, "write the screens' screenshots to docs/screen-*.png and docs/screens/*.png")

const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium with a fresh profile and returns a
// tab. Outside CI the test is skipped when Chromium is not installed; in
// CI it must run.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s missing (apt-get install -y chromium): browser tests skipped outside CI", chromiumPath)
		}
		t.Fatalf("CI is set and %s is missing: %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1920, 1080),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1920, 1080)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// page drives one tab with a deadline per step.
type page struct {
	t   *testing.T
	tab context.Context
	dir string // screenshots
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.tab, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it holds.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.tab, 15*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
		if err == nil {
			return
		}
		// A page still loading (a redirect, a navigation) replaces its
		// JavaScript context under the poll: poll again in the new one.
		if ctx.Err() == nil && (strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed")) {
			continue
		}
		p.t.Fatalf("waiting for %s (%s): %v; page text: %s", what, expr, err, p.text("body"))
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.tab, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.tab, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("eval %s: %v", expr, err)
	}
	return s
}

// tokenInURL opens url and returns the page's text.
func (p *page) tokenInURL(url string) string {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url))
	return p.text("body")
}

// pair makes a pairing link with the CLI, as the operator does.
func (s *site) pair(name, role, page string) string {
	s.t.Helper()
	out, err := exec.Command(bins["cargogate"], "pair", "--name", name, "--role", role, "--page", page, "--config", s.cfgPath).Output()
	if err == nil {
		s.t.Fatalf("pair without CARGOGATE_TOKEN worked: %s", out)
	}
	cmd := exec.Command(bins["cargogate"], "pair", "--name", name, "--role", role, "--page", page, "--config", s.cfgPath)
	cmd.Env = append(os.Environ(), "CARGOGATE_TOKEN="+testOpToken)
	out, err = cmd.Output()
	if err != nil {
		s.t.Fatalf("cargogate pair: %v: %s", err, out)
	}
	link := strings.TrimSpace(string(out))
	if !strings.HasPrefix(link, "http://"+s.gwHTTP+"/pair?code=") {
		s.t.Fatalf("pairing link %q", link)
	}
	return link
}

func (p *page) open(url string) {
	p.t.Helper()
	p.do("open "+url, chromedp.Navigate(url))
	p.wait("the WebSocket of "+url, `document.body.dataset.ws === "open"`)
}

// shot saves a screenshot of the tab as a test artifact, and in docs/ with
// -update-screens.
func (p *page) shot(name string) {
	p.t.Helper()
	// Let the flash of a new verdict end first.
	p.do("settle", chromedp.Sleep(700*time.Millisecond))
	ctx, cancel := context.WithTimeout(p.tab, 10*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := writeFileDirs(filepath.Join(p.dir, name), b); err != nil {
		p.t.Fatal(err)
	}
	if *updateScreens {
		root, err := testenv.ModuleRoot()
		if err != nil {
			p.t.Fatal(err)
		}
		if err := writeFileDirs(filepath.Join(root, "docs", name), b); err != nil {
			p.t.Fatal(err)
		}
	}
}

// writeFileDirs writes a file, making its directory first.
func writeFileDirs(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func artifactsDir(t *testing.T) string {
	if d := os.Getenv("CARGOGATE_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "screens")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestScreensInBrowser drives the real screens in headless Chromium against
// a real gateway: scans written into the station's scanner pty appear on
// its station and gate screens with the right verdict, the supervisor
// overview and the lookup show them, a cross-origin WebSocket is refused,
// and the page reconnects by itself after the gateway restarts.
func TestScreensInBrowser(t *testing.T) {
	tab := browser(t)
	// Loopback is not trusted: the browser gets in like a kiosk on the
	// LAN, by a pairing link.
	s := newSiteHTTP(t, "gate", "", "  trust_loopback: false")
	now := time.Now().UTC()
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	rel := func(sj customs.Subject) customs.Order {
		return customs.Order{Action: customs.Release, Subject: sj, ExpiresAt: now.Add(24 * time.Hour), Office: "2244", Ref: "22442026E000123456"}
	}
	bag := sub(customs.Bag, sscc(41))
	head := s.issue(
		rel(P(1)),
		rel(P(2)), customs.Order{Action: customs.Hold, Subject: P(2), HoldID: "insp-7", Reason: "inspection", Office: "2244", Note: "X-ray image unclear"},
		rel(P(3)), rel(P(4)), rel(P(5)),
		customs.Order{Action: customs.Hold, Subject: P(4), HoldID: "dnl-1", Reason: "do_not_load", Office: "2244"},
		customs.Order{Action: customs.Link, Subject: bag, Children: []customs.Subject{P(3), P(4), P(5)}},
	)
	s.waitApplied(head, 30*time.Second)
	base := "http://" + s.gwHTTP
	p := &page{t: t, tab: tab, dir: artifactsDir(t)}
	t.Logf("screenshots in %s", p.dir)

	// scan writes a code into the scanner pty, checks the gate frame, and
	// waits until the open screen has it; it returns scan-to-screen time.
	scan := func(code, frame string) time.Duration {
		t.Helper()
		before := p.eval(`document.body.dataset.scans || "0"`)
		start := time.Now()
		if got := s.scan(code); got != frame {
			t.Fatalf("scan %s: gate got %s, want %s", code, got, frame)
		}
		p.wait("scan "+code+" on the screen", fmt.Sprintf(`(document.body.dataset.scans || "0") !== %q`, before))
		at, _ := strconv.ParseInt(p.eval(`document.body.dataset.lastAt || "0"`), 10, 64)
		return time.UnixMilli(at).Sub(start)
	}
	verdict := func() string { return p.eval(`document.querySelector("#verdict").dataset.verdict`) }

	t.Run("pairing", func(t *testing.T) {
		p.t = t
		p.do("open a page unpaired", chromedp.Navigate(base+"/station/gate-3"))
		if got := p.text("body"); !strings.Contains(got, "not paired") {
			t.Fatalf("unpaired page: %q", got)
		}
		link := s.pair("floor-kiosk", "screens", "/station/gate-3")
		if got := p.tokenInURL(base + "/station/gate-3?token=" + testOpToken); !strings.Contains(got, "not accepted in URLs") {
			t.Fatalf("a token in the URL: %q", got)
		}
		p.open(link)
		if u := p.eval(`location.href`); u != base+"/station/gate-3" {
			t.Errorf("after pairing the address is %q (the code must be gone)", u)
		}
		if c := p.eval(`document.cookie`); c != "" {
			t.Errorf("the page's script reads the cookie: %q", c)
		}
		// The link works once.
		p.do("open the link again", chromedp.Navigate(link))
		if got := p.text("body"); !strings.Contains(got, "used already") {
			t.Errorf("the pairing link worked twice: %q", got)
		}
		// A screen views; it does not look up.
		p.do("open the lookup as a screen", chromedp.Navigate(base+"/lookup"))
		if got := p.text("body"); !strings.Contains(got, "forbidden") {
			t.Errorf("a screen opened the lookup: %q", got)
		}
	})

	t.Run("station", func(t *testing.T) {
		p.t = t
		p.open(base + "/station/gate-3")
		if got := p.text(".verdict .word"); !strings.Contains(got, "等待扫描") {
			t.Errorf("idle verdict %q", got)
		}
		var lat []time.Duration
		lat = append(lat, scan(s10(1), "PASS"))
		if v, w := verdict(), p.text("#verdict .word"); v != "pass" || !strings.Contains(w, "通过") || !strings.Contains(w, "PASS") {
			t.Errorf("after a released parcel: verdict %q, word %q", v, w)
		}
		if got := p.text("#verdict .reason"); got != "已放行" {
			t.Errorf("reason %q", got)
		}
		lat = append(lat, scan(s10(2), "STOP"))
		if v, w := verdict(), p.text("#verdict .word"); v != "stop" || !strings.Contains(w, "停止") || !strings.Contains(w, "STOP") {
			t.Errorf("after a held parcel: verdict %q, word %q", v, w)
		}
		if r, todo := p.text("#verdict .reason"), p.text("#verdict .todo"); r != "海关查验" || !strings.Contains(todo, "送查验通道") {
			t.Errorf("held for inspection shown as %q / %q", r, todo)
		}
		if !strings.Contains(p.text("#verdict .code"), s10(2)) {
			t.Errorf("code not shown: %q", p.text("#verdict .code"))
		}
		if n := p.eval(`document.body.dataset.beeps || "0"`); n != "1" {
			t.Errorf("STOP beeped %s times, want 1", n)
		}
		lat = append(lat, scan("hello world!", "STOP"))
		if r := p.text("#verdict .reason"); r != "条码无效" {
			t.Errorf("invalid code shown as %q", r)
		}
		lat = append(lat, scan(s10(2), "STOP"))
		if rows := p.eval(`String(document.querySelectorAll("#recent li").length)`); rows != "4" {
			t.Errorf("%s rows in the last scans, want 4", rows)
		}
		t.Logf("scan written to the pty → shown in Chromium: %v", lat)
		p.shot("screen-station.png")

		// English on demand; the hello restores the last scans.
		p.open(base + "/station/gate-3?lang=en")
		p.wait("the last verdict after reload", `document.querySelector("#verdict").dataset.verdict === "stop"`)
		if r, todo := p.text("#verdict .reason"), p.text("#verdict .todo"); r != "Held for inspection" || !strings.Contains(todo, "inspection lane") {
			t.Errorf("English: %q / %q", r, todo)
		}
		if w := p.text("#verdict .word"); strings.TrimSpace(w) != "STOP" {
			t.Errorf("English word %q", w)
		}
	})

	t.Run("gate", func(t *testing.T) {
		p.t = t
		p.open(base + "/gate/gate-3")
		scan(s10(1), "PASS")
		p.wait("gate opened", `document.querySelector("#gatestate").innerText === "已开启"`)
		scan(bag.ID, "STOP")
		if v := verdict(); v != "stop" {
			t.Errorf("bag with a do-not-load parcel: verdict %q", v)
		}
		if got := p.text("#items"); !strings.Contains(got, "3 件") {
			t.Errorf("items %q, want 3", got)
		}
		if got := p.text("#blocking"); !strings.Contains(got, s10(4)) || !strings.Contains(got, "禁止装载") || strings.Contains(got, s10(3)) {
			t.Errorf("blocking %q, want only %s (do not load)", got, s10(4))
		}
		p.wait("gate closed", `document.querySelector("#gatestate").innerText === "关闭"`)
		p.shot("screen-gate.png")
	})

	t.Run("supervisor", func(t *testing.T) {
		p.t = t
		p.open(base + "/supervisor")
		p.wait("the station row", `!!document.querySelector('tr[data-station="gate-3"]')`)
		p.wait("counts", `document.querySelector("#count-stop") && document.querySelector("#count-stop").innerText.includes("4")`)
		if got := p.text("#count-pass"); !strings.Contains(got, "2") {
			t.Errorf("pass count %q, want 2", got)
		}
		if got := p.text("#reasons"); !strings.Contains(got, "海关查验") || !strings.Contains(got, "内件未全部放行") {
			t.Errorf("reasons %q", got)
		}
		if got := p.text("#linkstate"); !strings.Contains(got, "在线") {
			t.Errorf("link %q", got)
		}
		if got := p.text("#link"); !strings.Contains(got, fmt.Sprint(head)) {
			t.Errorf("link panel %q does not show head %d", got, head)
		}
		if got := p.text("#alarms"); !strings.Contains(got, "无告警") {
			t.Errorf("alarms %q", got)
		}
		p.shot("screen-supervisor.png")
	})

	t.Run("lookup", func(t *testing.T) {
		p.t = t
		p.open(s.pair("ops-desk", "operator", "/lookup")) // the operator's browser
		if u := p.eval(`location.pathname`); u != "/lookup" {
			t.Fatalf("after pairing: %q", u)
		}
		p.do("type a code", chromedp.SendKeys(chromedp.CSS("#code"), s10(2)+kb.Enter))
		p.wait("the chain", `document.body.dataset.looked === `+strconv.Quote(s10(2)))
		if v := verdict(); v != "stop" {
			t.Errorf("lookup verdict %q", v)
		}
		chain := p.text("#chaintable")
		if !strings.Contains(chain, "#3") || !strings.Contains(chain, "hold insp-7 (inspection)") || !strings.Contains(chain, "X-ray image unclear") {
			t.Errorf("chain of %s: %q, want the hold by seq 3 with its note", s10(2), chain)
		}
		p.do("look up the bag", chromedp.Clear(chromedp.CSS("#code")), chromedp.SendKeys(chromedp.CSS("#code"), bag.ID+kb.Enter))
		p.wait("the bag's chain", `document.body.dataset.looked === `+strconv.Quote(bag.ID))
		if chain := p.text("#chaintable"); !strings.Contains(chain, "1 of 3 items below do not pass") || !strings.Contains(chain, "hold dnl-1 (do_not_load)") {
			t.Errorf("chain of the bag: %q", chain)
		}
		p.shot("screen-lookup.png")
	})

	t.Run("cross-origin refused", func(t *testing.T) {
		p.t = t
		// A page from another origin tries to open the gateway's WebSocket.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><body data-result="pending"><script>
const ws = new WebSocket("ws://%s/ws");
ws.onopen = () => { document.body.dataset.result = "opened"; };
ws.onmessage = (e) => { document.body.dataset.result = "read: " + e.data.slice(0, 40); };
ws.onclose = () => { if (document.body.dataset.result === "pending") document.body.dataset.result = "refused"; };
</script></body>`, s.gwHTTP)
		}))
		defer evil.Close()
		p.do("open the other site", chromedp.Navigate(evil.URL))
		p.wait("the attempt", `document.body.dataset.result !== "pending"`)
		if got := p.eval(`document.body.dataset.result`); got != "refused" {
			t.Fatalf("cross-origin WebSocket: %s", got)
		}
		if out := s.gw.Output(); !strings.Contains(out, "websocket refused: origin not allowed") {
			t.Errorf("the refusal is not logged")
		}
	})

	t.Run("reconnect after restart", func(t *testing.T) {
		p.t = t
		p.open(base + "/station/gate-3")
		s.gw.Stop(5 * time.Second)
		p.wait("the page to notice", `document.body.dataset.ws !== "open"`)
		if b := p.text("#connbanner"); !strings.Contains(b, "连接已断开") {
			t.Errorf("banner %q", b)
		}
		s.startGateway()
		p.wait("the page to reconnect", `document.body.dataset.ws === "open"`)
		if scan(s10(1), "PASS"); verdict() != "pass" {
			t.Errorf("after the restart: verdict %q", verdict())
		}
		if n := p.eval(`document.body.dataset.reconnects || "0"`); n == "0" {
			t.Errorf("no reconnect counted")
		}
	})
}
