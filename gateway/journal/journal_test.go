package journal_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"
)

func openTemp(t *testing.T, opts journal.Options) (*journal.Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	run(t, j)
	return j, path
}

// run runs j's committer until the test ends or j is closed.
func run(t *testing.T, j *journal.Journal) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- j.Run(t.Context()) }()
	t.Cleanup(func() {
		j.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func appendN(t *testing.T, j *journal.Journal, n int, prefix string) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		seq, err := j.Append(context.Background(), []byte(fmt.Sprintf("%s-%d", prefix, i)))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func entrySeqs(es []journal.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestAppendCommits(t *testing.T) {
	j, path := openTemp(t, journal.Options{})
	seq, err := j.Append(context.Background(), []byte(`{"id":"E1"}`))
	if err != nil || seq == 0 {
		t.Fatalf("Append = %d, %v", seq, err)
	}
	// Committed when Append returns: visible to a reader at once, and on
	// disk after Close.
	es, err := j.Pending(10, 1<<20)
	if err != nil || len(es) != 1 || es[0].Seq != seq || string(es[0].Data) != `{"id":"E1"}` {
		t.Fatalf("Pending = %+v, %v", es, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, j2)
	defer j2.Close()
	es, err = j2.Pending(10, 1<<20)
	if err != nil || len(es) != 1 || es[0].Seq != seq {
		t.Fatalf("after reopen: %+v, %v", es, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	j, _ := openTemp(t, journal.Options{})
	defer j.Close()
	const workers, each = 8, 200
	seqs := make([][]uint64, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq, err := j.Append(context.Background(), []byte(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := map[uint64]string{}
	for w, ss := range seqs {
		if !slices.IsSorted(ss) {
			t.Errorf("worker %d: seqs not increasing: %v", w, ss)
		}
		for i, s := range ss {
			if prev, dup := all[s]; dup {
				t.Fatalf("seq %d given twice (%s and w%d-%d)", s, prev, w, i)
			}
			all[s] = fmt.Sprintf("w%d-%d", w, i)
		}
	}
	if n, _ := j.Depth(); n != workers*each {
		t.Fatalf("depth %d, want %d", n, workers*each)
	}
	// Each seq holds the event appended under it.
	es, err := j.Pending(workers*each+10, 1<<30)
	if err != nil || len(es) != workers*each {
		t.Fatalf("pending %d, %v", len(es), err)
	}
	for _, e := range es {
		if all[e.Seq] != string(e.Data) {
			t.Fatalf("seq %d holds %q, want %q", e.Seq, e.Data, all[e.Seq])
		}
	}
	if !slices.IsSorted(entrySeqs(es)) {
		t.Fatalf("pending out of order")
	}
}

func TestPendingAndDelivered(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			j, path := openTemp(t, journal.Options{KeepDelivered: keep})
			seqs := appendN(t, j, 10, "ev") // each 4 bytes: ev-0 … ev-9
			if n, b := j.Depth(); n != 10 || b != 40 {
				t.Fatalf("depth %d, %d bytes", n, b)
			}
			tests := []struct {
				max, maxBytes int
				want          []uint64
			}{
				{3, 1 << 20, seqs[:3]},
				{100, 1 << 20, seqs},
				{100, 12, seqs[:3]},
				{100, 13, seqs[:3]},
				{100, 1, seqs[:1]}, // at least one
				{2, 8, seqs[:2]},
				{0, 100, nil},
			}
			for _, tc := range tests {
				es, err := j.Pending(tc.max, tc.maxBytes)
				if err != nil || !slices.Equal(entrySeqs(es), tc.want) {
					t.Errorf("Pending(%d, %d) = %v, %v; want %v", tc.max, tc.maxBytes, entrySeqs(es), err, tc.want)
				}
			}
			first, _ := j.Pending(4, 1<<20)
			if err := j.Delivered(first); err != nil {
				t.Fatal(err)
			}
			if err := j.Delivered(first[:2]); err != nil { // again: a no-op
				t.Fatal(err)
			}
			if n, b := j.Depth(); n != 6 || b != 24 {
				t.Fatalf("depth after delivery %d, %d bytes", n, b)
			}
			es, _ := j.Pending(100, 1<<20)
			if !slices.Equal(entrySeqs(es), seqs[4:]) {
				t.Fatalf("pending after delivery %v", entrySeqs(es))
			}
			var delivered, pending []uint64
			err := j.ForEach(func(e journal.Entry, d bool) error {
				if d {
					delivered = append(delivered, e.Seq)
				} else {
					pending = append(pending, e.Seq)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var wantKept []uint64
			if keep {
				wantKept = seqs[:4]
			}
			if !slices.Equal(delivered, wantKept) || !slices.Equal(pending, seqs[4:]) {
				t.Fatalf("ForEach: delivered %v pending %v", delivered, pending)
			}
			// Reopen: the undelivered remain, counted; new seqs go on.
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j2, err := journal.Open(path, journal.Options{KeepDelivered: keep})
			if err != nil {
				t.Fatal(err)
			}
			run(t, j2)
			defer j2.Close()
			if n, b := j2.Depth(); n != 6 || b != 24 {
				t.Fatalf("depth after reopen %d, %d bytes", n, b)
			}
			select {
			case <-j2.Notify():
			default:
				t.Fatalf("no notify on reopen with pending events")
			}
			es, _ = j2.Pending(100, 1<<20)
			if !slices.Equal(entrySeqs(es), seqs[4:]) {
				t.Fatalf("pending after reopen %v", entrySeqs(es))
			}
			seq, err := j2.Append(context.Background(), []byte("after"))
			if err != nil || seq <= seqs[9] {
				t.Fatalf("append after reopen: %d, %v (last was %d)", seq, err, seqs[9])
			}
			all, _ := j2.Pending(100, 1<<20)
			if err := j2.Delivered(all); err != nil {
				t.Fatal(err)
			}
			if n, b := j2.Depth(); n != 0 || b != 0 {
				t.Fatalf("depth after delivering all %d, %d", n, b)
			}
			// Delivering everything must not reuse seqs.
			seq2, err := j2.Append(context.Background(), []byte("later"))
			if err != nil || seq2 <= seq {
				t.Fatalf("append after empty: %d, %v (last was %d)", seq2, err, seq)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	t.Run("MaxEvents", func(t *testing.T) {
		j, _ := openTemp(t, journal.Options{MaxEvents: 3})
		defer j.Close()
		appendN(t, j, 3, "e")
		if _, err := j.Append(context.Background(), []byte("x")); !errors.Is(err, journal.ErrFull) {
			t.Fatalf("4th append: %v, want ErrFull", err)
		}
		if n, _ := j.Depth(); n != 3 {
			t.Fatalf("depth %d", n)
		}
		es, _ := j.Pending(1, 1<<20)
		if err := j.Delivered(es); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(context.Background(), []byte("y")); err != nil {
			t.Fatalf("append after delivery: %v", err)
		}
	})
	t.Run("MaxBytes", func(t *testing.T) {
		j, _ := openTemp(t, journal.Options{MaxBytes: 10})
		defer j.Close()
		if _, err := j.Append(context.Background(), []byte("12345678")); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Append(context.Background(), []byte("123")); !errors.Is(err, journal.ErrFull) {
			t.Fatalf("append over MaxBytes: %v, want ErrFull", err)
		}
		if _, err := j.Append(context.Background(), []byte("12")); err != nil {
			t.Fatalf("append up to MaxBytes: %v", err)
		}
	})
	t.Run("concurrent MaxEvents", func(t *testing.T) {
		j, _ := openTemp(t, journal.Options{MaxEvents: 50})
		defer j.Close()
		var mu sync.Mutex
		ok, full := 0, 0
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					_, err := j.Append(context.Background(), []byte("e"))
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, journal.ErrFull):
						full++
					default:
						t.Error(err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 50 || full != 110 {
			t.Fatalf("%d accepted, %d full; want 50, 110", ok, full)
		}
	})
}

func TestNotify(t *testing.T) {
	j, _ := openTemp(t, journal.Options{})
	defer j.Close()
	select {
	case <-j.Notify():
		t.Fatal("notified before any append")
	default:
	}
	appendN(t, j, 3, "n")
	// The signal is sent before Append returns, and coalesced.
	select {
	case <-j.Notify():
	default:
		t.Fatal("not notified after append")
	}
	select {
	case <-j.Notify():
		t.Fatal("notified twice for appends already seen")
	default:
	}
	appendN(t, j, 1, "m")
	select {
	case <-j.Notify():
	default:
		t.Fatal("not notified after the second append")
	}
}

// TestRunOwnsTheCommitter: an Append is committed by Run; when Run's
// context ends Run commits what is queued and returns, later appends fail
// with ErrClosed, and a second Run is refused. Close is safe without Run and
// fails the appends waiting for it.
func TestRunOwnsTheCommitter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := j.Append(t.Context(), []byte("first"))
		got <- err
	}()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	if err := <-got; err != nil {
		t.Fatalf("append: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := j.Append(t.Context(), []byte("late")); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("append after Run returned: %v, want ErrClosed", err)
	}
	if err := j.Run(t.Context()); err == nil {
		t.Fatal("second Run: no error")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// No Run: Close fails the append waiting for it and keeps nothing.
	j, err = journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := j.Append(t.Context(), []byte("never committed"))
		got <- err
	}()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("append without Run, then Close: %v, want ErrClosed", err)
	}
	j, _ = journal.Open(path, journal.Options{})
	defer j.Close()
	es, err := j.Pending(10, 1<<20)
	if err != nil || len(es) != 1 || string(es[0].Data) != "first" {
		t.Fatalf("pending after reopen: %v, %v; want only \"first\"", es, err)
	}
}

func TestAppendContextAndClose(t *testing.T) {
	j, _ := openTemp(t, journal.Options{})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(), []byte("x")); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
}

func TestState(t *testing.T) {
	j, path := openTemp(t, journal.Options{})
	if err := j.PutState("arr-1", []byte(`{"transit":"T1"}`)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j2, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, j2)
	defer j2.Close()
	if v, err := j2.GetState("arr-1"); err != nil || string(v) != `{"transit":"T1"}` {
		t.Fatalf("GetState = %q, %v", v, err)
	}
	if err := j2.PutState("arr-1", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := j2.GetState("arr-1"); err != nil || v != nil {
		t.Fatalf("after delete: %q, %v", v, err)
	}
}

func TestSecondOpenLocked(t *testing.T) {
	j, path := openTemp(t, journal.Options{})
	defer j.Close()
	_, err := journal.Open(path, journal.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestPruneDelivered(t *testing.T) {
	j, _ := openTemp(t, journal.Options{KeepDelivered: true})
	defer j.Close()
	appendN(t, j, 5, "p")
	es, _ := j.Pending(3, 1<<20)
	if err := j.Delivered(es); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	if n, err := j.PruneDelivered(cut, 2); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want 2 (max)", n, err)
	}
	if n, err := j.PruneDelivered(cut, 100); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1", n, err)
	}
	// Pending events are never pruned, and nothing delivered after cut.
	if n, _ := j.PruneDelivered(time.Now().Add(time.Hour), 100); n != 0 {
		t.Fatalf("pruned %d with only pending events left", n)
	}
	if d, _ := j.Depth(); d != 2 {
		t.Fatalf("depth %d", d)
	}
	if n, _ := j.Redeliver(time.Time{}); n != 0 {
		t.Fatalf("redelivered %d pruned events", n)
	}
}
