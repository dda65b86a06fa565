package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// FuzzOrderJSON: orderJSON writes exactly json.Marshal's bytes for any
// order json.Unmarshal reads (seeds: the orders of customs' FuzzOrder
// corpus and strings json.Marshal escapes).
func FuzzOrderJSON(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "customs", "testdata", "fuzz", "FuzzOrder", "*"))
	if len(files) == 0 {
		f.Fatal("no FuzzOrder corpus")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if lit, ok := strings.CutPrefix(strings.TrimSpace(line), "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
				if err != nil {
					f.Fatalf("%s: %v", name, err)
				}
				f.Add([]byte(s))
			}
		}
	}
	for _, s := range []string{
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P<1>"}}`,
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P"},"note":"a&b"}`,
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P"},"ref":"x>y"}`,
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P"},"ref":"\u0001"}`,
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P"},"ref":"\u00e9"}`,
		`{"seq":1,"action":"hold","subject":{"kind":"bag","id":"B<1>"},"hold_id":"a&b","reason":"x\"y","note":"a\\b\u2028"}`,
		`{"seq":2,"action":"release","subject":{"kind":"parcel","id":"P"},"issued_at":"2026-11-27T08:00:00.123456789+08:00","expires_at":"0001-01-01T00:00:00Z"}`,
		`{"seq":3,"action":"seal","subject":{"kind":"transit","id":"T"},"seals":["A\u007f","\u00e9"],"reason_text":"\t"}`,
		`{"seq":4,"action":"link","subject":{"kind":"uld","id":"U"},"children":[],"seals":[]}`,
		`{"seq":5,"action":"release","subject":{"kind":"parcel","id":"P"},"issued_at":"9999-12-31T23:59:59Z","office":"2244","ref":"R"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o customs.Order
		if json.Unmarshal(data, &o) != nil {
			return
		}
		want, werr := json.Marshal(&o)
		got, gerr := orderJSON([]byte("prefix"), &o)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("json.Marshal error %v, orderJSON error %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("orderJSON differs from json.Marshal:\n%s\n%s", got[6:], want)
		}
	})
}

// TestOrderJSONPlain: an order as central sends it takes the path without
// reflection.
func TestOrderJSONPlain(t *testing.T) {
	o := relExp(7, P("RR123456785CN"), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	o.IssuedAt = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	if _, ok := appendOrder(nil, &o); !ok {
		t.Fatal("a plain order did not take the fast path")
	}
}

func BenchmarkOrderJSON(b *testing.B) {
	o := relExp(7, P("RR123456785CN"), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	o.IssuedAt = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(&o)
		}
	})
	b.Run("orderJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			orderJSON(nil, &o)
		}
	})
}
