package journal_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"

	"github.com/cargogate/cargogate/internal/testenv"
)

func openTemp(t *testing.T, opts journal.Options) (*journal.Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j, path
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

const helperEnv = "CARGOGATE_JOURNAL_HELPER"

// TestHelperProcess is the child of TestCrash: it appends events forever,
// printing "seq i" after each Append returns, until it is killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestCrash")
	}
	j, err := journal.Open(path, journal.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// Several appenders, so that group commits hold more than one event.
	var mu sync.Mutex
	i := 0
	for w := 0; w < 4; w++ {
		go func() {
			for {
				mu.Lock()
				n := i
				i++
				mu.Unlock()
				seq, err := j.Append(context.Background(), []byte("event-"+strconv.Itoa(n)))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				// os.Stdout is unbuffered: the line is in the pipe when
				// Fprintf returns.
				fmt.Fprintf(os.Stdout, "%d %d\n", seq, n)
			}
		}()
	}
	select {}
}

// TestCrash kills a process appending to the journal with SIGKILL and
// checks that every event whose Append had returned is in the journal.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	seed := testenv.Seed(t)
	r := rand.New(rand.NewSource(int64(seed)))
	acked := map[uint64]string{}
	for cycle := 0; cycle < 5; cycle++ {
		killAfter := 100 + r.Intn(400)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		rd := bufio.NewReader(out)
		lines := 0
		// next parses the next line; false at the end of the output.
		next := func() bool {
			line, err := rd.ReadString('\n')
			if err != nil {
				// A line cut by the kill, without its newline, was never
				// complete: not an acknowledgement.
				return false
			}
			var seq uint64
			var n int
			if _, err := fmt.Sscanf(line, "%d %d\n", &seq, &n); err != nil {
				t.Fatalf("cycle %d: child printed %q", cycle, line)
			}
			ev := "event-" + strconv.Itoa(n)
			if prev, dup := acked[seq]; dup {
				t.Fatalf("cycle %d: seq %d acknowledged twice (%s, %s)", cycle, seq, prev, ev)
			}
			acked[seq] = ev
			lines++
			return true
		}
		for lines < killAfter && next() {
		}
		if lines < killAfter {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child stopped after %d appends\n%s", cycle, lines, stderr.String())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Whatever the child printed before it died was acknowledged too.
		for next() {
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended with %v, not by SIGKILL\n%s", cycle, err, stderr.String())
		}

		j, err := journal.Open(path, journal.Options{})
		if err != nil {
			t.Fatalf("cycle %d: reopen: %v", cycle, err)
		}
		have := map[uint64]string{}
		err = j.ForEach(func(e journal.Entry, delivered bool) error {
			have[e.Seq] = string(e.Data)
			return nil
		})
		if err != nil {
			t.Fatalf("cycle %d: read: %v", cycle, err)
		}
		if n, _ := j.Depth(); n != len(have) {
			t.Errorf("cycle %d: depth %d, %d events in the file", cycle, n, len(have))
		}
		j.Close()
		lost := 0
		for seq, ev := range acked {
			got, ok := have[seq]
			if !ok {
				lost++
				if lost <= 10 {
					t.Errorf("cycle %d: acknowledged seq %d (%s) lost", cycle, seq, ev)
				}
				continue
			}
			if got != ev {
				t.Errorf("cycle %d: seq %d holds %q, acknowledged as %q", cycle, seq, got, ev)
			}
		}
		if lost > 0 {
			t.Fatalf("cycle %d: %d of %d acknowledged events lost (seed %d)", cycle, lost, len(acked), seed)
		}
		t.Logf("cycle %d: %d acknowledged in all, %d in the journal", cycle, len(acked), len(have))
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

func TestOldestPending(t *testing.T) {
	j, path := openTemp(t, journal.Options{})
	if _, ok, err := j.OldestPending(); ok || err != nil {
		t.Fatalf("empty journal: ok %v, %v", ok, err)
	}
	before := time.Now()
	appendN(t, j, 1, "a")
	mid := time.Now()
	time.Sleep(2 * time.Millisecond) // the clock must move between the two appends
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
	j, _ := openTemp(t, journal.Options{KeepDelivered: true})
	defer j.Close()
	seqs := appendN(t, j, 6, "r")
	es, _ := j.Pending(3, 1<<20)
	if err := j.Delivered(es); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
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
