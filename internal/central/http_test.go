package central

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

func TestHTTP(t *testing.T) {
	h := start(t, "", nil)
	srv := httptest.NewServer(h.c.Handler())
	defer srv.Close()

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	lines := `{"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"},"expires_at":"2026-11-30T08:00:00+08:00"}

{"action":"hold","subject":{"kind":"parcel","id":"RR123456785CN"},"hold_id":"h1","reason":"inspection"}
`
	code, body := do("POST", "/orders", lines)
	if code != 200 || !strings.Contains(body, `"first": 1`) || !strings.Contains(body, `"last": 2`) {
		t.Fatalf("POST lines: %d %s", code, body)
	}
	code, body = do("POST", "/orders", `[{"action":"cancel","subject":{"kind":"parcel","id":"RR123456785CN"}}]`)
	if code != 200 || !strings.Contains(body, `"first": 3`) {
		t.Fatalf("POST array: %d %s", code, body)
	}

	for name, tt := range map[string]struct{ body, want string }{
		"invalid order":  {`{"action":"release","subject":{"kind":"parcel","id":"RR1"}}` + "\n" + `{"action":"explode","subject":{"kind":"parcel","id":"RR123456785CN"}}`, `order 2 (line 2)`},
		"unknown field":  {`{"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"},"expire_at":"2026-11-30T08:00:00Z"}`, `unknown field \"expire_at\"`},
		"seq given":      {`[{"seq":5,"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}}]`, `central assigns the seq`},
		"broken json":    {`{"action":`, `order 1`},
		"empty":          {"  \n", `no orders`},
		"trailing array": {`[] x`, `JSON array`},
	} {
		code, body := do("POST", "/orders", tt.body)
		if code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 400 with %q", name, code, body, tt.want)
		}
	}
	if h.c.Head() != 3 {
		t.Fatalf("head = %d after bad posts, want 3", h.c.Head())
	}

	code, body = do("GET", "/head", "")
	if code != 200 || !strings.Contains(body, `"seq": 3`) {
		t.Errorf("GET /head: %d %s", code, body)
	}
	if _, _, err := h.c.led.addEvents("g07", []customs.Event{scanEvent("E1")}, h.c.opts.Now()); err != nil {
		t.Fatal(err)
	}
	code, body = do("GET", "/events?gateway=g07", "")
	var evs []customs.Event
	if code != 200 || json.Unmarshal([]byte(body), &evs) != nil || len(evs) != 1 || evs[0].ID != "E1" {
		t.Errorf("GET /events: %d %s", code, body)
	}
	code, body = do("GET", "/events?gateway=g08", "")
	if code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /events g08: %d %s", code, body)
	}
	code, body = do("GET", "/stats", "")
	if code != 200 || !strings.Contains(body, `"orders_issued": 3`) || !strings.Contains(body, `"events_received": 1`) {
		t.Errorf("GET /stats: %d %s", code, body)
	}
	if code, _ = do("GET", "/status?gateway=g07", ""); code != 404 {
		t.Errorf("GET /status of a silent gateway: %d", code)
	}
	if code, _ = do("GET", "/orders", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /orders: %d", code)
	}
}

func TestGenerate(t *testing.T) {
	h := start(t, "", nil)
	n, err := h.c.Generate(context.Background(), GenSpec{Count: 700, Seed: 1, HoldRate: 0.2, CancelRate: 0.05})
	if err != nil || n != 700 || h.c.Head() != 700 {
		t.Fatalf("Generate = %d, %v; head %d", n, err, h.c.Head())
	}
	raws, err := h.c.led.orderRange(1, 700, 1000)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[customs.Action]int{}
	kinds := map[customs.Kind]bool{}
	for _, r := range raws {
		var o customs.Order
		if err := json.Unmarshal(r, &o); err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(true); err != nil {
			t.Fatalf("generated an invalid order: %v", err)
		}
		actions[o.Action]++
		kinds[o.Subject.Kind] = true
	}
	for _, a := range []customs.Action{customs.Release, customs.Hold, customs.Unhold, customs.Cancel, customs.Link} {
		if actions[a] == 0 {
			t.Errorf("no %s among %v", a, actions)
		}
	}
	if !kinds[customs.Bag] || !kinds[customs.ULD] {
		t.Errorf("kinds %v: want bags and ULDs", kinds)
	}
	// A second run makes new subjects.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := h.c.Generate(ctx, GenSpec{Count: 10}); n != 0 || err != nil {
		t.Fatalf("Generate on a done ctx = %d, %v", n, err)
	}
}

func TestParseOrdersStrict(t *testing.T) {
	_, err := ParseOrders(strings.NewReader(strings.Repeat(" ", 100)), 10)
	if !errors.Is(err, ErrInvalidOrder) {
		t.Fatalf("over limit: %v", err)
	}
	// What a gateway forgives in an order it receives (amendment 2), central
	// still refuses to issue: its ledger holds only orders in form.
	const hold = `{"action":"hold","subject":{"kind":"parcel","id":"RR123456785CN"},"hold_id":"H1"`
	for _, line := range []string{
		hold + `,"reason":"x-ray"}`,
		hold + `,"reason":"inspection","office":"22445"}`,
		hold + `,"reason":"inspection","note":"` + strings.Repeat("n", 257) + `"}`,
		hold + `,"reason":"inspection","ref":"` + strings.Repeat("r", 65) + `"}`,
		hold + `,"reason":"other","reason_text":"x-ray"}`,
	} {
		if _, err := ParseOrders(strings.NewReader(line), 0); !errors.Is(err, ErrInvalidOrder) {
			t.Errorf("%.80s…: err = %v, want ErrInvalidOrder", line, err)
		}
	}
}
