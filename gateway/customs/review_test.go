package customs

import "testing"

// TestReview_UnusedFieldUnreadable: amendment 2 — an order that can be
// applied is applied; only the fields that decide for its action make it
// unappliable. A hold (or cancel, revoke, link, unlink) carrying a field
// its action does not use, in a form that cannot be read (an expires_at
// on a hold that is not a time, children on a cancel that are not a
// list), is applied without that field, the field reported as dropped.
// Refused, the hold would be lost for good (every replay carries the same
// bytes) and the parcel would pass on its release.
func TestReview_UnusedFieldUnreadable(t *testing.T) {
	const p = `"subject":{"kind":"parcel","id":"RR123456785CN"}`
	const b = `"subject":{"kind":"bag","id":"B1"}`
	cases := []struct {
		name, json, field string
		action            Action
	}{
		{"hold with an expires_at that is no time", `{"seq":9,"action":"hold","hold_id":"H1","reason":"detention",` + p + `,"expires_at":"until further notice"}`, "expires_at", Hold},
		{"hold with children not a list", `{"seq":9,"action":"hold","hold_id":"H1","reason":"detention",` + p + `,"children":"none"}`, "children", Hold},
		{"hold with seals not a list", `{"seq":9,"action":"hold","hold_id":"H1","reason":"detention",` + p + `,"seals":7}`, "seals", Hold},
		{"cancel with children not a list", `{"seq":9,"action":"cancel",` + p + `,"children":{}}`, "children", Cancel},
		{"revoke with an expires_at that is no time", `{"seq":9,"action":"revoke",` + p + `,"expires_at":0}`, "expires_at", Revoke},
		{"link with a hold_id that is a number", `{"seq":9,"action":"link",` + b + `,"children":[{"kind":"parcel","id":"P1"}],"hold_id":7}`, "hold_id", Link},
		{"unlink with an expires_at that is no time", `{"seq":9,"action":"unlink",` + b + `,"children":[{"kind":"parcel","id":"P1"}],"expires_at":"x"}`, "expires_at", Unlink},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, drops, err := DecodeOrder([]byte(tc.json))
			if err != nil {
				t.Fatalf("refused, its seq left a gap for ever: %v", err)
			}
			if o.Seq != 9 || o.Action != tc.action {
				t.Errorf("%+v", o)
			}
			found := false
			for _, d := range drops {
				found = found || d.Field == tc.field
			}
			if !found {
				t.Errorf("drops %+v: %s not reported", drops, tc.field)
			}
		})
	}
}
