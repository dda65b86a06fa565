package customs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDecodeOrderNormalizes checks amendment 2 order by order: a field that
// decides nothing and is out of form is dropped and reported, an unlisted
// hold reason becomes "other" with its text kept, and an order whose
// deciding fields cannot be read is refused with its seq when known.
func TestDecodeOrderNormalizes(t *testing.T) {
	const hold = `"seq":7,"action":"hold","subject":{"kind":"parcel","id":"RR123456785CN"},"hold_id":"H1"`
	const release = `"seq":8,"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}`
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name    string
		json    string
		dropped []string // fields reported, in order
		check   func(t *testing.T, o Order)
	}{
		{"in form", `{` + hold + `,"reason":"inspection","office":"2244","ref":"R1","note":"n"}`, nil,
			func(t *testing.T, o Order) {
				if o.Reason != "inspection" || o.ReasonText != "" || o.Office != "2244" || o.Ref != "R1" || o.Note != "n" {
					t.Errorf("changed: %+v", o)
				}
			}},
		{"5-digit office", `{` + hold + `,"reason":"inspection","office":"22445","ref":"R1"}`, []string{"office"},
			func(t *testing.T, o Order) {
				if o.Office != "" || o.Ref != "R1" || o.Reason != "inspection" {
					t.Errorf("%+v", o)
				}
			}},
		{"300-character note", `{` + release + `,"note":"` + long(300) + `"}`, []string{"note"},
			func(t *testing.T, o Order) {
				if o.Note != "" || o.Action != Release {
					t.Errorf("%+v", o)
				}
			}},
		{"80-character ref", `{` + release + `,"ref":"` + long(80) + `"}`, []string{"ref"},
			func(t *testing.T, o Order) {
				if o.Ref != "" {
					t.Errorf("%+v", o)
				}
			}},
		{"ref of 64 characters (multi-byte) kept", `{` + release + `,"ref":"` + strings.Repeat("关", 64) + `"}`, nil, nil},
		{"office as a number", `{` + release + `,"office":2244}`, []string{"office"},
			func(t *testing.T, o Order) {
				if o.Office != "" || o.Seq != 8 {
					t.Errorf("%+v", o)
				}
			}},
		{"unlisted hold reason", `{` + hold + `,"reason":"x-ray scan"}`, []string{"reason"},
			func(t *testing.T, o Order) {
				if o.Reason != "other" || o.ReasonText != "x-ray scan" || o.HoldID != "H1" {
					t.Errorf("%+v", o)
				}
			}},
		{"hold without a reason", `{` + hold + `}`, []string{"reason"},
			func(t *testing.T, o Order) {
				if o.Reason != "other" {
					t.Errorf("%+v", o)
				}
			}},
		{"hold reason not a string", `{` + hold + `,"reason":{"code":7}}`, []string{"reason"},
			func(t *testing.T, o Order) {
				if o.Reason != "other" || o.ReasonText != `{"code":7}` {
					t.Errorf("%+v", o)
				}
			}},
		{"a long unlisted reason is cut for the slot", `{` + hold + `,"reason":"` + long(200) + `"}`, []string{"reason"},
			func(t *testing.T, o Order) {
				if o.Reason != "other" || len(o.ReasonText) > MaxReasonText || !strings.HasPrefix(o.ReasonText, "xxx") {
					t.Errorf("%+v", o)
				}
			}},
		{"reason_text from the wire is ignored", `{` + hold + `,"reason":"detention","reason_text":"forged"}`, nil,
			func(t *testing.T, o Order) {
				if o.ReasonText != "" || o.Reason != "detention" {
					t.Errorf("%+v", o)
				}
			}},
		{"malformed issued_at", `{` + release + `,"issued_at":"yesterday","expires_at":"2026-11-30T08:00:00Z"}`, []string{"issued_at"},
			func(t *testing.T, o Order) {
				if !o.IssuedAt.IsZero() || !o.ExpiresAt.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)) {
					t.Errorf("%+v", o)
				}
			}},
		{"every bad field at once", `{` + hold + `,"reason":"x","office":"1","ref":"` + long(65) + `","note":"` + long(257) + `","issued_at":5}`,
			[]string{"issued_at", "office", "ref", "note", "reason"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, drops, err := DecodeOrder([]byte(tc.json))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var fields []string
			for _, d := range drops {
				fields = append(fields, d.Field)
				if d.Why == "" || len(d.Value) > MaxDroppedValue {
					t.Errorf("drop %+v: no why, or value too long", d)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tc.dropped, ",") {
				t.Errorf("dropped %v, want %v", fields, tc.dropped)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
			// What is applied is in form: central's own check passes.
			if err := o.Validate(true); err != nil && o.ReasonText == "" {
				t.Errorf("normalized order does not validate: %v", err)
			}
		})
	}
}

// TestDecodeOrderUnappliable: an order whose deciding fields cannot be read
// is refused, with its seq when the seq could be read.
func TestDecodeOrderUnappliable(t *testing.T) {
	const subj = `"subject":{"kind":"parcel","id":"RR123456785CN"}`
	cases := []struct {
		name string
		json string
		seq  uint64
	}{
		{"unknown action", `{"seq":9,"action":"frobnicate",` + subj + `}`, 9},
		{"seq 0", `{"seq":0,"action":"release",` + subj + `}`, 0},
		{"no seq", `{"action":"release",` + subj + `}`, 0},
		{"seq not a number", `{"seq":"9","action":"release",` + subj + `}`, 0},
		{"subject unreadable", `{"seq":9,"action":"release","subject":{"kind":"parcel","id":"rr1"}}`, 9},
		{"subject of the wrong type", `{"seq":9,"action":"release","subject":"RR123456785CN"}`, 9},
		{"unknown kind", `{"seq":9,"action":"release","subject":{"kind":"box","id":"B1"}}`, 9},
		{"hold without hold_id", `{"seq":9,"action":"hold","reason":"inspection",` + subj + `}`, 9},
		{"unhold with a 65-byte hold_id", `{"seq":9,"action":"unhold","hold_id":"` + strings.Repeat("H", 65) + `",` + subj + `}`, 9},
		{"unparsable expires_at", `{"seq":9,"action":"release","expires_at":"next week",` + subj + `}`, 9},
		{"child unreadable", `{"seq":9,"action":"link","subject":{"kind":"bag","id":"B1"},"children":[{"kind":"parcel","id":"a b"}]}`, 9},
		{"link on a parcel", `{"seq":9,"action":"link",` + subj + `,"children":[{"kind":"parcel","id":"P2"}]}`, 9},
		{"too many children", `{"seq":9,"action":"link","subject":{"kind":"bag","id":"B1"},"children":[` +
			strings.TrimSuffix(strings.Repeat(`{"kind":"parcel","id":"P1"},`, MaxChildren+1), ",") + `]}`, 9},
		{"too many seals", `{"seq":9,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":[` +
			strings.TrimSuffix(strings.Repeat(`"S1",`, MaxSeals+1), ",") + `]}`, 9},
		{"bad seal id", `{"seq":9,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":["s 1"]}`, 9},
		{"not an object", `[1,2]`, 0},
		{"null", `null`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, drops, err := DecodeOrder([]byte(tc.json))
			if err == nil {
				t.Fatalf("applied: %+v", o)
			}
			if o.Seq != tc.seq || drops != nil {
				t.Errorf("seq %d, drops %v; want seq %d, none", o.Seq, drops, tc.seq)
			}
		})
	}
}

// TestNormalizeMatchesDecode: the typed path (an orders document that
// decodes whole, then Normalize per order) reads an order as DecodeOrder
// does, so the link's two paths agree.
func TestNormalizeMatchesDecode(t *testing.T) {
	for _, js := range []string{
		`{"seq":3,"action":"hold","subject":{"kind":"bag","id":"B1"},"hold_id":"H","reason":"unlisted","office":"123","ref":"ok","note":"ok"}`,
		`{"seq":4,"action":"release","subject":{"kind":"parcel","id":"P1"},"expires_at":"2026-11-30T08:00:00Z","issued_at":"2026-11-27T08:00:00Z","ref":"` + strings.Repeat("r", 70) + `"}`,
		`{"seq":5,"action":"link","subject":{"kind":"uld","id":"AKE12345MU"},"children":[{"kind":"bag","id":"B1"}],"reason_text":"x"}`,
	} {
		var typed Order
		if err := json.Unmarshal([]byte(js), &typed); err != nil {
			t.Fatal(err)
		}
		d1, err1 := typed.Normalize()
		lenient, d2, err2 := DecodeOrder([]byte(js))
		a, _ := json.Marshal(typed)
		b, _ := json.Marshal(lenient)
		if err1 != nil || err2 != nil || string(a) != string(b) || len(d1) != len(d2) {
			t.Errorf("%s:\n typed   %s %v %v\n lenient %s %v %v", js, a, d1, err1, b, d2, err2)
		}
	}
}

// TestValidateStaysStrict: central issues only orders in form; what a
// gateway forgives (amendment 2) central still refuses to issue.
func TestValidateStaysStrict(t *testing.T) {
	base := Order{Seq: 1, Action: Hold, Subject: Subject{Kind: Parcel, ID: "P1"}, HoldID: "H1", Reason: "inspection"}
	if err := base.Validate(true); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(o *Order){
		"office":      func(o *Order) { o.Office = "22445" },
		"ref":         func(o *Order) { o.Ref = strings.Repeat("r", 65) },
		"note":        func(o *Order) { o.Note = strings.Repeat("n", 257) },
		"reason":      func(o *Order) { o.Reason = "x-ray" },
		"reason_text": func(o *Order) { o.ReasonText = "x" },
	} {
		o := base
		mut(&o)
		if err := o.Validate(true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeOrder: DecodeOrder never panics; what it accepts is in form
// (central's own check passes once the gateway's reason text is set
// aside), and reading it again changes nothing more.
func FuzzDecodeOrder(f *testing.F) {
	f.Add([]byte(`{"seq":7,"action":"hold","subject":{"kind":"parcel","id":"RR123456785CN"},"hold_id":"H1","reason":"x-ray","office":"22445"}`))
	f.Add([]byte(`{"seq":8,"action":"release","subject":{"kind":"parcel","id":"P1"},"expires_at":"2026-11-30T08:00:00Z","issued_at":"bad","note":5}`))
	f.Add([]byte(`{"seq":9,"action":"link","subject":{"kind":"bag","id":"B1"},"children":[{"kind":"parcel","id":"P1"}],"ref":"` + strings.Repeat("r", 70) + `"}`))
	f.Add([]byte(`{"seq":10,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":["SH-1"]}`))
	f.Add([]byte(`{"seq":0,"action":"frobnicate"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the link rejects the message whole before orders are read
		}
		o, drops, err := DecodeOrder(raw)
		if err != nil {
			if drops != nil {
				t.Fatalf("error %v with drops %v", err, drops)
			}
			return
		}
		c := o
		c.ReasonText = ""
		if err := c.Validate(true); err != nil {
			t.Fatalf("accepted an order out of form: %v\n%+v", err, o)
		}
		again := o
		more, err := again.Normalize()
		if err != nil || len(more) != 0 {
			t.Fatalf("normalized twice: %v %v", more, err)
		}
	})
}
