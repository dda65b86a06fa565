package station

import (
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Verdict is one line classified and, when it names a subject, decided.
type Verdict struct {
	Code     string
	Kind     ident.ResultKind
	Subject  *customs.Subject // nil unless Kind is ident.KindSubject
	Seal     string           // Kind ident.KindSeal: the seal (not decided)
	Problem  string           // why the code is invalid
	Decision rules.Decision   // STOP invalid_code for anything but a subject
}

// judge is the classify-and-decide step of the scan path, shared by
// Handle and Inspect: line is classified (seals recognised when seals is
// set, at arrival stations), a subject is decided with decide, and
// anything else is STOP invalid_code.
func judge(cls *ident.Classifier, line []byte, seals bool, decide func(customs.Subject) rules.Decision) Verdict {
	res := cls.Classify(line, seals)
	v := Verdict{Code: res.Code, Kind: res.Kind}
	switch res.Kind {
	case ident.KindSubject:
		sub := res.Subject
		v.Subject = &sub
		v.Decision = decide(sub)
	case ident.KindSeal:
		v.Seal = res.Seal
	default:
		v.Decision = rules.Decision{Reason: customs.ReasonInvalidCode}
		v.Problem = res.Problem
	}
	return v
}

// Inspect decides code from d at now as a station's scan path does, but
// tells no gate, journals nothing and never asks central: the lookup
// screen and `cargogate inspect` answer offline too. Seals are not
// recognised: a seal is an invalid code here.
func Inspect(cls *ident.Classifier, d Decider, code string, now time.Time) Verdict {
	v := judge(cls, []byte(code), false, func(s customs.Subject) rules.Decision { return d.Decide(s, now) })
	if v.Subject == nil && v.Decision.Reason == "" {
		v.Decision = rules.Decision{Reason: customs.ReasonInvalidCode} // fail closed, whatever the kind
	}
	return v
}
