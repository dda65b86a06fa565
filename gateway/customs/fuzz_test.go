package customs_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The fuzz targets below run as plain tests on their seeds (f.Add and
// testdata/fuzz/FuzzXxx); fuzzing proper is
//
//	go test -run x -fuzz FuzzOrder -fuzztime 60s ./gateway/customs/
//	go test -run x -fuzz FuzzOrdersMessage -fuzztime 60s ./gateway/customs/

// accept is the gateway's acceptance of one received order (amendment 2:
// Normalize drops office/ref/note out of form and reads an unlisted hold
// reason as other): nil when the order is applied, as it then stands.
func accept(o *customs.Order) error { _, err := o.Normalize(); return err }

// fuzzSite, fuzzKid and fuzzSigner are the central of the message target.
const (
	fuzzSite = "PVG-W"
	fuzzKid  = "central-2026a"
)

var fuzzSigner = envelope.Signer{Kid: fuzzKid, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}

// protocolOrders are the orders of the protocol's examples and table, one of
// each action, as seeds.
var protocolOrders = []string{
	`{"seq":1024,"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"},"issued_at":"2026-11-27T08:00:00Z","expires_at":"2026-11-30T08:00:00Z","office":"2244","ref":"22442026E000123456"}`,
	`{"seq":1025,"action":"revoke","subject":{"kind":"parcel","id":"RR123456785CN"}}`,
	`{"seq":1026,"action":"hold","subject":{"kind":"bag","id":"003123456789012345678"},"hold_id":"H-1","reason":"inspection","note":"查验"}`,
	`{"seq":1027,"action":"unhold","subject":{"kind":"bag","id":"003123456789012345678"},"hold_id":"H-1"}`,
	`{"seq":1028,"action":"cancel","subject":{"kind":"awb","id":"78012345678"}}`,
	`{"seq":1029,"action":"link","subject":{"kind":"uld","id":"AKE12345CA"},"children":[{"kind":"bag","id":"003123456789012345678"},{"kind":"parcel","id":"RR123456785CN"}]}`,
	`{"seq":1030,"action":"unlink","subject":{"kind":"uld","id":"AKE12345CA"},"children":[{"kind":"bag","id":"003123456789012345678"}]}`,
	`{"seq":1031,"action":"seal","subject":{"kind":"transit","id":"T2244PVG0001"},"seals":["CN-ES-000123","A1"]}`,
	`{"seq":1032,"action":"hold","subject":{"kind":"parcel","id":"RR1"},"hold_id":"x","reason":"smuggling"}`,
	`{"seq":0,"action":"release","subject":{"kind":"parcel","id":"rr1"},"office":"22A4"}`,
	`{"seq":1033,"action":"link","subject":{"kind":"parcel","id":"RR1"},"children":[{"kind":"parcel","id":"RR1"}]}`,
}

// FuzzOrder decodes one order and runs the validator on it. Properties: no
// panic; a rejected order is left exactly as it was; an accepted order has
// well-formed deciding fields and is accepted again, with the same deciding
// fields, after a JSON round trip.
func FuzzOrder(f *testing.F) {
	for _, s := range protocolOrders {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o customs.Order
		if json.Unmarshal(data, &o) != nil {
			return
		}
		_ = o.Validate(false) // the submission form must not panic either
		checkOrder(t, &o)
	})
}

// FuzzOrdersMessage opens a message as the gateway's order path does:
// envelope, type and site, at most MaxOrders orders, then each order. The
// seeds in testdata/fuzz/FuzzOrdersMessage are messages sealed by
// fuzzSigner, so mutations start from signed input (most mutations then
// fail the signature, which is the point of the envelope; the payload
// mutations that matter are reached through FuzzOrder and the unsigned
// decode below).
func FuzzOrdersMessage(f *testing.F) {
	ring := envelope.Keyring{fuzzKid: fuzzSigner.Public()}
	for _, s := range protocolOrders {
		f.Add(sealRaw(f, []byte(`{"type":"orders","site":"PVG-W","orders":[`+s+`]}`)))
	}
	f.Add(sealRaw(f, []byte(`{"type":"orders","site":"PVG-W","request_id":"r1","orders":[`+protocolOrders[0]+`,`+protocolOrders[2]+`,`+protocolOrders[5]+`]}`)))
	f.Add(sealRaw(f, []byte(`{"type":"orders","site":"PVG-W","orders":[]}`)))
	f.Add(sealRaw(f, []byte(`{"type":"head","site":"PVG-W","seq":1024,"at":"2026-11-27T08:00:00Z"}`)))
	f.Fuzz(func(t *testing.T, msg []byte) {
		payload, _, err := ring.Open(msg)
		if err != nil {
			if payload != nil {
				t.Fatalf("payload with error %v", err)
			}
			// The payload decode must stand on its own too: what a
			// forged or mutated message carries is fuzzed unsigned.
			decodeOrders(t, msg)
			return
		}
		decodeOrders(t, payload)
	})
}

// decodeOrders decodes payload as an orders document of fuzzSite and checks
// every order in it; an accepted document is sealed again and must come
// back with the same accepted orders.
func decodeOrders(t *testing.T, payload []byte) {
	p, err := customs.ReadProbe(payload)
	if err != nil || p.Type != customs.TypeOrders || p.Site != fuzzSite {
		return
	}
	var doc customs.Orders
	if json.Unmarshal(payload, &doc) != nil || len(doc.Orders) > customs.MaxOrders {
		return
	}
	var ok []customs.Order
	for i := range doc.Orders {
		if checkOrder(t, &doc.Orders[i]) {
			ok = append(ok, doc.Orders[i])
		}
	}
	if len(ok) == 0 {
		return
	}
	msg, err := fuzzSigner.Seal(customs.Orders{Type: customs.TypeOrders, Site: fuzzSite, RequestID: doc.RequestID, Orders: ok})
	if err != nil {
		return // re-encoded over 1 MiB: cannot happen from an accepted message, but not this target's point
	}
	back, _, err := envelope.Keyring{fuzzKid: fuzzSigner.Public()}.Open(msg)
	if err != nil {
		t.Fatalf("own sealed message rejected: %v", err)
	}
	var again customs.Orders
	if err := json.Unmarshal(back, &again); err != nil || len(again.Orders) != len(ok) {
		t.Fatalf("resealed orders: %v, %d of %d", err, len(again.Orders), len(ok))
	}
	for i := range again.Orders {
		if err := accept(&again.Orders[i]); err != nil {
			t.Fatalf("accepted order rejected after a round trip: %v\n%+v", err, ok[i])
		}
		if !sameDeciding(&ok[i], &again.Orders[i]) {
			t.Fatalf("round trip changed a deciding field:\n%+v\n%+v", ok[i], again.Orders[i])
		}
	}
}

// checkOrder runs accept on o and checks the properties; it reports
// whether o was accepted.
func checkOrder(t *testing.T, o *customs.Order) bool {
	t.Helper()
	before := cloneOrder(o)
	if err := accept(o); err != nil {
		if !reflect.DeepEqual(*o, before) {
			t.Fatalf("rejected order changed:\nbefore %+v\nafter  %+v", before, *o)
		}
		return false
	}
	if why := illFormed(o); why != "" {
		t.Fatalf("accepted order with %s: %+v", why, *o)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("accepted order does not encode: %v", err)
	}
	var back customs.Order
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("accepted order does not decode again: %v\n%s", err, b)
	}
	if err := accept(&back); err != nil {
		t.Fatalf("accepted order rejected after a JSON round trip: %v\n%s", err, b)
	}
	if !sameDeciding(o, &back) {
		t.Fatalf("JSON round trip changed a deciding field:\n%+v\n%+v", *o, back)
	}
	return true
}

func cloneOrder(o *customs.Order) customs.Order {
	c := *o
	c.Children = slices.Clone(o.Children)
	c.Seals = slices.Clone(o.Seals)
	return c
}

var (
	idRE     = regexp.MustCompile(`^[A-Z0-9]{1,64}$`)
	sealRE   = regexp.MustCompile(`^[A-Z0-9-]{1,32}$`)
	officeRE = regexp.MustCompile(`^[0-9]{4}$`)
)

// illFormed says what is wrong with an accepted order's fields, written
// from §3 independently of Validate; "" when nothing is.
func illFormed(o *customs.Order) string {
	subj := func(s customs.Subject) bool { return s.Kind.Valid() && idRE.MatchString(s.ID) }
	switch {
	case o.Seq < 1:
		return "seq 0"
	case !subj(o.Subject):
		return "a subject out of form"
	case o.Office != "" && !officeRE.MatchString(o.Office):
		return "office out of form"
	case utf8.RuneCountInString(o.Ref) > 64:
		return "ref too long"
	case utf8.RuneCountInString(o.Note) > 256:
		return "note too long"
	}
	switch o.Action {
	case customs.Release, customs.Revoke, customs.Cancel:
	case customs.Hold, customs.Unhold:
		if o.HoldID == "" || len(o.HoldID) > customs.MaxHoldIDLen {
			return "hold_id out of form"
		}
		if o.Action == customs.Hold && !slices.Contains(customs.HoldReasons, o.Reason) {
			return "an unlisted hold reason"
		}
	case customs.Link, customs.Unlink:
		if !o.Subject.Kind.Container() {
			return "children on a parcel"
		}
		if len(o.Children) == 0 || len(o.Children) > customs.MaxChildren {
			return "a children count out of range"
		}
		for _, c := range o.Children {
			if !subj(c) || c == o.Subject {
				return "a child out of form or itself"
			}
		}
	case customs.Seal:
		if o.Subject.Kind != customs.Transit || len(o.Seals) == 0 || len(o.Seals) > customs.MaxSeals {
			return "seals out of form"
		}
		for _, s := range o.Seals {
			if !sealRE.MatchString(s) {
				return "a seal id out of form"
			}
		}
	default:
		return "an unknown action"
	}
	return ""
}

// sameDeciding compares what decides (§3's conflict fields, the reason and
// the times).
func sameDeciding(a, b *customs.Order) bool {
	return a.Seq == b.Seq && a.Action == b.Action && a.Subject == b.Subject && a.HoldID == b.HoldID &&
		a.Reason == b.Reason && slices.Equal(a.Children, b.Children) && slices.Equal(a.Seals, b.Seals) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.IssuedAt.Equal(b.IssuedAt)
}

func sealRaw(f *testing.F, payload []byte) []byte {
	f.Helper()
	msg, err := fuzzSigner.SealBytes(payload)
	if err != nil {
		f.Fatal(err)
	}
	return msg
}
