package customs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/sync/envelope"
)

// readDocLeft is the index in readDocSeeds of the first the fast path leaves.
const readDocLeft = 5

// readDocSeeds are documents as central sends them (the fast path must read
// them) and the forms it leaves to json.Unmarshal.
var readDocSeeds = []string{
	`{"type":"head","site":"PVG-W","seq":1024,"at":"2026-11-27T08:00:00Z"}`,
	`{"type":"replay_done","site":"PVG-W","request_id":"r-1","up_to":77}`,
	`{"type":"orders","site":"PVG-W","orders":[]}`,
	` { "type" : "orders" , "site" : "PVG-W" , "request_id" : "r1" , "orders" : [ ] } ` + "\n",
	`{"type":"orders","site":"PVG-W","orders":[{"issued_at":"2026-11-27T08:00:00+08:00"}]}`,
	// left to json.Unmarshal (from readDocLeft on): other spellings
	`{"type":"orders","site":"PVG-W","orders":null}`,
	`{"type":"orders","Site":"PVG-W","orders":[]}`,
	`{"type":"orders","site":"PVG-W","site":"X","orders":[]}`,
	`{"type":"orders","site":"PVG-\u0057","orders":[]}`,
	`{"type":"orders","site":"PVG-W","orders":[],"extra":{"a":[1,2.5,true]}}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1,"seq":2}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1},null]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1,"subject":{"kind":"parcel","kind":"bag","id":"A"}}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1.0}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1e3}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":-1}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":18446744073709551616}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":01}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":"1"}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"issued_at":"2026-11-27 08:00:00Z"}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"issued_at":null}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"note":"a\tb"}]}`,
	"{\"type\":\"orders\",\"site\":\"PVG-W\",\"orders\":[{\"note\":\"a\xffb\"}]}",
	`{"type":"orders","site":"PVG-W","orders":[{"children":[{"kind":"bag","id":"B1"}],"children":[{"kind":"uld","id":"U1"}]}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1}],"orders":[{"action":"hold"}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1}]} x`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1},]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"seq":1}]`,
	`{"type":"orders","site":"PVG-W","orders":[{"ſeq":1}]}`,
	`{"type":"orders","site":"PVG-W","orders":[{"subject":{"\u212aind":"bag","id":"B"}}]}`,
	`["orders"]`,
	``,
}

// FuzzReadDoc checks ReadDoc against json.Unmarshal, the decoder it stands
// in for: where ReadDoc reads a payload, json.Unmarshal must accept it and
// give the same document; where it does not, it must leave the document
// zero (the caller then decodes with json.Unmarshal). Seeds: the documents
// above and the hand cases (doc_hand_test.go), every order of FuzzOrder's corpus in an orders document, and the
// payloads of FuzzOrdersMessage's corpus.
func FuzzReadDoc(f *testing.F) {
	for _, s := range append(readDocSeeds, readDocHand()...) {
		f.Add([]byte(s))
	}
	for _, s := range protocolOrders {
		f.Add([]byte(`{"type":"orders","site":"PVG-W","orders":[` + s + `]}`))
	}
	ring := envelope.Keyring{fuzzKid: fuzzSigner.Public()}
	for _, c := range corpus(f, "FuzzOrder") {
		f.Add([]byte(`{"type":"orders","site":"PVG-W","orders":[` + string(c) + `,` + string(c) + `]}`))
	}
	for _, c := range corpus(f, "FuzzOrdersMessage") {
		if p, _, err := ring.Open(c); err == nil {
			f.Add(p)
		}
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fast, ref customs.AnyDoc
		ok := customs.ReadDoc(payload, &fast)
		err := json.Unmarshal(payload, &ref)
		if !ok {
			if !reflect.DeepEqual(fast, customs.AnyDoc{}) {
				t.Fatalf("not read, but the document is not zero: %+v", fast)
			}
			return
		}
		if err != nil {
			t.Fatalf("ReadDoc read what json.Unmarshal rejects (%v):\n%q", err, payload)
		}
		if d := docDiff(fast, ref); d != "" {
			t.Fatalf("ReadDoc and json.Unmarshal differ in %s:\n%q\nfast %+v\nref  %+v", d, payload, fast, ref)
		}
	})
}

// TestReadDocReadsCentralDocuments: the fast path is the one taken for
// what central sends (the documents of §3 as the protocol writes them),
// and left for the other spellings of readDocSeeds.
func TestReadDocReadsCentralDocuments(t *testing.T) {
	for _, s := range protocolOrders {
		doc := `{"type":"orders","site":"PVG-W","request_id":"r1","orders":[` + s + `,` + s + `]}`
		var d customs.AnyDoc
		if !customs.ReadDoc([]byte(doc), &d) {
			t.Errorf("not read: %s", doc)
		}
	}
	for i, s := range readDocSeeds {
		var d customs.AnyDoc
		if got, want := customs.ReadDoc([]byte(s), &d), i < readDocLeft; got != want {
			t.Errorf("ReadDoc(%s) = %v, want %v", s, got, want)
		}
	}
}

// corpus reads the []byte inputs of a fuzz target's testdata corpus.
func corpus(tb testing.TB, target string) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("corpus %s: %v (%d files)", target, err, len(files))
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			lit, ok := strings.CutPrefix(strings.TrimSpace(line), "[]byte(")
			if !ok {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			out = append(out, []byte(s))
		}
	}
	return out
}

// docDiff names the first field where a and b differ ("" when none); times
// compare by instant and zone offset (two parses of one offset hold
// different *time.Location values).
func docDiff(a, b customs.AnyDoc) string {
	sameTime := func(x, y *time.Time) bool {
		_, xo := x.Zone()
		_, yo := y.Zone()
		ok := x.Equal(*y) && xo == yo && x.IsZero() == y.IsZero()
		*x, *y = time.Time{}, time.Time{}
		return ok
	}
	if !sameTime(&a.At, &b.At) {
		return "at"
	}
	if len(a.Orders) != len(b.Orders) || (a.Orders == nil) != (b.Orders == nil) {
		return "the orders' count"
	}
	ao, bo := append([]customs.Order(nil), a.Orders...), append([]customs.Order(nil), b.Orders...)
	for i := range ao {
		if !sameTime(&ao[i].IssuedAt, &bo[i].IssuedAt) || !sameTime(&ao[i].ExpiresAt, &bo[i].ExpiresAt) {
			return "orders[" + strconv.Itoa(i) + "]'s times"
		}
		if !reflect.DeepEqual(ao[i], bo[i]) {
			return "orders[" + strconv.Itoa(i) + "]"
		}
	}
	a.Orders, b.Orders = nil, nil
	if !reflect.DeepEqual(a, b) {
		return "the document's fields"
	}
	return ""
}

func BenchmarkDecodeOrders(b *testing.B) {
	one := []byte(`{"type":"orders","site":"PVG-W","orders":[` + protocolOrders[0] + `]}`)
	var many strings.Builder
	many.WriteString(`{"type":"orders","site":"PVG-W","orders":[`)
	for i := range 1000 {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString(protocolOrders[0])
	}
	many.WriteString(`]}`)
	for _, c := range []struct {
		name    string
		payload []byte
	}{{"1-order", one}, {"1000-orders", []byte(many.String())}} {
		b.Run(c.name+"/json.Unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d customs.AnyDoc
				if err := json.Unmarshal(c.payload, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/ReadDoc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d customs.AnyDoc
				if !customs.ReadDoc(c.payload, &d) {
					b.Fatal("not read")
				}
			}
		})
	}
}
