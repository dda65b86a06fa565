package station_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
)

// releasedAt passes one parcel and records the times it was asked at.
type releasedAt struct {
	id  string
	ats []time.Time
}

func (d *releasedAt) Decide(s customs.Subject, now time.Time) rules.Decision {
	d.ats = append(d.ats, now)
	if s.Kind == customs.Parcel && s.ID == d.id {
		return rules.Decision{Pass: true, Reason: customs.ReasonReleased, BasisSeq: 4}
	}
	return rules.Decision{Reason: customs.ReasonUnknown}
}

// Inspect classifies and decides as the scan path does: a subject is
// decided at the time given, anything else is STOP invalid_code with the
// classifier's problem, and a seal (never decided) is an invalid code.
func TestInspect(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		code    string
		kind    ident.ResultKind
		pass    bool
		reason  string
		problem bool
	}{
		{bag1, ident.KindSubject, true, customs.ReasonReleased, false},
		{"LP00000000000002", ident.KindSubject, false, customs.ReasonUnknown, false},
		{tr1, ident.KindSubject, false, customs.ReasonUnknown, false},
		{"nonsense", ident.KindInvalid, false, customs.ReasonInvalidCode, true},
		{"SH-123456", ident.KindInvalid, false, customs.ReasonInvalidCode, true},
	} {
		d := &releasedAt{id: bag1}
		v := station.Inspect(classifier(t), d, tc.code, at)
		if v.Kind != tc.kind || v.Decision.Pass != tc.pass || v.Decision.Reason != tc.reason || (v.Problem != "") != tc.problem {
			t.Errorf("%s: %+v", tc.code, v)
		}
		if v.Code != tc.code {
			t.Errorf("%s: code %q", tc.code, v.Code)
		}
		if (v.Subject != nil) != (tc.kind == ident.KindSubject) {
			t.Errorf("%s: subject %v", tc.code, v.Subject)
		}
		if tc.kind == ident.KindSubject && (len(d.ats) != 1 || !d.ats[0].Equal(at)) {
			t.Errorf("%s: decided at %v, want once at %v", tc.code, d.ats, at)
		}
		if tc.kind != ident.KindSubject && len(d.ats) != 0 {
			t.Errorf("%s: decided an invalid code", tc.code)
		}
	}
}

// Inspect and a station's scan agree on every code: one path.
func TestInspectAgreesWithScan(t *testing.T) {
	st := station.New(station.Config{ID: "gate-1", Role: "gate", Classifier: classifier(t)},
		&releasedAt{id: bag1}, memJournal{}, nil, wallClock{}, nil, slog.New(slog.DiscardHandler))
	for _, code := range []string{bag1, "LP00000000000002", tr2, "nonsense", "SH-123456", ""} {
		out := scan(st, code)
		v := station.Inspect(classifier(t), &releasedAt{id: bag1}, code, time.Now())
		if out.Code != v.Code || out.Pass != v.Decision.Pass || out.Reason != v.Decision.Reason || out.Problem != v.Problem ||
			(out.Subject == nil) != (v.Subject == nil) || (out.Subject != nil && *out.Subject != *v.Subject) {
			t.Errorf("%q: scan %+v, inspect %+v", code, out, v)
		}
	}
}
