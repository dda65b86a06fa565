package store

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// orderJSON appends to prefix json.Marshal(o), the bytes the seq log keeps
// for an order, written without reflection where every string of the
// order is plain (printable ASCII that json.Marshal writes as it is);
// json.Marshal writes the others. FuzzOrderJSON checks the two give the
// same bytes.
func orderJSON(prefix []byte, o *customs.Order) ([]byte, error) {
	b := make([]byte, len(prefix), len(prefix)+256)
	copy(b, prefix)
	if b, ok := appendOrder(b, o); ok {
		return b, nil
	}
	j, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	return append(b[:len(prefix)], j...), nil
}

// appendOrder appends o as json.Marshal writes it, field by field in the
// struct's order with its omitempty and omitzero; false: a string that is
// not plain, or a time json.Marshal refuses.
func appendOrder(b []byte, o *customs.Order) ([]byte, bool) {
	ok := true
	str := func(name, v string, omitEmpty bool) {
		if !ok || (omitEmpty && v == "") {
			return
		}
		b = append(b, name...)
		b, ok = appendPlain(b, v)
	}
	tm := func(name string, t time.Time) {
		if !ok || t.IsZero() {
			return
		}
		b = append(b, name...)
		n := len(b)
		// RFC 3339 with nanoseconds, as MarshalJSON writes it; in UTC with
		// a four-digit year without its checks, else by MarshalJSON.
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		if len(b) > n+6 && b[n+5] == '-' && b[len(b)-1] == 'Z' {
			b = append(b, '"')
			return
		}
		v, err := t.MarshalJSON()
		if err != nil {
			ok = false
			return
		}
		b = append(b[:n], v...)
	}
	subject := func(s customs.Subject) {
		str(`{"kind":`, string(s.Kind), false)
		str(`,"id":`, s.ID, false)
		b = append(b, '}')
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, o.Seq, 10)
	str(`,"action":`, string(o.Action), false)
	b = append(b, `,"subject":`...)
	subject(o.Subject)
	tm(`,"issued_at":`, o.IssuedAt)
	tm(`,"expires_at":`, o.ExpiresAt)
	str(`,"hold_id":`, o.HoldID, true)
	str(`,"reason":`, o.Reason, true)
	if len(o.Children) > 0 {
		b = append(b, `,"children":[`...)
		for i, c := range o.Children {
			if i > 0 {
				b = append(b, ',')
			}
			subject(c)
		}
		b = append(b, ']')
	}
	if len(o.Seals) > 0 {
		b = append(b, `,"seals":[`...)
		for i, s := range o.Seals {
			if i > 0 {
				b = append(b, ',')
			}
			str("", s, false)
		}
		b = append(b, ']')
	}
	str(`,"office":`, o.Office, true)
	str(`,"ref":`, o.Ref, true)
	str(`,"note":`, o.Note, true)
	str(`,"reason_text":`, o.ReasonText, true)
	b = append(b, '}')
	return b, ok
}

// appendPlain appends s quoted if every byte is printable ASCII that
// json.Marshal does not escape (it escapes ", \, <, > and &).
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
