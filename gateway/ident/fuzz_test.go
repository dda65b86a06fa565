package ident

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzClassify checks the invariants of Classify on any bytes: it never
// panics, Code is printable, a subject is always valid, and the normalized id
// read again gives the same subject (and so does Normalize).
func FuzzClassify(f *testing.F) {
	c := testClassifier(f)
	f.Fuzz(func(t *testing.T, line []byte, arrival bool) {
		r := c.Classify(line, arrival)
		for i := 0; i < len(r.Code); i++ {
			if r.Code[i] < 0x20 || r.Code[i] >= 0x7F {
				t.Fatalf("code %q holds byte 0x%02X", r.Code, r.Code[i])
			}
		}
		switch r.Kind {
		case KindSubject:
			if err := r.Subject.Validate(); err != nil {
				t.Fatalf("Classify(%q) = %v: %v", line, r.Subject, err)
			}
			again := c.Classify([]byte(r.Subject.ID), arrival)
			if again.Kind != KindSubject || again.Subject != r.Subject {
				t.Fatalf("Classify(%q) = %v, but its id reads as %+v", line, r.Subject, again)
			}
			n, err := c.Normalize(r.Subject.Kind, r.Subject.ID)
			if err != nil || n != r.Subject {
				t.Fatalf("Normalize(%v) = %v, %v", r.Subject, n, err)
			}
		case KindSeal:
			if !arrival {
				t.Fatalf("seal %q away from an arrival station", r.Seal)
			}
			if !sealRE.MatchString(r.Seal) {
				t.Fatalf("seal %q not a seal id", r.Seal)
			}
		case KindInvalid:
			if r.Problem == "" {
				t.Fatalf("Classify(%q): invalid without a problem", line)
			}
			if !utf8.ValidString(r.Problem) || strings.ContainsAny(r.Problem, "\r\n") {
				t.Fatalf("problem %q not one printable line", r.Problem)
			}
		default:
			t.Fatalf("kind %v", r.Kind)
		}
	})
}
