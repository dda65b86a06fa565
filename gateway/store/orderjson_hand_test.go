package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestOrderJSONHandCases: orderJSON gives json.Marshal's bytes, or fails
// where it fails, for orders that do not come from a parse: times in other
// zones and years, and strings json.Marshal escapes or rewrites.
func TestOrderJSONHandCases(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("Z", 0), time.FixedZone("", 30),
		time.FixedZone("", -30), time.FixedZone("", 8*3600), time.FixedZone("", 24*3600), time.FixedZone("", -24*3600),
		time.FixedZone("", 23*3600+59*60+59), time.FixedZone("", 100*3600)}
	years := []int{-10000, -1, 0, 1, 999, 1000, 2026, 9999, 10000, 292277026596}
	var times []time.Time
	for _, z := range zones {
		for _, y := range years {
			for _, ns := range []int{0, 1, 100, 123456789, 999999999} {
				times = append(times, time.Date(y, 12, 31, 23, 59, 59, ns, z))
			}
		}
	}
	times = append(times, time.Now(), time.Now().UTC(), time.Unix(0, 0), time.Unix(1<<62, 0).UTC(), time.Unix(-1<<62, 0).UTC())
	base := func() customs.Order {
		return customs.Order{Seq: 1, Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: "P1"}}
	}
	var orders []customs.Order
	for _, tm := range times {
		o := base()
		o.ExpiresAt = tm
		orders = append(orders, o)
		o = base()
		o.IssuedAt = tm
		orders = append(orders, o)
	}
	for _, s := range []string{"", "<", ">", "&", "\u2028", "\u2029", "\x7f", "\x00", "\xff", "a\xffb", "\xed\xa0\x80", "é", "\"", "\\", "/", "\t", "ok", " "} {
		for i := range 8 {
			o := base()
			switch i {
			case 0:
				o.Subject.ID = s
			case 1:
				o.Action = customs.Action(s)
			case 2:
				o.Subject.Kind = customs.Kind(s)
			case 3:
				o.Children = []customs.Subject{{Kind: customs.Bag, ID: s}}
			case 4:
				o.Seals = []string{"A", s}
			case 5:
				o.Note, o.Ref, o.Office = s, s, s
			case 6:
				o.HoldID, o.Reason = s, s
			case 7:
				o.ReasonText = s
			}
			orders = append(orders, o)
		}
	}
	o := base()
	o.Children, o.Seals = []customs.Subject{}, []string{}
	orders = append(orders, o)
	for _, o := range orders {
		want, werr := json.Marshal(&o)
		got, gerr := orderJSON([]byte("fp"), &o)
		if (werr != nil) != (gerr != nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Errorf("%+v: json.Marshal error %v, orderJSON error %v", o, werr, gerr)
			continue
		}
		if werr == nil && !bytes.Equal(got, append([]byte("fp"), want...)) {
			t.Errorf("orderJSON differs from json.Marshal:\n%s\n%s", got[2:], want)
		}
	}
}
