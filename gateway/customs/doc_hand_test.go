package customs_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// readDocHand are the spellings a fast path gets wrong, each checked
// against json.Unmarshal by TestReadDocHandCases.
func readDocHand() []string {
	o := func(order string) string { return `{"type":"orders","site":"PVG-W","orders":[` + order + `]}` }
	rel := func(extra string) string {
		return o(`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P1"}` + extra + `}`)
	}
	tm := func(t string) string { return rel(`,"expires_at":"` + t + `"`) }
	var out []string
	// keys in other cases and folded letters
	for _, k := range []string{"Action", "ACTION", "actioN", "ſeq", "SEQ", "\u212aind", "Type", "SITE", "Orders", "ORDERS", "Up_To", "hold_ID", "ſite"} {
		out = append(out, rel(`,"`+k+`":"hold"`), `{"type":"orders","`+k+`":"PVG-W","orders":[]}`)
	}
	out = append(out,
		o(`{"seq":1,"action":"release","Action":"hold","subject":{"kind":"parcel","id":"P1"}}`),
		o(`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P1","Id":"P2"}}`),
		o(`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"P1"},"subject":{"kind":"bag","id":"B1"}}`),
		o(`{"seq":1,"action":"release","action":"hold","subject":{"kind":"parcel","id":"P1"}}`),
		`{"type":"orders","type":"head","site":"PVG-W","orders":[]}`,
		`{"type":"head","site":"PVG-W","seq":1,"seq":2,"at":"2026-11-27T08:00:00Z"}`,
		// a key twice where json.Unmarshal merges the second into the first
		o(`{"seq":1,"action":"link","subject":{"kind":"uld","id":"U1"},"children":[{"kind":"bag","id":"B1"}],"children":[{"kind":"uld"}]}`),
		o(`{"seq":1,"action":"seal","subject":{"kind":"transit","id":"T1"},"seals":["A","B"],"seals":["C"]}`),
		`{"type":"orders","site":"PVG-W","orders":[{"seq":1,"action":"hold","hold_id":"h"}],"orders":[{"seq":2}]}`,
		// escapes
		rel(`,"note":"a\u0000b"`), rel(`,"note":"a\/b"`), rel(`,"note":"\ud83d\ude00"`), rel(`,"note":"\ud83d"`),
		rel(`,"note":"\ude00\ud83d"`), rel(`,"note":"\u00e9"`), `{"type":"orders","site":"PVG\u002dW","orders":[]}`,
		`{"type":"ord\u0065rs","site":"PVG-W","orders":[]}`, `{"t\u0079pe":"orders","site":"PVG-W","orders":[]}`,
		// numbers
		o(`{"seq":0}`), o(`{"seq":00}`), o(`{"seq":-0}`), o(`{"seq":-1}`), o(`{"seq":1e0}`), o(`{"seq":1E2}`), o(`{"seq":1.5}`),
		o(`{"seq":18446744073709551615}`), o(`{"seq":18446744073709551616}`), o(`{"seq":99999999999999999999999}`),
		o(`{"seq":+1}`), o(`{"seq":0x10}`), o(`{"seq":1 }`), o(`{"seq": 1}`), o(`{"seq":1,}`), o(`{"seq":}`),
		o(`{"seq":true}`), o(`{"seq":null}`), o(`{"seq":"1"}`), o(`{"seq":١}`),
		`{"type":"replay_done","site":"PVG-W","request_id":"r","up_to":18446744073709551615}`,
		`{"type":"replay_done","site":"PVG-W","request_id":"r","up_to":-1}`,
		// white space, trailing data, BOM
		"\t\r\n"+rel("")+"\t\r\n", rel("")+"\f", rel("")+"\v", rel("")+"\u00a0", rel("")+"\x00", "\ufeff"+rel(""),
		rel("")+"{}", rel("")+" null", rel("")+"]", strings.Replace(rel(""), ",", "\u2028,", 1),
		// null and empty
		`{"type":"orders","site":"PVG-W","orders":[{"seq":1,"subject":null}]}`, o(`{"seq":1,"children":null}`),
		o(`{"seq":1,"children":[]}`), o(`{"seq":1,"seals":[]}`), o(`{"seq":1,"seals":[null]}`), o(`{"seq":1,"children":[null]}`),
		o(`{"seq":1,"children":[{}]}`), o(`{}`), o(`{},{}`), o(`null`), `{"type":null,"site":"PVG-W","orders":[]}`,
		`{"type":"orders","site":"PVG-W","orders":{}}`, `{"type":"orders","site":"PVG-W","orders":"x"}`, `{}`, `null`, `[]`, `"x"`,
		`{"type":"orders","site":"PVG-W","orders":[]}{"type":"orders"}`,
		// times
		tm("2026-11-27T08:00:00Z"), tm("2026-11-27t08:00:00Z"), tm("2026-11-27T08:00:00z"), tm(" 2026-11-27T08:00:00Z"),
		tm("2026-11-27T08:00:00Z "), tm("2026-12-31T23:59:60Z"), tm("2026-11-27T24:00:00Z"), tm("2026-11-27T08:00:00+24:00"),
		tm("2026-11-27T08:00:00+23:59"), tm("2026-11-27T08:00:00-00:00"), tm("2026-11-27T08:00:00+0800"), tm("2026-11-27T08:00:00.Z"),
		tm("2026-11-27T08:00:00,5Z"), tm("2026-11-27T08:00:00.1234567891Z"), tm("2026-02-30T08:00:00Z"), tm("0000-01-01T00:00:00Z"),
		tm("10000-01-01T00:00:00Z"), tm("2026-11-27T08:00Z"), tm("2026-11-27"), tm(""), tm("2026-11-27T08:00:00+08:00:00"),
		tm("2026-11-27 08:00:00Z"), tm("2026-11-27T8:00:00Z"), tm("2026-11-27T08:00:00.000000000Z"), tm("2026-11-27T08:00:00.5+01:00"),
		rel(`,"expires_at":null`), rel(`,"expires_at":1`), rel(`,"issued_at":"2026-11-27T08:00:00\u005a"`),
		// invalid UTF-8, surrogates in UTF-8, long encodings
		rel(`,"note":"a`+"\xff"+`b"`), rel(`,"note":"`+"\xed\xa0\x80"+`"`), rel(`,"note":"`+"\xc0\xaf"+`"`), rel(`,"note":"`+"\xf4\x90\x80\x80"+`"`),
		rel(`,"note":"`+"\u2028\u2029\ufffd"+`"`), rel(`,"note":"`+"\x7f"+`"`), `{"type":"orders","site":"PVG-`+"\xff"+`","orders":[]}`,
		rel(`,"`+"\xff"+`":1`),
		// control characters
		rel(`,"note":"a`+"\n"+`b"`), rel(`,"note":"a`+"\x1f"+`b"`),
		// wrong types
		o(`{"seq":1,"action":1}`), o(`{"seq":1,"subject":[]}`), o(`{"seq":1,"children":{}}`), o(`{"seq":1,"seals":"S"}`),
		o(`{"seq":1,"seals":[1]}`), o(`{"seq":1,"note":1}`), o(`{"seq":1,"note":{}}`), o(`{"seq":1,"note":[]}`),
		// unterminated
		`{"type":"orders","site":"PVG-W","orders":[{"seq":1}`, `{"type":"orders","site":"PVG-W","orders":[{"seq":1}]`, `{"type":"orders","site":"PVG-W`, `{`, `{"`,
	)
	return out
}

// TestReadDocHandCases: for each spelling, the decode verify uses
// (ReadDoc, else json.Unmarshal) gives json.Unmarshal's outcome: the same
// acceptance, the same document and the same error.
func TestReadDocHandCases(t *testing.T) {
	cases := readDocHand()
	// a large document with many orders (ReadDoc sizes from the first)
	var big strings.Builder
	big.WriteString(`{"type":"orders","site":"PVG-W","orders":[{}`)
	for i := range customs.MaxOrders + 50 {
		big.WriteString(`,{"seq":` + string(rune('1'+i%9)) + `,"action":"release","subject":{"kind":"parcel","id":"P1"},"seals":["A","B"],"children":[{"kind":"bag","id":"B1"}]}`)
	}
	big.WriteString(`]}`)
	cases = append(cases, big.String())
	for _, p := range cases {
		var fast, ref customs.AnyDoc
		ok := customs.ReadDoc([]byte(p), &fast)
		rerr := json.Unmarshal([]byte(p), &ref)
		var ferr error
		if !ok {
			if !reflect.DeepEqual(fast, customs.AnyDoc{}) {
				t.Errorf("not read, but not zero: %q", p)
			}
			fast = customs.AnyDoc{}
			ferr = json.Unmarshal([]byte(p), &fast)
		}
		if (ferr == nil) != (rerr == nil) || (ferr != nil && ferr.Error() != rerr.Error()) {
			t.Errorf("%q: error %v, json.Unmarshal %v (fast path %v)", p, ferr, rerr, ok)
			continue
		}
		if d := docDiff(fast, ref); d != "" {
			t.Errorf("%q: differs in %s (fast path %v)\nfast %+v\nref  %+v", cut(p), d, ok, fast, ref)
		}
	}
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
