package link

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestVerifyKeepsOrdersInPlace: verify writes the orders it keeps over the
// decoded ones in place; what it keeps, and the audit's copy of each order
// it sets aside, are those of a decode that copies nothing, whatever the
// mix of good and bad orders, and verifying a later message changes
// nothing in an earlier one's orders.
func TestVerifyKeepsOrdersInPlace(t *testing.T) {
	l, central := newVerifyLink(t)
	orderSets := []string{
		`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P1"},"office":"22x4"},
		 {"seq":2,"action":"nope","subject":{"kind":"parcel","id":"P2"}},
		 {"seq":3,"action":"hold","subject":{"kind":"bag","id":"B3"},"hold_id":"h3","reason":"weather"},
		 {"seq":0,"action":"release","subject":{"kind":"parcel","id":"P4"}},
		 {"seq":5,"action":"link","subject":{"kind":"uld","id":"U5"},"children":[{"kind":"bag","id":"B3"},{"kind":"parcel","id":"P1"}]},
		 {"seq":6,"action":"link","subject":{"kind":"uld","id":"U6"},"children":[]},
		 {"seq":7,"action":"link","subject":{"kind":"uld","id":"U7"},"children":[{"kind":"uld","id":"U7"}]},
		 {"seq":8,"action":"seal","subject":{"kind":"transit","id":"T8"},"seals":["S-1","s2"]},
		 {"seq":9,"action":"seal","subject":{"kind":"transit","id":"T9"},"seals":["S-9"]}`,
		`{"seq":10,"action":"bad","subject":{"kind":"parcel","id":"X"}},{"seq":11,"action":"release","subject":{"kind":"parcel","id":"P11"}}`,
		`{"seq":12,"action":"release","subject":{"kind":"parcel","id":"P12"}}`,
		`{"seq":13,"action":"release","subject":{"kind":"parcel","id":"p13"}},{"seq":14,"action":"release","subject":{"kind":"parcel","id":"P14"}}`,
	}
	type want struct {
		orders []customs.Order
		bad    []string
	}
	var items []*item
	var wants []want
	for _, os := range orderSets {
		payload := []byte(`{"type":"orders","site":"PVG-W","request_id":"r","orders":[` + os + `]}`)
		var w want
		var ref, orig customs.Orders
		if err := json.Unmarshal(payload, &ref); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &orig); err != nil {
			t.Fatal(err)
		}
		for i := range ref.Orders {
			o := ref.Orders[i]
			o.Children, o.Seals = slices.Clone(o.Children), slices.Clone(o.Seals)
			if _, err := o.Normalize(); err != nil {
				b, _ := json.Marshal(&orig.Orders[i])
				w.bad = append(w.bad, string(b))
				continue
			}
			w.orders = append(w.orders, o)
		}
		var doc json.RawMessage = payload
		env, err := central.Seal(doc)
		if err != nil {
			t.Fatal(err)
		}
		it := &item{msg: &benchMsg{env}, done: make(chan struct{})}
		l.verify(it)
		if it.reject != "" {
			t.Fatalf("rejected: %s %v", it.reject, it.rejectErr)
		}
		items, wants = append(items, it), append(wants, w)
	}
	for k, it := range items {
		if !reflect.DeepEqual(it.orders, wants[k].orders) {
			t.Errorf("message %d: orders kept\n%+v\nwant\n%+v", k, it.orders, wants[k].orders)
		}
		var bad []string
		for _, b := range it.bad {
			bad = append(bad, b.order)
		}
		if !reflect.DeepEqual(bad, wants[k].bad) {
			t.Errorf("message %d: audit's copies of orders set aside\n%q\nwant\n%q", k, bad, wants[k].bad)
		}
	}
}
