package station_test

import (
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"
)

// close_after on the station's one-second tick, in a testing/synctest
// bubble: the open transit is closed, and its arrival event journalled,
// on the first tick at or after close_after since the last line read, and
// not before.
func TestArrivalCloseAfterTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const closeAfter = 5 * time.Minute
		j := openJournal(t, filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
		st := newArrivalStation(t, &recJournal{j: j, ops: &ops{}}, closeAfter)
		// Scanned before the loop runs: Handle is the loop's own (reads).
		scan(st, tr1)
		scan(st, bag1) // the last line read: close_after counts from here
		last := time.Now()
		stop := run(t, st) // ticks at whole seconds from now
		defer stop()

		time.Sleep(closeAfter - 500*time.Millisecond) // the tick of close_after-1s passed
		synctest.Wait()
		if evs := arrivals(t, j); len(evs) != 0 {
			t.Fatalf("closed %v before close_after: %+v", time.Since(last), evs)
		}
		time.Sleep(time.Second) // the tick at close_after passed
		synctest.Wait()
		evs := arrivals(t, j)
		if len(evs) != 1 {
			t.Fatalf("%d arrival events %v after the last line, want 1", len(evs), time.Since(last))
		}
		checkArrival(t, evs[0], tr1)
		if raw, err := j.GetState("arrival/arr-1"); err != nil || raw != nil {
			t.Fatalf("state record %s, %v after the arrival event", raw, err)
		}
	})
}
