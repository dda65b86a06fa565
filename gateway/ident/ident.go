// Package ident turns a scanner line into what it names (PROTOCOL.md §7): a
// customs subject (parcel, bag, uld, awb, transit), a seal id at arrival
// stations, or an invalid code with the reason in plain words. It is pure:
// no I/O, no clock, safe for concurrent use once built.
//
// # Order of checks
//
// Several forms can match the same text (an 11-digit AWB and a carrier
// pattern `^\d{11}$`, a ULD and a transit pattern). The first form that
// matches, and whose check digit (if any) is right, wins:
//
//  1. seal patterns (configured), at arrival stations only (§7, §9);
//  2. a GS1 element string holding AI 00 (after ]C1, ]d2 or ]Q3): bag;
//  3. awb (mod 7 check);
//  4. parcel, UPU S10 (mod 11 check);
//  5. bag, GS1 SSCC, with or without (00)/00 (mod 10 check);
//  6. bag, UPU S9 receptacle (fixed shape, no check);
//  7. uld (fixed shape, no check);
//  8. parcel, carrier patterns (configured, in configured order);
//  9. transit patterns (configured, in configured order).
//
// Check-digit-bearing forms come first because they prove themselves; the
// protocol's fixed shapes come before the site's patterns so that a pattern
// can add forms but never redefine one of the protocol's. A code shaped like
// a check-digit form whose check fails goes on to the later forms (a carrier
// may use 11-digit waybills); if none matches, the failed check is the
// reported problem. Configured patterns must match the whole code: they are
// anchored whether or not they are written with ^ and $.
package ident

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cargogate/cargogate/gateway/customs"
)

// MaxLine is the longest scanner line classified at all (§7); a longer one is
// invalid as it stands.
const MaxLine = 512

// ResultKind says what a scanner line turned out to be.
type ResultKind int

// Result kinds.
const (
	// KindInvalid: the line names nothing valid (invalid_code, STOP).
	KindInvalid ResultKind = iota
	// KindSubject: Result.Subject is a normalized, valid subject.
	KindSubject
	// KindSeal: Result.Seal is a seal id (arrival stations only).
	KindSeal
)

func (k ResultKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindSubject:
		return "subject"
	case KindSeal:
		return "seal"
	}
	return "ResultKind(" + strconv.Itoa(int(k)) + ")"
}

// Result is the classification of one scanner line.
type Result struct {
	// Code is the line as received without its terminator and STX/ETX
	// framing, AIM prefix kept, for the event's "code" field. Bytes outside
	// printable ASCII are shown as \xHH and a backslash as \\, so Code is
	// always printable; an overlong line is cut short and ends in "...".
	Code string
	// Subject is valid when Kind == KindSubject.
	Subject customs.Subject
	// Seal is valid when Kind == KindSeal.
	Seal string
	Kind ResultKind
	// Problem says, for KindInvalid, why in plain words for floor staff.
	Problem string
}

// Classifier classifies scanner lines with a site's configured patterns.
// Build it with New; it is immutable and safe for concurrent use.
type Classifier struct {
	forms []form // in the order of the package comment, seals excluded
	seals []*regexp.Regexp
}

// form is one way of reading a code. match reports the normalized id when s
// has the form and passes its check; problem non-empty when s has the shape
// but fails its check or cannot be an id.
type form struct {
	kind  customs.Kind
	match func(s string) (id string, ok bool, problem string)
}

// New compiles the site's patterns (config identifiers.parcel_patterns,
// transit_patterns, seal_patterns). The error names the bad pattern.
func New(parcel, transit, seal []string) (*Classifier, error) {
	c := &Classifier{}
	c.forms = append(c.forms,
		form{customs.AWB, matchAWB},
		form{customs.Parcel, matchS10},
		form{customs.Bag, matchSSCC},
		form{customs.Bag, matchS9},
		form{customs.ULD, matchULD},
	)
	for i, p := range parcel {
		re, err := compile(p)
		if err != nil {
			return nil, fmt.Errorf("parcel pattern %d %q: %w", i, p, err)
		}
		c.forms = append(c.forms, form{customs.Parcel, patternMatcher(re, "parcel")})
	}
	for i, p := range transit {
		re, err := compile(p)
		if err != nil {
			return nil, fmt.Errorf("transit pattern %d %q: %w", i, p, err)
		}
		c.forms = append(c.forms, form{customs.Transit, patternMatcher(re, "transit")})
	}
	for i, p := range seal {
		re, err := compile(p)
		if err != nil {
			return nil, fmt.Errorf("seal pattern %d %q: %w", i, p, err)
		}
		c.seals = append(c.seals, re)
	}
	return c, nil
}

// compile checks p as written (so the error shows the site's text), then
// anchors it so it must match the whole code.
func compile(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

const (
	gs  = 0x1D
	stx = 0x02
	etx = 0x03
)

// Classify reads one scanner line. arrival is true at arrival stations, where
// seal patterns are tried first. It never fails: a line that names nothing
// valid is KindInvalid with a Problem.
func (c *Classifier) Classify(line []byte, arrival bool) Result {
	if len(line) > MaxLine {
		return Result{
			Code:    printable(line[:64]) + "...",
			Kind:    KindInvalid,
			Problem: fmt.Sprintf("code too long: %d bytes, at most %d", len(line), MaxLine),
		}
	}
	raw := unframe(line)
	r := Result{Code: printable(raw), Kind: KindInvalid}

	s := strings.TrimLeft(string(raw), " ")
	gs1 := false
	if len(s) >= 3 && s[0] == ']' {
		switch s[1:3] {
		case "C1", "d2", "Q3":
			gs1 = true
		}
		s = s[3:]
	}
	s = strings.Trim(s, " ")
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == gs && gs1:
		case b < 0x20 || b == 0x7F:
			r.Problem = fmt.Sprintf("control byte 0x%02X in the code", b)
			return r
		case b >= 0x80:
			r.Problem = fmt.Sprintf("non-ASCII byte 0x%02X in the code", b)
			return r
		}
	}
	if s == "" {
		r.Problem = "empty code"
		return r
	}
	s = upper(s)

	if arrival {
		for _, re := range c.seals {
			if re.MatchString(s) {
				if !sealRE.MatchString(s) {
					r.Problem = "matches a seal pattern but a seal id is 1 to 32 of A-Z, 0-9 and -"
					return r
				}
				r.Kind, r.Seal = KindSeal, s
				return r
			}
		}
	}

	if gs1 {
		id, found, problem := gs1SSCC(s)
		switch {
		case found && problem == "":
			r.Kind, r.Subject = KindSubject, customs.Subject{Kind: customs.Bag, ID: id}
			return r
		case strings.IndexByte(s, gs) >= 0:
			// Only a GS1 element string may hold GS; it must hold an SSCC.
			if problem == "" {
				problem = "GS1 element string holds no SSCC (AI 00)"
			}
			r.Problem = problem
			return r
		case found:
			r.Problem = problem
			return r
		}
		// A GS1-flagged symbol without GS and without AI 00: read it as
		// plain text below.
	}

	sub, problem := c.classify(s, "")
	if problem != "" {
		r.Problem = problem
		return r
	}
	r.Kind, r.Subject = KindSubject, sub
	return r
}

// classify tries the forms in order on a cleaned, upper-case s; only forms of
// kind only, if only is not empty.
func (c *Classifier) classify(s string, only customs.Kind) (customs.Subject, string) {
	first := ""
	for _, f := range c.forms {
		if only != "" && f.kind != only {
			continue
		}
		id, ok, problem := f.match(s)
		if ok {
			return customs.Subject{Kind: f.kind, ID: id}, ""
		}
		if first == "" {
			first = problem
		}
	}
	if first == "" {
		if only != "" {
			first = "not a " + string(only) + " identifier"
		} else {
			first = "matches no known identifier form"
		}
	}
	return customs.Subject{}, first
}

// Normalize validates id as an identifier of kind, as typed into a lookup
// box, with the site's patterns: surrounding spaces trimmed, upper-cased,
// an AWB's "-" or space and an SSCC's (00) removed. It accepts exactly what
// Classify would read as that kind.
func (c *Classifier) Normalize(kind customs.Kind, id string) (customs.Subject, error) {
	if !kind.Valid() {
		return customs.Subject{}, fmt.Errorf("kind %q: unknown", kind)
	}
	s := strings.Trim(id, " ")
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7F {
			return customs.Subject{}, fmt.Errorf("%s %q: byte 0x%02X not allowed", kind, id, b)
		}
	}
	sub, problem := c.classify(upper(s), kind)
	if problem != "" {
		return customs.Subject{}, fmt.Errorf("%s %q: %s", kind, id, problem)
	}
	return sub, nil
}

// generic has the protocol's fixed forms and, for parcel and transit, any
// well-formed id in place of the site's patterns.
var generic = func() *Classifier {
	c, err := New([]string{`[A-Z0-9]{1,64}`}, []string{`[A-Z0-9]{1,64}`}, nil)
	if err != nil {
		panic(err)
	}
	return c
}()

// Normalize validates id as an identifier of kind without the site's
// patterns, for tools that have no configuration: awb, uld and bag ids must
// have their protocol form and check digit, and so must a parcel shaped like
// UPU S10; other parcel ids and transit ids need only be 1 to 64 of A-Z and
// 0-9. Classifier.Normalize is stricter and should be preferred.
func Normalize(kind customs.Kind, id string) (customs.Subject, error) {
	sub, err := generic.Normalize(kind, id)
	if err != nil {
		return sub, err
	}
	if sub.Kind == customs.Parcel {
		if _, ok, problem := matchS10(sub.ID); !ok && problem != "" {
			return customs.Subject{}, fmt.Errorf("%s %q: %s", kind, id, problem)
		}
	}
	return sub, nil
}

// unframe strips the terminator (CR, LF, CRLF) and STX/ETX framing.
func unframe(b []byte) []byte {
	b = trimEOL(b)
	if len(b) > 0 && b[0] == stx {
		b = b[1:]
	}
	if len(b) > 0 && b[len(b)-1] == etx {
		b = b[:len(b)-1]
	}
	return trimEOL(b)
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// printable shows b as printable ASCII: other bytes as \xHH, "\" as \\.
func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c >= 0x20 && c < 0x7F:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02X`, c)
		}
	}
	return sb.String()
}

// upper upper-cases ASCII letters; s is ASCII.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

var (
	awbRE  = regexp.MustCompile(`^([0-9]{3})[- ]?([0-9]{8})$`)
	s10RE  = regexp.MustCompile(`^[A-Z]{2}[0-9]{8}[0-9][A-Z]{2}$`)
	ssccRE = regexp.MustCompile(`^(?:\(00\)|00)?([0-9]{18})$`)
	s9RE   = regexp.MustCompile(`^[A-Z]{15}[0-9]{14}$`)
	uldRE  = regexp.MustCompile(`^[A-Z]{3}[0-9]{4,5}[A-Z0-9]{2}$`)
	idRE   = regexp.MustCompile(`^[A-Z0-9]{1,64}$`)
	sealRE = regexp.MustCompile(`^[A-Z0-9-]{1,32}$`)
)

func checkProblem(what string, want, got byte) string {
	return fmt.Sprintf("%s check digit: expected %c, got %c", what, want, got)
}

// matchAWB: 3-digit prefix, 7-digit serial, check digit = serial mod 7.
func matchAWB(s string) (string, bool, string) {
	m := awbRE.FindStringSubmatch(s)
	if m == nil {
		return "", false, ""
	}
	id := m[1] + m[2]
	serial, _ := strconv.Atoi(id[3:10])
	want := byte('0' + serial%7)
	if id[10] != want {
		return "", false, checkProblem("air waybill", want, id[10])
	}
	return id, true, ""
}

var s10Weights = [8]int{8, 6, 4, 2, 3, 5, 9, 7}

// matchS10: UPU S10, weights 8 6 4 2 3 5 9 7, c = 11 − sum mod 11.
func matchS10(s string) (string, bool, string) {
	if !s10RE.MatchString(s) {
		return "", false, ""
	}
	sum := 0
	for i, w := range s10Weights {
		sum += int(s[2+i]-'0') * w
	}
	c := 11 - sum%11
	switch c {
	case 10:
		c = 0
	case 11:
		c = 5
	}
	want := byte('0' + c)
	if s[10] != want {
		return "", false, checkProblem("parcel (UPU S10)", want, s[10])
	}
	return s, true, ""
}

// gs1Check is the GS1 mod 10 check digit of the digits body.
func gs1Check(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// sscc checks an 18-digit SSCC.
func sscc(d string) (string, bool, string) {
	if want := gs1Check(d[:17]); d[17] != want {
		return "", false, checkProblem("SSCC", want, d[17])
	}
	return d, true, ""
}

func matchSSCC(s string) (string, bool, string) {
	m := ssccRE.FindStringSubmatch(s)
	if m == nil {
		return "", false, ""
	}
	return sscc(m[1])
}

func matchS9(s string) (string, bool, string) {
	if !s9RE.MatchString(s) {
		return "", false, ""
	}
	return s, true, ""
}

func matchULD(s string) (string, bool, string) {
	if !uldRE.MatchString(s) {
		return "", false, ""
	}
	return s, true, ""
}

func patternMatcher(re *regexp.Regexp, what string) func(string) (string, bool, string) {
	return func(s string) (string, bool, string) {
		if !re.MatchString(s) {
			return "", false, ""
		}
		if !idRE.MatchString(s) {
			return "", false, "matches a " + what + " pattern but an id is 1 to 64 of A-Z and 0-9"
		}
		return s, true, ""
	}
}

// gs1Fixed is the total length (AI included) of the GS1 element strings of
// predefined length, by the first two digits of the AI (GS1 General
// Specifications, figure 7.8.5-1). Those need no GS after them.
var gs1Fixed = map[string]int{
	"00": 20, "01": 16, "02": 16, "03": 16, "04": 18,
	"11": 8, "12": 8, "13": 8, "14": 8, "15": 8, "16": 8, "17": 8, "18": 8, "19": 8,
	"20": 4,
	"31": 10, "32": 10, "33": 10, "34": 10, "35": 10, "36": 10,
	"41": 16,
}

// gs1SSCC finds the SSCC (AI 00) in GS1 element strings separated by GS.
// found reports an AI 00 element; problem is non-empty when the elements
// cannot be read, or the SSCC fails its check, or two differ.
func gs1SSCC(s string) (id string, found bool, problem string) {
	for _, seg := range strings.Split(s, string(rune(gs))) {
		for p := 0; p < len(seg); {
			if p+2 > len(seg) || !digits(seg[p:p+2]) {
				return id, found, "GS1 element string: no application identifier at " + strconv.Quote(seg[p:])
			}
			ai := seg[p : p+2]
			n, fixed := gs1Fixed[ai]
			if !fixed {
				break // variable length: runs to the next GS
			}
			if p+n > len(seg) {
				return id, found, fmt.Sprintf("GS1 element string: AI %s too short", ai)
			}
			if ai == "00" {
				d := seg[p+2 : p+n]
				if !digits(d) {
					return id, found, "GS1 element string: SSCC (AI 00) is not 18 digits"
				}
				if _, ok, problem := sscc(d); !ok {
					return id, true, problem
				}
				if found && d != id {
					return id, true, "GS1 element string holds two different SSCCs"
				}
				id, found = d, true
			}
			p += n
		}
	}
	return id, found, ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
