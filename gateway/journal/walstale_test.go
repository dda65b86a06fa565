package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A journal file restored from a backup, beside a log that a later run
// filled (and Close cleared), starts its seqs again below the seqs of the
// records left in the log. Events of one size then land exactly where the
// earlier run's did: after a crash, the new records must not be read on
// into the earlier run's, whose seqs follow theirs.
func TestRestoredFileBesideOldLog(t *testing.T) {
	d := moveDelay
	moveDelay = time.Hour
	t.Cleanup(func() { moveDelay = d })
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j = openRun(t, path, Options{})
	for i := range 10 {
		if _, err := j.Append(t.Context(), fmt.Appendf(nil, "old-event-%02d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil { // the restore
		t.Fatal(err)
	}
	j = openRun(t, path, Options{})
	for i := range 3 {
		if _, err := j.Append(t.Context(), fmt.Appendf(nil, "new-event-%02d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	img := crashImage(t, path) // the mover waits an hour: the three only in the log
	j2 := openRun(t, img, Options{})
	seqs, data := pendingSeqs(t, j2)
	if want := []string{"new-event-01", "new-event-02", "new-event-03"}; !slices.Equal(data, want) {
		t.Fatalf("after a crash: seqs %v, events %q; want %q", seqs, data, want)
	}
}

// An event the log cannot give back (longer than a record may be) is
// refused by Append, not acknowledged and then lost with every event
// after it at the next open.
func TestEventTooLargeForTheLog(t *testing.T) {
	d, m := moveDelay, maxRecord
	moveDelay, maxRecord = time.Hour, 1<<10
	t.Cleanup(func() { moveDelay, maxRecord = d, m })
	path := filepath.Join(t.TempDir(), "events.db")
	j := openRun(t, path, Options{})
	var want []string
	for _, ev := range []string{"before", string(make([]byte, 2<<10)), "after"} {
		if _, err := j.Append(t.Context(), []byte(ev)); err == nil {
			want = append(want, ev)
		}
	}
	img := crashImage(t, path) // the mover waits an hour: all only in the log
	j2 := openRun(t, img, Options{})
	if _, data := pendingSeqs(t, j2); !slices.Equal(data, want) {
		t.Fatalf("after a crash: %d events %.20q; want the %d acknowledged %.20q", len(data), data, len(want), want)
	}
}

// A file the journal makes, the log or the bbolt file, has its directory
// synced before any append is acknowledged, also when the log was left
// empty by a process killed while making it (that process never synced
// the directory) or the bbolt file is made beside an existing log.
func TestNewFilesDirectorySynced(t *testing.T) {
	sd := syncDir
	t.Cleanup(func() { syncDir = sd })
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"new", func(t *testing.T, path string) {}},
		{"empty log left by a killed Open", func(t *testing.T, path string) {
			if err := os.WriteFile(LogPath(path), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"log without its file", func(t *testing.T, path string) {
			j, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			tc.setup(t, path)
			var synced []string
			syncDir = func(dir string) error {
				synced = append(synced, dir)
				return sd(dir)
			}
			j, err := Open(path, Options{})
			syncDir = sd
			if err != nil {
				t.Fatal(err)
			}
			j.Close()
			if !slices.Contains(synced, filepath.Dir(path)) {
				t.Fatalf("directory synced: %q; want %s", synced, filepath.Dir(path))
			}
		})
	}
}

// A group whose sync failed is zeroed, and the zeros are synced before its
// appends fail: a crash before the next group's sync must not bring back,
// as pending events, appends that were answered with an error (the gate
// stopped those parcels).
func TestFailedGroupZerosSynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var calls int
	syncData = func(f *os.File) error {
		calls++
		if calls == 1 {
			return os.ErrDeadlineExceeded // the group's own sync fails
		}
		return fdatasync(f)
	}
	t.Cleanup(func() { syncData = fdatasync })
	r := &appendReq{data: []byte("event-x"), at: time.Now(), err: make(chan error, 1)}
	j.commit([]*appendReq{r}) // the committer's step (Run not running)
	if err := <-r.err; err == nil {
		t.Fatal("the failed sync was not reported")
	}
	if calls < 2 {
		t.Fatalf("%d syncs: the zeroed group was not synced before its append failed", calls)
	}
}
