package ident

import (
	"strings"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

func testClassifier(t testing.TB) *Classifier {
	t.Helper()
	c, err := New(
		[]string{`^LP\d{14}$`, `\d{11}`},
		[]string{`^TR\d{10}$`},
		[]string{`^SH-\d{6}$`, `^ES\d{8}$`},
	)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClassify(t *testing.T) {
	c := testClassifier(t)
	const gsb = "\x1d"
	sub := func(k customs.Kind, id string) customs.Subject { return customs.Subject{Kind: k, ID: id} }
	tests := []struct {
		name    string
		line    string
		arrival bool
		kind    ResultKind
		subject customs.Subject
		seal    string
		code    string // "" : not checked
		problem string // substring, for KindInvalid
	}{
		// awb
		{name: "awb dash", line: "784-12345675\r\n", kind: KindSubject, subject: sub(customs.AWB, "78412345675"), code: "784-12345675"},
		{name: "awb space", line: "784 12345675", kind: KindSubject, subject: sub(customs.AWB, "78412345675")},
		{name: "awb plain", line: "78412345675\n", kind: KindSubject, subject: sub(customs.AWB, "78412345675")},
		{name: "awb bad check", line: "784-12345674", kind: KindInvalid, problem: "check digit: expected 5, got 4"},
		{name: "awb two separators", line: "784--12345675", kind: KindInvalid, problem: "matches no known"},
		{name: "awb short", line: "784-1234567", kind: KindInvalid, problem: "matches no known"},
		// 11 digits failing the AWB check but matching a carrier pattern.
		{name: "awb bad check carrier pattern", line: "78412345674", kind: KindSubject, subject: sub(customs.Parcel, "78412345674")},
		// parcel S10
		{name: "s10", line: "RR123456785CN\r", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN")},
		{name: "s10 lower case", line: "rr123456785cn", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN"), code: "rr123456785cn"},
		{name: "s10 aim", line: "]C0RR123456785CN\r\n", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN"), code: "]C0RR123456785CN"},
		{name: "s10 aim qr", line: "]Q1RR123456785CN", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN")},
		{name: "s10 spaces", line: "  RR123456785CN  \r\n", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN")},
		{name: "s10 stx etx", line: "\x02RR123456785CN\x03", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN"), code: "RR123456785CN"},
		{name: "s10 stx etx crlf", line: "\x02RR123456785CN\x03\r\n", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN")},
		{name: "s10 bad check", line: "RR123456784CN", kind: KindInvalid, problem: "check digit: expected 5, got 4"},
		{name: "s10 c=10 gives 0", line: "EE000000080CN", kind: KindSubject, subject: sub(customs.Parcel, "EE000000080CN")},
		{name: "s10 c=11 gives 5", line: "EE000000005CN", kind: KindSubject, subject: sub(customs.Parcel, "EE000000005CN")},
		// parcel carrier
		{name: "carrier", line: "LP00123456789012", kind: KindSubject, subject: sub(customs.Parcel, "LP00123456789012")},
		{name: "carrier lower", line: "lp00123456789012", kind: KindSubject, subject: sub(customs.Parcel, "LP00123456789012")},
		{name: "carrier too long", line: "LP001234567890123", kind: KindInvalid, problem: "matches no known"},
		// bag SSCC
		{name: "sscc", line: "106141411234567897", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897")},
		{name: "sscc ai", line: "00106141411234567897", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897")},
		{name: "sscc ai parens", line: "(00)106141411234567897", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897")},
		{name: "sscc leading zeros", line: "001234560000000018", kind: KindSubject, subject: sub(customs.Bag, "001234560000000018")},
		{name: "sscc bad check", line: "(00)106141411234567896", kind: KindInvalid, problem: "SSCC check digit: expected 7, got 6"},
		// bag GS1 element strings
		{name: "gs1 c1 sscc", line: "]C100106141411234567897", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897"), code: "]C100106141411234567897"},
		{name: "gs1 d2 sscc then gtin", line: "]d2001061414112345678970109506000134352", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897")},
		{name: "gs1 q3 batch then gs then sscc", line: "]Q310ABC123" + gsb + "00106141411234567897\r\n", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897"), code: `]Q310ABC123\x1D00106141411234567897`},
		{name: "gs1 leading gs", line: "]C1" + gsb + "00106141411234567897", kind: KindSubject, subject: sub(customs.Bag, "106141411234567897")},
		{name: "gs1 no sscc", line: "]C10109506000134352" + gsb + "10ABC", kind: KindInvalid, problem: "no SSCC"},
		{name: "gs1 bad sscc", line: "]C1" + gsb + "00106141411234567896", kind: KindInvalid, problem: "SSCC check digit"},
		{name: "gs1 two ssccs", line: "]C100106141411234567897" + gsb + "00001234560000000018", kind: KindInvalid, problem: "two different SSCCs"},
		{name: "gs1 garbage", line: "]C1AB" + gsb + "CD", kind: KindInvalid, problem: "no application identifier"},
		{name: "gs1 short element", line: "]C1001061414112" + gsb + "10A", kind: KindInvalid, problem: "too short"},
		{name: "gs1 prefix plain text", line: "]C1RR123456785CN", kind: KindSubject, subject: sub(customs.Parcel, "RR123456785CN")},
		{name: "gs without gs1 prefix", line: "]C000106141411234567897" + gsb + "10A", kind: KindInvalid, problem: "control byte 0x1D"},
		{name: "gs no prefix", line: "RR123456785CN" + gsb, kind: KindInvalid, problem: "control byte 0x1D"},
		// bag S9
		{name: "s9", line: "CNPVGAFRCDGAAUN60001001001010", kind: KindSubject, subject: sub(customs.Bag, "CNPVGAFRCDGAAUN60001001001010")},
		{name: "s9 short", line: "CNPVGAFRCDGAAUN6000100100101", kind: KindInvalid, problem: "matches no known"},
		// uld
		{name: "uld 5", line: "AKE12345MU", kind: KindSubject, subject: sub(customs.ULD, "AKE12345MU")},
		{name: "uld 4", line: "PMC1234CA", kind: KindSubject, subject: sub(customs.ULD, "PMC1234CA")},
		{name: "uld digits owner", line: "AKE1234599", kind: KindSubject, subject: sub(customs.ULD, "AKE1234599")},
		{name: "uld 3 digits", line: "AKE123MU", kind: KindInvalid, problem: "matches no known"},
		// transit
		{name: "transit", line: "TR2026000123", kind: KindSubject, subject: sub(customs.Transit, "TR2026000123")},
		{name: "transit at arrival", line: "TR2026000123", arrival: true, kind: KindSubject, subject: sub(customs.Transit, "TR2026000123")},
		// seal
		{name: "seal at arrival", line: "SH-000123\r\n", arrival: true, kind: KindSeal, seal: "SH-000123"},
		{name: "seal lower at arrival", line: "es12345678", arrival: true, kind: KindSeal, seal: "ES12345678"},
		{name: "seal elsewhere", line: "SH-000123", kind: KindInvalid, problem: "matches no known"},
		// seal pattern checked first at arrival: this one is also a carrier code
		{name: "seal elsewhere is parcel", line: "ES12345678", kind: KindInvalid, problem: "matches no known"},
		// invalid framing and bytes
		{name: "empty", line: "\r\n", kind: KindInvalid, problem: "empty code"},
		{name: "only aim", line: "]C0", kind: KindInvalid, problem: "empty code"},
		{name: "tab", line: "RR123456785CN\t", kind: KindInvalid, problem: "control byte 0x09"},
		{name: "nul", line: "RR1234\x0056785CN", kind: KindInvalid, problem: "control byte 0x00", code: `RR1234\x0056785CN`},
		{name: "del", line: "RR123456785CN\x7f", kind: KindInvalid, problem: "control byte 0x7F"},
		{name: "cr inside", line: "RR1234\r56785CN", kind: KindInvalid, problem: "control byte 0x0D"},
		{name: "non ascii", line: "RR123456785CÑ", kind: KindInvalid, problem: "non-ASCII byte 0xC3"},
		{name: "backslash code", line: `A\B`, kind: KindInvalid, code: `A\\B`, problem: "matches no known"},
		{name: "overlong", line: strings.Repeat("A", MaxLine+1), kind: KindInvalid, problem: "too long"},
		{name: "overlong by terminator", line: strings.Repeat("A", MaxLine) + "\n", kind: KindInvalid, problem: "too long"},
		{name: "max length", line: strings.Repeat("A", MaxLine), kind: KindInvalid, problem: "matches no known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Classify([]byte(tt.line), tt.arrival)
			if r.Kind != tt.kind {
				t.Fatalf("Classify(%q) kind = %v (%+v), want %v", tt.line, r.Kind, r, tt.kind)
			}
			switch tt.kind {
			case KindSubject:
				if r.Subject != tt.subject {
					t.Errorf("subject = %v, want %v", r.Subject, tt.subject)
				}
			case KindSeal:
				if r.Seal != tt.seal {
					t.Errorf("seal = %q, want %q", r.Seal, tt.seal)
				}
			case KindInvalid:
				if !strings.Contains(r.Problem, tt.problem) {
					t.Errorf("problem = %q, want it to contain %q", r.Problem, tt.problem)
				}
			}
			if tt.code != "" && r.Code != tt.code {
				t.Errorf("code = %q, want %q", r.Code, tt.code)
			}
		})
	}
}

func TestNew(t *testing.T) {
	_, err := New([]string{`^LP\d{14}$`, `^(LP`}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `parcel pattern 1 "^(LP"`) {
		t.Errorf("bad parcel pattern: err = %v", err)
	}
	_, err = New(nil, []string{`[`}, nil)
	if err == nil || !strings.Contains(err.Error(), `transit pattern 0 "["`) {
		t.Errorf("bad transit pattern: err = %v", err)
	}
	_, err = New(nil, nil, []string{`a**`})
	if err == nil || !strings.Contains(err.Error(), `seal pattern 0`) {
		t.Errorf("bad seal pattern: err = %v", err)
	}
	// Patterns are anchored.
	c, err := New([]string{`LP\d{2}`}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Classify([]byte("XLP12"), false); r.Kind != KindInvalid {
		t.Errorf("unanchored pattern matched part of a code: %+v", r)
	}
	// A pattern that lets through characters a subject id cannot hold.
	c, err = New(nil, []string{`T-\d+`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Classify([]byte("T-12"), false); r.Kind != KindInvalid || !strings.Contains(r.Problem, "transit pattern") {
		t.Errorf("id with '-' from a transit pattern: %+v", r)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		kind    customs.Kind
		in      string
		want    string // "" : error expected
		problem string
	}{
		{customs.AWB, "784-12345675", "78412345675", ""},
		{customs.AWB, " 784 12345675 ", "78412345675", ""},
		{customs.AWB, "784-12345674", "", "check digit: expected 5, got 4"},
		{customs.AWB, "RR123456785CN", "", "not a awb identifier"},
		{customs.Parcel, "rr123456785cn", "RR123456785CN", ""},
		{customs.Parcel, "RR123456784CN", "", "check digit"},
		{customs.Parcel, "LP00123456789012", "LP00123456789012", ""},
		{customs.Parcel, "LP-1", "", "not a parcel identifier"},
		{customs.Bag, "(00)106141411234567897", "106141411234567897", ""},
		{customs.Bag, "106141411234567896", "", "SSCC check digit"},
		{customs.Bag, "CNPVGAFRCDGAAUN60001001001010", "CNPVGAFRCDGAAUN60001001001010", ""},
		{customs.Bag, "AKE12345MU", "", "not a bag identifier"},
		{customs.ULD, "ake12345mu", "AKE12345MU", ""},
		{customs.ULD, "AKE12", "", "not a uld"},
		{customs.Transit, "TR2026000123", "TR2026000123", ""},
		{customs.Transit, "", "", "not a transit"},
		{customs.Transit, "TR\x00", "", "byte 0x00"},
		{"box", "X", "", "unknown"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+" "+tt.in, func(t *testing.T) {
			got, err := Normalize(tt.kind, tt.in)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("Normalize(%s, %q) = %v, %v; want error with %q", tt.kind, tt.in, got, err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != (customs.Subject{Kind: tt.kind, ID: tt.want}) {
				t.Errorf("Normalize(%s, %q) = %v, want %s", tt.kind, tt.in, got, tt.want)
			}
		})
	}
	// The site's patterns are used by the method.
	c := testClassifier(t)
	if _, err := c.Normalize(customs.Transit, "XYZ"); err == nil {
		t.Error("Classifier.Normalize accepted a transit id matching no transit pattern")
	}
	if s, err := c.Normalize(customs.Parcel, "78412345674"); err != nil || s.ID != "78412345674" {
		t.Errorf("Classifier.Normalize carrier parcel: %v, %v", s, err)
	}
}

func TestGS1Check(t *testing.T) {
	if got := gs1Check("10614141123456789"); got != '7' {
		t.Errorf("gs1Check = %c, want 7", got)
	}
}
