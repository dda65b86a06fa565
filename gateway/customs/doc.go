package customs

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AnyDoc has the fields of every document the order path takes (orders,
// head, replay_done), each under the same name and type as in its own
// document, so a payload that decodes into AnyDoc decodes the same way into
// its own type.
type AnyDoc struct {
	Type      string    `json:"type"`
	Site      string    `json:"site"`
	RequestID string    `json:"request_id"`
	Orders    []Order   `json:"orders"`
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	UpTo      uint64    `json:"up_to"`
}

// ReadDoc decodes payload into *d without reflection, for the documents
// central sends as it sends them. It reports true only where
// json.Unmarshal(payload, d) on a zero d gives no error and the same *d;
// it reports false (and leaves *d zero) for anything it does not read
// itself: a key it does not know or spelt in another case, a key twice,
// null, a string with an escape, a control character or invalid UTF-8, a
// number that is not a plain uint64, a value of another type, a syntax
// error. The caller then decodes with json.Unmarshal, which decides what
// is accepted (FuzzReadDoc checks the two against each other).
func ReadDoc(payload []byte, d *AnyDoc) bool {
	s := docScanner{b: payload}
	if !s.doc(d) {
		*d = AnyDoc{}
		return false
	}
	return true
}

// docScanner reads a JSON text front to back; every method returns false
// as soon as something is not what the fast path reads.
type docScanner struct {
	b []byte
	i int
}

func (s *docScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and takes c if it is next.
func (s *docScanner) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, calling field for each key with the
// scanner at its value; field reads the value. Keys must be distinct
// (seen is over field's indexes, returned by field as bit numbers).
func (s *docScanner) object(field func(key []byte) (bit int, ok bool)) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen uint32
	for {
		s.ws()
		key, ok := s.raw()
		if !ok || !s.next(':') {
			return false
		}
		s.ws()
		bit, ok := field(key)
		if !ok || seen&(1<<bit) != 0 {
			return false
		}
		seen |= 1 << bit
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}

// array reads [value, ...], calling elem for each value.
func (s *docScanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		s.ws()
		if !elem() {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next(']')
	}
}

// raw reads a string with no escape, no control character and valid
// UTF-8, and returns its bytes (without the quotes).
func (s *docScanner) raw() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *docScanner) str(dst *string) bool {
	v, ok := s.raw()
	if ok {
		*dst = string(v)
	}
	return ok
}

// uint reads a number that is a plain unsigned integer (no sign, fraction
// or exponent, no leading zero) within uint64.
func (s *docScanner) uint(dst *uint64) bool {
	j := s.i
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == s.i || (s.b[s.i] == '0' && j > s.i+1) {
		return false
	}
	if j < len(s.b) {
		switch s.b[j] {
		case '.', 'e', 'E':
			return false
		}
	}
	n, err := strconv.ParseUint(string(s.b[s.i:j]), 10, 64)
	if err != nil {
		return false
	}
	*dst, s.i = n, j
	return true
}

// time reads a string as time.Time's UnmarshalJSON does (json.Unmarshal
// hands it the literal, quotes included).
func (s *docScanner) time(dst *time.Time) bool {
	start := s.i
	if _, ok := s.raw(); !ok {
		return false
	}
	return dst.UnmarshalJSON(s.b[start:s.i]) == nil
}

func (s *docScanner) doc(d *AnyDoc) bool {
	if !s.object(func(key []byte) (int, bool) {
		switch string(key) {
		case "type":
			v, ok := s.raw()
			d.Type = intern(v, TypeOrders, TypeHead, TypeReplayDone)
			return 0, ok
		case "site":
			return 1, s.str(&d.Site)
		case "request_id":
			return 2, s.str(&d.RequestID)
		case "orders":
			return 3, s.orders(d)
		case "seq":
			return 4, s.uint(&d.Seq)
		case "at":
			return 5, s.time(&d.At)
		case "up_to":
			return 6, s.uint(&d.UpTo)
		}
		return 0, false
	}) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

func (s *docScanner) orders(d *AnyDoc) bool {
	d.Orders = make([]Order, 0, 1)
	start := s.i
	return s.array(func() bool {
		d.Orders = append(d.Orders, Order{})
		if !s.order(&d.Orders[len(d.Orders)-1]) {
			return false
		}
		if len(d.Orders) == 1 {
			// Room for as many more as the rest of the payload holds at
			// the first one's size, so a large message is not copied
			// over and over as it grows.
			if per := s.i - start; per > 0 {
				more := min((len(s.b)-s.i)/per, MaxOrders)
				d.Orders = slices.Grow(d.Orders, more)
			}
		}
		return true
	})
}

func (s *docScanner) order(o *Order) bool {
	return s.object(func(key []byte) (int, bool) {
		switch string(key) {
		case "seq":
			return 0, s.uint(&o.Seq)
		case "action":
			v, ok := s.raw()
			o.Action = Action(intern(v, string(Release), string(Hold), string(Link), string(Revoke),
				string(Unhold), string(Cancel), string(Unlink), string(Seal)))
			return 1, ok
		case "subject":
			return 2, s.subject(&o.Subject)
		case "issued_at":
			return 3, s.time(&o.IssuedAt)
		case "expires_at":
			return 4, s.time(&o.ExpiresAt)
		case "hold_id":
			return 5, s.str(&o.HoldID)
		case "reason":
			return 6, s.str(&o.Reason)
		case "children":
			o.Children = make([]Subject, 0, 1)
			return 7, s.array(func() bool {
				o.Children = append(o.Children, Subject{})
				return s.subject(&o.Children[len(o.Children)-1])
			})
		case "seals":
			o.Seals = make([]string, 0, 1)
			return 8, s.array(func() bool {
				o.Seals = append(o.Seals, "")
				return s.str(&o.Seals[len(o.Seals)-1])
			})
		case "office":
			return 9, s.str(&o.Office)
		case "ref":
			return 10, s.str(&o.Ref)
		case "note":
			return 11, s.str(&o.Note)
		case "reason_text":
			return 12, s.str(&o.ReasonText)
		}
		return 0, false
	})
}

func (s *docScanner) subject(sub *Subject) bool {
	return s.object(func(key []byte) (int, bool) {
		switch string(key) {
		case "kind":
			v, ok := s.raw()
			sub.Kind = Kind(intern(v, string(Parcel), string(Bag), string(ULD), string(AWB), string(Transit)))
			return 0, ok
		case "id":
			return 1, s.str(&sub.ID)
		}
		return 0, false
	})
}

// intern returns the constant among known that equals v, without
// allocating, or a new string.
func intern(v []byte, known ...string) string {
	for _, k := range known {
		if string(v) == k {
			return k
		}
	}
	return string(v)
}

// shape is a pattern ^[class]{min,max}$ over ASCII classes (min 0 means
// 1), matched byte by byte.
type shape struct {
	min, max           int
	upper, digit, dash bool
}

// MatchString reports whether s has the shape.
func (p shape) MatchString(s string) bool {
	if len(s) < max(p.min, 1) || len(s) > p.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case p.upper && 'A' <= c && c <= 'Z', p.digit && '0' <= c && c <= '9', p.dash && c == '-':
		default:
			return false
		}
	}
	return true
}
