package arrival

import (
	"errors"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

type memState struct {
	m    map[string][]byte
	fail error // PutState fails with it
}

func (s *memState) GetState(name string) ([]byte, error) { return s.m[name], nil }

func (s *memState) PutState(name string, v []byte) error {
	if s.fail != nil {
		return s.fail
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	if v == nil {
		delete(s.m, name)
	} else {
		s.m[name] = v
	}
	return nil
}

type noContents struct{}

func (noContents) Transit(customs.Subject) ([]string, bool, []customs.Subject, error) {
	return nil, false, nil, nil
}

var tr = customs.Subject{Kind: customs.Transit, ID: "TR0000000001"}

func ids() func() string {
	n := 0
	return func() string { n++; return "ev-" + string(rune('0'+n)) }
}

// A closed transit's event stays pending, persisted, until Journalled; a
// tracker loaded meanwhile has it, under the same id.
func TestClosePendingUntilJournalled(t *testing.T) {
	st := &memState{}
	a, err := New("arr-1", 0, st, noContents{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := a.ScanTransit(tr, now, false, ids()); err != nil {
		t.Fatal(err)
	}
	ev, err := a.Close(now, true, ids())
	if err != nil || ev == nil {
		t.Fatalf("Close: %v, %v", ev, err)
	}
	if a.Current() != nil {
		t.Fatal("still open after Close")
	}
	b, err := New("arr-1", 0, st, noContents{})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.Pending(); len(p) != 1 || p[0].ID != ev.ID || p[0].Offline == nil || !*p[0].Offline {
		t.Fatalf("reloaded pending %+v, want the event %s", p, ev.ID)
	}
	if b.Current() != nil {
		t.Fatal("reloaded: open")
	}
	if err := b.Journalled(ev.ID); err != nil {
		t.Fatal(err)
	}
	if len(st.m) != 0 || len(b.Pending()) != 0 {
		t.Fatalf("after Journalled: state %q, pending %v", st.m, b.Pending())
	}
}

// If the write that closes the transit fails, the transit stays open and no
// event is returned.
func TestCloseWriteFails(t *testing.T) {
	st := &memState{}
	a, _ := New("arr-1", 0, st, noContents{})
	now := time.Now()
	if _, err := a.ScanTransit(tr, now, false, ids()); err != nil {
		t.Fatal(err)
	}
	st.fail = errors.New("disk full")
	if ev, err := a.Close(now, false, ids()); err == nil || ev != nil {
		t.Fatalf("Close with a failing disk: %v, %v", ev, err)
	}
	if a.Current() == nil || a.Current().Transit != tr || len(a.Pending()) != 0 {
		t.Fatalf("after a failed close: open %+v, pending %v", a.Current(), a.Pending())
	}
}

// A record written by the earlier version (the open transit alone) loads.
func TestLoadEarlierRecord(t *testing.T) {
	st := &memState{m: map[string][]byte{"arrival/arr-1": []byte(`{"transit":{"kind":"transit","id":"TR0000000001"},"opened_at":"2026-01-01T00:00:00Z","last_line":"2026-01-01T00:00:00Z","seals_seen":["SH-000001"],"counted":null}`)}}
	a, err := New("arr-1", 0, st, noContents{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Current() == nil || a.Current().Transit != tr || len(a.Current().Seals) != 1 {
		t.Fatalf("loaded %+v", a.Current())
	}
}
