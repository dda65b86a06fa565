package link

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// withUnknownKey returns the payload with a key no document has added at
// its top, so customs.ReadDoc leaves it and verify decodes it with
// json.Unmarshal, which ignores the key (false: not an object).
func withUnknownKey(p []byte) ([]byte, bool) {
	t := bytes.TrimLeft(p, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	rest := bytes.TrimLeft(t[1:], " \t\r\n")
	sep := ","
	if len(rest) > 0 && rest[0] == '}' {
		sep = ""
	}
	return append([]byte(`{"zz_not_a_field":0`+sep), t[1:]...), true
}

// verified is what verify made of a message, in comparable form.
func verified(it *item) string {
	var b strings.Builder
	fmt.Fprintf(&b, "reject %q typ %q req %q head %d upTo %d at %s ack %q\n", it.reject, it.typ, it.requestID, it.head, it.upTo,
		it.at.Format("2006-01-02T15:04:05.999999999Z07:00"), it.ackIDs)
	if it.reject != "" && it.reject != "malformed" {
		fmt.Fprintf(&b, "err %v\n", it.rejectErr)
	}
	j, _ := json.Marshal(it.orders)
	fmt.Fprintf(&b, "orders %s %v\n", j, it.orders == nil)
	for _, o := range it.orders {
		fmt.Fprintf(&b, "times %d %d\n", o.IssuedAt.UnixNano(), o.ExpiresAt.UnixNano())
	}
	for _, x := range it.bad {
		fmt.Fprintf(&b, "bad %d %v %s\n", x.seq, x.err, x.order)
	}
	for _, d := range it.drops {
		fmt.Fprintf(&b, "drops %d %+v\n", d.seq, d.dropped)
	}
	return b.String()
}

// FuzzVerifyFastPath: verify (fast decode, orders kept in place) makes of
// a message exactly what it makes of the same message read by
// json.Unmarshal: the same rejection, orders, orders set aside with their
// audit copies, and fields dropped.
func FuzzVerifyFastPath(f *testing.F) {
	l, central := newVerifyLink(f)
	files, _ := filepath.Glob(filepath.Join("..", "..", "gateway", "customs", "testdata", "fuzz", "FuzzOrder", "*"))
	if len(files) == 0 {
		f.Fatal("no FuzzOrder corpus")
	}
	var orders []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if lit, ok := strings.CutPrefix(strings.TrimSpace(line), "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
				if err != nil {
					f.Fatal(err)
				}
				orders = append(orders, s)
			}
		}
	}
	f.Add([]byte(`{"type":"orders","site":"PVG-W","request_id":"r","orders":[` + strings.Join(orders, ",") + `]}`))
	for _, o := range orders {
		f.Add([]byte(`{"type":"orders","site":"PVG-W","orders":[` + o + `,` + o + `]}`))
	}
	for _, s := range []string{
		`{"type":"head","site":"PVG-W","seq":1024,"at":"2026-11-27T08:00:00Z"}`,
		`{"type":"orders","site":"PVG-W","orders":[{"seq":1,"action":"hold","subject":{"kind":"bag","id":"B1"},"hold_id":"h","reason":"weather"},{"seq":2,"action":"nope","subject":{"kind":"bag","id":"B1"}},{"seq":3,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":["s"]},{"seq":4,"action":"release","subject":{"kind":"parcel","id":"P4"},"office":"x"}]}`,
		`{"type":"orders","site":"OTHER","orders":[]}`,
		`{"type":"head","site":"PVG-W","orders":[]}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		slow, ok := withUnknownKey(payload)
		if !ok {
			return
		}
		if customs.ReadDoc(slow, &customs.AnyDoc{}) {
			t.Fatalf("the fast path read the reference's payload %q", slow)
		}
		var got [2]string
		for i, p := range [][]byte{payload, slow} {
			env, err := central.SealBytes(p)
			if err != nil {
				t.Skip(err)
			}
			it := &item{msg: &benchMsg{env}, done: make(chan struct{})}
			l.verify(it)
			got[i] = verified(it)
		}
		if got[0] != got[1] {
			t.Fatalf("verify differs from json.Unmarshal's reading of\n%q\nfast:\n%s\njson.Unmarshal:\n%s", payload, got[0], got[1])
		}
	})
}
