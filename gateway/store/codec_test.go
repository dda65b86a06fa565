package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

func TestCodecRoundTrip(t *testing.T) {
	states := []*rules.State{
		{},
		{RelSeq: 1, RelFlag: rules.RelRelease, LastSeq: 1},
		{RelSeq: 1 << 40, RelFlag: rules.RelRelease, ExpiresAt: now.Add(123456789 * time.Nanosecond), LastSeq: 1<<40 + 7},
		{RelSeq: 3, RelFlag: rules.RelRevoke, CancelSeq: 2, LastSeq: 9, Children: 10000},
		{RelSeq: 4, RelFlag: rules.RelRelease, ExpiresAt: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), LastSeq: 4},
		{LastSeq: 30, Holds: []rules.HoldSlot{
			{ID: "H1", Seq: 5, Active: true, Reason: "inspection"},
			{ID: "H2", Seq: 6, Active: false, Reason: "do_not_load"},
			{ID: "H3", Seq: 7, Active: true, Reason: "detention"},
			{ID: "H4", Seq: 8, Active: true, Reason: "information"},
			{ID: "HOLD-5-LONG-ID-0123456789", Seq: 9, Active: true, Reason: "other"},
			{ID: "H6", Seq: 10, Active: false, Reason: ""},
		}},
		{LastSeq: 31, Holds: []rules.HoldSlot{
			{ID: "H1", Seq: 5, Active: true, Reason: "inspection"},
			{ID: "H2", Seq: 31, Active: true, Reason: "other", Text: "x-ray 查验"},
		}},
		{SealSeq: 12, Seals: []string{"SH-000123", "SH-000124"}, LastSeq: 12, Children: 120},
		{SealSeq: 1, Seals: make([]string, customs.MaxSeals), LastSeq: 1},
	}
	for i, st := range states {
		b := encodeState(st)
		got, err := decodeState(b)
		if err != nil {
			t.Fatalf("state %d: decode: %v", i, err)
		}
		if !statesEqual(got, st) {
			t.Fatalf("state %d: round trip\n got %+v\nwant %+v", i, got, st)
		}
		for n := 0; n < len(b); n++ {
			if got, err := decodeState(b[:n]); err == nil {
				t.Fatalf("state %d: decode of %d of %d bytes: no error, %+v", i, n, len(b), got)
			}
		}
	}
	for _, l := range []rules.LinkState{{}, {Seq: 1, Linked: true}, {Seq: 1 << 50}} {
		b := encodeLink(l)
		got, err := decodeLink(b)
		if err != nil || got != l {
			t.Fatalf("link %+v: %+v, %v", l, got, err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := decodeLink(b[:n]); err == nil {
				t.Fatalf("link %+v: decode of %d bytes: no error", l, n)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0}, {2}, {stateVersion, 0, 0xff}} {
		if _, err := decodeState(bad); err == nil {
			t.Errorf("decodeState(%x): no error", bad)
		}
	}
}

// TestCodecExpiryInstant: every expiry instant survives the codec, the Unix
// epoch and dates outside int64 nanoseconds (before 1678, after 2262)
// included; a release whose expires_at is set must never come back as one
// without expiry.
func TestCodecExpiryInstant(t *testing.T) {
	for _, exp := range []time.Time{
		time.Unix(0, 0).UTC(),
		time.Unix(0, 1).UTC(),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		st := &rules.State{RelSeq: 1, RelFlag: rules.RelRelease, ExpiresAt: exp, LastSeq: 1}
		got, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatalf("%v: %v", exp, err)
		}
		if !got.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at %v came back as %v (zero: %v)", exp, got.ExpiresAt, got.ExpiresAt.IsZero())
		}
	}
}

func statesEqual(a, b *rules.State) bool {
	if !a.ExpiresAt.Equal(b.ExpiresAt) {
		return false
	}
	x, y := *a, *b
	x.ExpiresAt, y.ExpiresAt = time.Time{}, time.Time{}
	if len(x.Holds) == 0 && len(y.Holds) == 0 {
		x.Holds, y.Holds = nil, nil
	}
	if len(x.Seals) == 0 && len(y.Seals) == 0 {
		x.Seals, y.Seals = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

// FuzzDecodeState: decodeState never panics on any bytes, and what it
// accepts encodes and decodes again to the same state.
func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(&rules.State{RelSeq: 7, RelFlag: rules.RelRelease, ExpiresAt: now, LastSeq: 9,
		Holds: []rules.HoldSlot{{ID: "H1", Seq: 8, Active: true, Reason: "inspection"}}}))
	f.Add(encodeState(&rules.State{SealSeq: 3, Seals: []string{"SH-1"}, Children: 2, CancelSeq: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			if st != nil {
				t.Fatalf("error %v with a state %+v", err, st)
			}
			return
		}
		again, err := decodeState(encodeState(st))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !statesEqual(again, st) {
			t.Fatalf("re-encode changed the state:\n%+v\n%+v", again, st)
		}
	})
}
