package journal_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/journal"
)

func TestOldestPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j, path := openTemp(t, journal.Options{})
		if _, ok, err := j.OldestPending(); ok || err != nil {
			t.Fatalf("empty journal: ok %v, %v", ok, err)
		}
		before := time.Now()
		appendN(t, j, 1, "a")
		mid := time.Now()
		time.Sleep(2 * time.Millisecond) // virtual: the clock moves between the two appends
		appendN(t, j, 2, "b")
		at, ok, err := j.OldestPending()
		if err != nil || !ok || at.Before(before) || at.After(mid) {
			t.Fatalf("oldest %v, %v, %v; want within [%v, %v]", at, ok, err, before, mid)
		}
		// After the first event is delivered, the oldest is the second one's
		// append time: never "now", never the first's.
		es, _ := j.Pending(1, 1<<20)
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		at2, ok, err := j.OldestPending()
		if err != nil || !ok || !at2.After(mid) || at2.After(time.Now()) {
			t.Fatalf("after delivery: oldest %v, %v, %v (first was %v)", at2, ok, err, at)
		}
		j.Close()
		// It is read from the file, so it survives a restart unchanged.
		j2, err := journal.Open(path, journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		run(t, j2)
		defer j2.Close()
		at3, ok, err := j2.OldestPending()
		if err != nil || !ok || !at3.Equal(at2) {
			t.Fatalf("after reopen: %v, %v, %v; want %v", at3, ok, err, at2)
		}
		es, _ = j2.Pending(10, 1<<20)
		if err := j2.Delivered(es); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := j2.OldestPending(); ok {
			t.Fatal("oldest reported with nothing pending")
		}
	})
}

func TestAlarmAndRefusals(t *testing.T) {
	cases := []struct {
		name string
		opts journal.Options
		n    int // events of 10 bytes appended before the alarm must be on
	}{
		{"events", journal.Options{MaxEvents: 10}, 8},
		{"bytes", journal.Options{MaxBytes: 100}, 8},
		{"custom percent", journal.Options{MaxEvents: 10, AlarmPercent: 50}, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, _ := openTemp(t, tc.opts)
			defer j.Close()
			for i := 0; i < tc.n-1; i++ {
				if _, err := j.Append(context.Background(), []byte("0123456789")); err != nil {
					t.Fatal(err)
				}
			}
			if h := j.Health(); h.Alarm {
				t.Fatalf("alarm at %d events: %+v", tc.n-1, h)
			}
			if _, err := j.Append(context.Background(), []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
			h := j.Health()
			if !h.Alarm || h.Refused != 0 || !h.Writable {
				t.Fatalf("at %d events: %+v, want the alarm on and nothing refused yet", tc.n, h)
			}
			// Fill up: the alarm came before the first refusal.
			refused := 0
			for i := 0; i < 20; i++ {
				if _, err := j.Append(context.Background(), []byte("0123456789")); errors.Is(err, journal.ErrFull) {
					refused++
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if h := j.Health(); h.Refused != uint64(refused) || refused == 0 || h.Fill < 100 {
				t.Fatalf("after filling: %+v, %d refused", h, refused)
			}
			es, _ := j.Pending(100, 1<<20)
			if err := j.Delivered(es); err != nil {
				t.Fatal(err)
			}
			if h := j.Health(); h.Alarm || h.Events != 0 {
				t.Fatalf("after delivery: %+v, want no alarm", h)
			}
		})
	}
	t.Run("unbounded never alarms", func(t *testing.T) {
		j, _ := openTemp(t, journal.Options{})
		defer j.Close()
		appendN(t, j, 50, "u")
		if h := j.Health(); h.Alarm || h.Fill != 0 {
			t.Fatalf("%+v", h)
		}
	})
}

func TestRedeliver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j, _ := openTemp(t, journal.Options{KeepDelivered: true})
		defer j.Close()
		seqs := appendN(t, j, 6, "r")
		es, _ := j.Pending(3, 1<<20)
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // virtual (synctest)
		mid := time.Now()
		es, _ = j.Pending(2, 1<<20)
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		// Only the two delivered after mid come back, ahead of the last
		// pending one: decision order.
		n, err := j.Redeliver(mid)
		if err != nil || n != 2 {
			t.Fatalf("Redeliver = %d, %v; want 2", n, err)
		}
		es, _ = j.Pending(10, 1<<20)
		if got := entrySeqs(es); !slices.Equal(got, seqs[3:]) {
			t.Fatalf("pending after redeliver %v, want %v", got, seqs[3:])
		}
		if d, _ := j.Depth(); d != 3 {
			t.Fatalf("depth %d", d)
		}
		// Delivered again: each event is in the file once.
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		count := map[uint64]int{}
		j.ForEach(func(e journal.Entry, delivered bool) error { count[e.Seq]++; return nil })
		for _, s := range seqs {
			if count[s] != 1 {
				t.Fatalf("seq %d held %d times", s, count[s])
			}
		}
		if n, _ := j.Redeliver(time.Now().Add(time.Hour)); n != 0 {
			t.Fatalf("redelivered %d from the future", n)
		}
	})
}

// txid is the id of the last write transaction committed to the file at
// path (the journal closed).
func txid(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int
	db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

// TestDeliveredInSmallCommits: Delivered moves a large delivery in write
// transactions of at most DeliveredPerCommit events, so that a scan's
// append never waits behind a transaction moving a whole message of
// events; every event still leaves the outbox and is kept as delivered.
func TestDeliveredInSmallCommits(t *testing.T) {
	for _, tc := range []struct {
		per, commits int
	}{{0, 3}, {100, 3}, {-1, 1}} { // 0: the default, 128
		j, path := openTemp(t, journal.Options{KeepDelivered: true, DeliveredPerCommit: tc.per})
		appendN(t, j, 300, "e")
		es, err := j.Pending(1000, 1<<30)
		if err != nil || len(es) != 300 {
			t.Fatalf("pending %d, %v", len(es), err)
		}
		j.Close()
		before := txid(t, path)
		j, err = journal.Open(path, journal.Options{KeepDelivered: true, DeliveredPerCommit: tc.per})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		if n, _ := j.Depth(); n != 0 {
			t.Errorf("per %d: %d events still pending", tc.per, n)
		}
		j.Close()
		// Open commits once (its buckets), then the deliveries.
		if got := txid(t, path) - before - 1; got != tc.commits {
			t.Errorf("per %d: 300 events delivered in %d write transactions, want %d", tc.per, got, tc.commits)
		}
	}
}
