package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Close while appends and deliveries run: after a reopen every
// acknowledged event is there as acknowledged, and every delivered one is
// delivered, not pending; and an event is there only if its Append
// returned it (an Append answered with an error is a scan the gate
// stopped: no event may say otherwise).
func TestCloseDuringAppendsAndDeliveries(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "events.db")
		opts := Options{KeepDelivered: true, DeliveredPerCommit: 8, LogBytes: 64 << 10}
		j, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		runDone := make(chan error, 1)
		go func() { runDone <- j.Run(context.Background()) }()
		var mu sync.Mutex
		acked := map[uint64]string{}
		delivered := map[uint64]bool{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					ev := fmt.Sprintf("event-%d-%d", w, i)
					seq, err := j.Append(context.Background(), []byte(ev))
					if err != nil {
						return
					}
					mu.Lock()
					acked[seq] = ev
					mu.Unlock()
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var after uint64
			for {
				es, err := j.PendingAfter(after, 20, 1<<20)
				if err != nil {
					return
				}
				if len(es) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := j.Delivered(es); err != nil {
					return
				}
				mu.Lock()
				for _, e := range es {
					delivered[e.Seq] = true
				}
				mu.Unlock()
				after = es[len(es)-1].Seq
			}
		}()
		time.Sleep(time.Duration(20+10*round) * time.Millisecond)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		<-runDone
		wg.Wait()
		j2, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		pending, done := map[uint64]string{}, map[uint64]string{}
		err = j2.ForEach(func(e Entry, d bool) error {
			if d {
				done[e.Seq] = string(e.Data)
			} else {
				pending[e.Seq] = string(e.Data)
			}
			return nil
		})
		j2.Close()
		if err != nil {
			t.Fatal(err)
		}
		for seq, ev := range acked {
			got, ok := pending[seq]
			if !ok {
				got, ok = done[seq]
			}
			if !ok || got != ev {
				t.Fatalf("round %d: acknowledged seq %d (%s): got %q, %v", round, seq, ev, got, ok)
			}
		}
		for seq := range delivered {
			if _, ok := done[seq]; !ok {
				t.Fatalf("round %d: delivered seq %d not delivered", round, seq)
			}
		}
		for _, m := range []map[uint64]string{pending, done} {
			for seq, ev := range m {
				if acked[seq] != ev {
					t.Fatalf("round %d: seq %d (%s) in the journal, its Append answered with an error", round, seq, ev)
				}
			}
		}
		t.Logf("round %d: %d acknowledged, %d delivered", round, len(acked), len(delivered))
	}
}
