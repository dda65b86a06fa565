package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rel := customs.Order{Seq: 1, Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: "RR123456785CN"}}
	if _, err := s.Apply(Batch{Orders: []customs.Order{rel}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	setSchema := func(v []byte) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error {
			if v == nil {
				return tx.Bucket(bMeta).Delete(kSchema)
			}
			return tx.Bucket(bMeta).Put(kSchema, v)
		})
		db.Close()
	}

	// A store from before versioning is migrated once, its data intact.
	setSchema(nil)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("legacy store: %v", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if v := schemaOf(tx); v != SchemaVersion {
			t.Errorf("schema after migration %d, want %d", v, SchemaVersion)
		}
		return nil
	})
	if p, _ := s.Progress(); p.Watermark != 1 {
		t.Errorf("watermark after migration %d", p.Watermark)
	}
	s.Close()

	// A newer store is refused, read-only too, with a clear message.
	setSchema(u64(SchemaVersion + 1))
	for _, ro := range []bool{false, true} {
		_, err = Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("read-only %v: newer store opened: %v", ro, err)
		}
	}
	t.Logf("refused with: %v", err)
}

func TestPrune(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "orders.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-40 * 24 * time.Hour)
	P := func(id string) customs.Subject { return customs.Subject{Kind: customs.Parcel, ID: id} }
	bag := customs.Subject{Kind: customs.Bag, ID: "106141411234567897"}
	gone, kept := P("RR000000001CN"), P("RR000000002CN")
	orders := []customs.Order{
		{Seq: 1, Action: customs.Hold, Subject: gone, HoldID: "H0", Reason: "inspection", IssuedAt: old},
		{Seq: 2, Action: customs.Unhold, Subject: gone, HoldID: "H0", IssuedAt: old},
		{Seq: 3, Action: customs.Link, Subject: bag, Children: []customs.Subject{gone}, IssuedAt: old},
		{Seq: 4, Action: customs.Unlink, Subject: bag, Children: []customs.Subject{gone}, IssuedAt: old},
		// An old release with no expiry is live: its subject stays.
		{Seq: 5, Action: customs.Release, Subject: P("RR000000003CN"), IssuedAt: old},
		{Seq: 6, Action: customs.Release, Subject: kept, IssuedAt: now},
		{Seq: 7, Action: customs.Hold, Subject: bag, HoldID: "H1", Reason: "inspection", IssuedAt: now},
	}
	if _, err := s.Apply(Batch{Orders: orders, Floor: now}); err != nil {
		t.Fatal(err)
	}
	total := PruneResult{}
	for i := 0; ; i++ {
		r, err := s.Prune(now, 30*24*time.Hour, 4) // tiny transactions, several calls
		if err != nil {
			t.Fatal(err)
		}
		total.Orders += r.Orders
		total.Subjects += r.Subjects
		if r.Done {
			break
		}
		if i > 100 {
			t.Fatal("prune never done")
		}
	}
	if total.Orders != 5 || total.Subjects != 1 {
		t.Fatalf("pruned %+v, want 5 orders and 1 subject", total)
	}
	if d := s.Decide(gone, now); d.Pass || d.Reason != customs.ReasonUnknown {
		t.Errorf("pruned parcel: %+v", d)
	}
	if d := s.Decide(kept, now); !d.Pass {
		t.Errorf("recent parcel: %+v", d)
	}
	// The bag stays (a recent hold), without the pruned parcel's old link.
	s.View(func(v rules.View) error {
		st, err := v.State(bag)
		if err != nil || st == nil || st.Children != 0 {
			t.Fatalf("bag after prune: %+v %v", st, err)
		}
		return nil
	})
	if st, _ := s.Stats(); st.Links != 0 {
		t.Errorf("%d link records left", st.Links)
	}
	if d := s.Decide(P("RR000000003CN"), now); !d.Pass {
		t.Errorf("old parcel with a live release: %+v", d)
	}
	// A replay of a pruned order is recognised as applied: the parcel's
	// lifted hold does not come back.
	res, err := s.Apply(Batch{Orders: orders[:1]})
	if err != nil || res.Applied != 0 || res.Duplicates != 1 {
		t.Fatalf("replay of a pruned order: %+v %v", res, err)
	}
	if d := s.Decide(gone, now); d.Reason != customs.ReasonUnknown {
		t.Errorf("a replayed old hold came back on a pruned parcel: %+v", d)
	}
	if p, _ := s.Progress(); p.Watermark != 7 {
		t.Errorf("watermark %d after prune", p.Watermark)
	}
}
