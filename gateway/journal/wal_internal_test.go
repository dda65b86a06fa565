package journal

import (
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func openRun(t *testing.T, path string, opts Options) *Journal {
	t.Helper()
	j, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Run(t.Context()) }()
	t.Cleanup(func() {
		j.Close()
		<-done
	})
	return j
}

func pendingSeqs(t *testing.T, j *Journal) (seqs []uint64, data []string) {
	t.Helper()
	es, err := j.Pending(1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		seqs = append(seqs, e.Seq)
		data = append(data, string(e.Data))
	}
	return seqs, data
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// crashImage copies the journal's two files as a crash would leave them:
// only at a moment when nothing writes them (the caller holds the bbolt
// writer lock or knows the mover idle, and no append is in flight).
func crashImage(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "journal.db")
	for _, p := range [][2]string{{path, dst}, {LogPath(path), LogPath(dst)}} {
		in, err := os.Open(p[0])
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(p[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// A log ending in a torn record, in garbage, in a record whose CRC does
// not match, or in an intact record from before a recycle gives back the
// records before that point and nothing else; the next append follows
// them and survives a reopen.
func TestLogTail(t *testing.T) {
	rec := func(seq uint64) []byte {
		return appendRec(nil, seq, int64(seq), []byte("event-"+strconv.FormatUint(seq, 10)))
	}
	five := func() []byte {
		var b []byte
		for s := uint64(1); s <= 5; s++ {
			b = append(b, rec(s)...)
		}
		return b
	}
	garbage := make([]byte, 300)
	rand.New(rand.NewSource(1)).Read(garbage)
	for _, tc := range []struct {
		name string
		log  []byte
		want uint64 // the last seq read back
	}{
		{"whole", five(), 5},
		{"torn last record", five()[:len(five())-3], 4},
		{"torn header", append(five(), rec(6)[:10]...), 5},
		{"garbage after", append(five(), garbage...), 5},
		{"bad CRC in the fourth", func() []byte {
			b := five()
			b[3*len(rec(1))+recHeader+2] ^= 1
			return b
		}(), 3},
		{"old record after", append(five(), rec(2)...), 5},
		{"record not following", append(five(), rec(7)...), 5},
		{"length beyond the file", append(five(), []byte{0xff, 0xff, 0xff, 0xf0}...), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.db")
			f := make([]byte, 64<<10)
			copy(f, walMagic)
			copy(f[walHeader:], tc.log)
			if err := os.WriteFile(LogPath(path), f, 0o600); err != nil {
				t.Fatal(err)
			}
			j := openRun(t, path, Options{})
			seqs, data := pendingSeqs(t, j)
			if !slices.Equal(seqs, seqRange(1, tc.want)) {
				t.Fatalf("pending %v, want 1..%d", seqs, tc.want)
			}
			for i, d := range data {
				if d != "event-"+strconv.Itoa(i+1) {
					t.Fatalf("seq %d holds %q", i+1, d)
				}
			}
			seq, err := j.Append(t.Context(), []byte("next"))
			if err != nil || seq != tc.want+1 {
				t.Fatalf("append: seq %d, %v; want %d", seq, err, tc.want+1)
			}
			tx, err := j.db.Begin(true) // no move while the files are copied
			if err != nil {
				t.Fatal(err)
			}
			img := crashImage(t, path)
			tx.Rollback()
			j2 := openRun(t, img, Options{})
			if seqs, _ := pendingSeqs(t, j2); !slices.Equal(seqs, seqRange(1, tc.want+1)) {
				t.Fatalf("after a crash: pending %v, want 1..%d", seqs, tc.want+1)
			}
		})
	}
}

// A log whose records the bbolt file already has, some of them delivered
// since, gives nothing back: delivered events do not become pending again.
func TestLogRecordsTheFileHas(t *testing.T) {
	d := moveDelay
	moveDelay = time.Hour // the log is not recycled in between
	t.Cleanup(func() { moveDelay = d })
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openRun(t, path, Options{KeepDelivered: true})
	for i := range 6 {
		if _, err := j.Append(t.Context(), []byte("event-"+strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	es, err := j.Pending(3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered moves the three (still only in the log) in its own
	// transaction, then removes them.
	if err := j.Delivered(es); err != nil {
		t.Fatal(err)
	}
	tx, err := j.db.Begin(true) // the mover idle while the files are copied
	if err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, path)
	tx.Rollback()
	if n := len(parseLogFile(t, LogPath(img))); n != 6 {
		t.Fatalf("the log holds %d records, want 6 (none recycled yet)", n)
	}
	j2 := openRun(t, img, Options{KeepDelivered: true})
	if seqs, _ := pendingSeqs(t, j2); !slices.Equal(seqs, seqRange(4, 6)) {
		t.Fatalf("pending %v, want 4..6", seqs)
	}
	if n, _ := j2.Depth(); n != 3 {
		t.Fatalf("depth %d, want 3", n)
	}
	if seq, err := j2.Append(t.Context(), []byte("event-7")); err != nil || seq != 7 {
		t.Fatalf("append: %d, %v", seq, err)
	}
}

func parseLogFile(t *testing.T, path string) []logRec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseLog(b)
}

// Appends do not wait for the bbolt file: with its writer lock held (a
// delivery or a move committing), they complete, in the log alone, which
// grows past its size; a crash then loses none of them, and the next open
// moves them and cuts the log back.
func TestAppendsBesideAHeldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openRun(t, path, Options{LogBytes: 64 << 10})
	tx, err := j.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for i := range n {
		ev := "event-" + strconv.Itoa(i+1) + string(make([]byte, 200))
		if seq, err := j.Append(ctx, []byte(ev)); err != nil || seq != uint64(i+1) {
			tx.Rollback()
			t.Fatalf("append %d: seq %d, %v", i+1, seq, err)
		}
	}
	st, err := os.Stat(LogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() <= 64<<10 {
		t.Errorf("log %d bytes: did not grow", st.Size())
	}
	if seqs, _ := pendingSeqs(t, j); !slices.Equal(seqs, seqRange(1, n)) {
		t.Errorf("pending before the move: %d events", len(seqs))
	}
	img := crashImage(t, path)
	tx.Rollback()
	j2 := openRun(t, img, Options{LogBytes: 64 << 10})
	seqs, data := pendingSeqs(t, j2)
	if !slices.Equal(seqs, seqRange(1, n)) {
		t.Fatalf("after a crash: %d pending, want 1..%d", len(seqs), n)
	}
	for i, d := range data {
		if d != "event-"+strconv.Itoa(i+1)+string(make([]byte, 200)) {
			t.Fatalf("seq %d holds %.20q", i+1, d)
		}
	}
	if st, err := os.Stat(LogPath(img)); err != nil || st.Size() != 64<<10 {
		t.Errorf("log after the move: %v bytes, %v; want it cut back to %d", st.Size(), err, 64<<10)
	}
}

// A group whose write or sync failed leaves nothing readable behind it:
// the next group, written in its place with the same seqs, is not followed
// by the failed group's records (their appends were told they failed).
func TestFailedWriteLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	commit := func(events ...string) error {
		var batch []*appendReq
		for _, e := range events {
			batch = append(batch, &appendReq{data: []byte(e), at: time.Now(), err: make(chan error, 1)})
		}
		j.commit(batch) // the committer's step, called directly (Run is not running)
		var first error
		for _, r := range batch {
			if err := <-r.err; first == nil {
				first = err
			}
		}
		return first
	}
	if err := commit("event-a"); err != nil {
		t.Fatal(err)
	}
	syncData = func(*os.File) error { return io.ErrShortWrite }
	err = commit("event-x", "event-y")
	syncData = fdatasync
	if err == nil {
		t.Fatal("the failed sync was not reported")
	}
	if err := commit("event-z"); err != nil {
		t.Fatal(err)
	}
	img := crashImage(t, path)
	j2 := openRun(t, img, Options{})
	seqs, data := pendingSeqs(t, j2)
	if !slices.Equal(data, []string{"event-a", "event-z"}) {
		t.Fatalf("after a crash: seqs %v, events %q; want event-a, event-z", seqs, data)
	}
}

// The logged events waiting for the mover (held in memory) stay bounded
// by maxMovable and one group: with no mover running, the committer moves
// them itself once they are over it.
func TestMovableBounded(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ev := make([]byte, 1024)
	const group = 1000
	for g := range 5 {
		batch := make([]*appendReq, group)
		for i := range batch {
			batch[i] = &appendReq{data: ev, at: time.Now(), err: make(chan error, 1)}
		}
		j.commit(batch) // the committer's step; Run (and its mover) not running
		for _, r := range batch {
			if err := <-r.err; err != nil {
				t.Fatal(err)
			}
		}
		j.mu.Lock()
		movable := j.movable
		j.mu.Unlock()
		if movable > maxMovable+group*int64(len(ev)) {
			t.Fatalf("after group %d: %d bytes waiting for the mover, bound %d and a group", g+1, movable, maxMovable)
		}
	}
	if n, _ := j.Depth(); n != 5*group {
		t.Fatalf("depth %d", n)
	}
	if es, _ := j.Pending(1<<20, 1<<30); len(es) != 5*group {
		t.Fatalf("%d pending", len(es))
	}
}

// CopyFile and CompactFile of a journal left by a crash, whose newest
// events are only in its log, copy those events too.
func TestCopyAfterACrash(t *testing.T) {
	d := moveDelay
	moveDelay = time.Hour
	t.Cleanup(func() { moveDelay = d })
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openRun(t, path, Options{})
	for i := range 5 {
		if _, err := j.Append(t.Context(), []byte("event-"+strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	img := crashImage(t, path) // the mover waits an hour: all five only in the log
	for _, fn := range []func(src, dst string) error{CopyFile, CompactFile} {
		src := filepath.Join(t.TempDir(), "events.db")
		for _, p := range [][2]string{{img, src}, {LogPath(img), LogPath(src)}} {
			b, err := os.ReadFile(p[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p[1], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		dst := filepath.Join(t.TempDir(), "copy.db")
		if err := fn(src, dst); err != nil {
			t.Fatal(err)
		}
		c := openRun(t, dst, Options{})
		if seqs, _ := pendingSeqs(t, c); !slices.Equal(seqs, seqRange(1, 5)) {
			t.Fatalf("copy holds %v, want 1..5", seqs)
		}
	}
}
