package journal_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/internal/testenv"
)

const logHelperEnv = "CARGOGATE_JOURNAL_LOG_HELPER"

// TestLogHelperProcess is the child of TestLogCrash: four appenders and a
// deliverer on a journal with a small log and the mover's delay from the
// environment, printing "A seq n" after each Append returned and "D seq"
// after each Delivered returned, until it is killed.
func TestLogHelperProcess(t *testing.T) {
	path := os.Getenv(logHelperEnv)
	if path == "" {
		t.Skip("helper process for TestLogCrash")
	}
	delay, _ := time.ParseDuration(os.Getenv(logHelperEnv + "_DELAY"))
	journal.SetMoveDelay(delay)
	j, err := journal.Open(path, journal.Options{LockTimeout: 5 * time.Second, LogBytes: 64 << 10, KeepDelivered: true, DeliveredPerCommit: 16})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	go j.Run(context.Background())
	var mu sync.Mutex
	print := func(format string, a ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format, a...) // unbuffered: in the pipe on return
		mu.Unlock()
	}
	var n int
	for w := 0; w < 4; w++ {
		go func() {
			for {
				mu.Lock()
				i := n
				n++
				mu.Unlock()
				// Events of different sizes, so records straddle pages.
				ev := "event-" + strconv.Itoa(i) + strings.Repeat("x", i%300)
				seq, err := j.Append(context.Background(), []byte(ev))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				print("A %d %d\n", seq, i)
			}
		}()
	}
	go func() {
		var after uint64
		for {
			es, err := j.PendingAfter(after, 50, 1<<20)
			if err == nil && len(es) == 0 {
				<-j.Notify()
				continue
			}
			if err == nil {
				err = j.Delivered(es)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(5)
			}
			for _, e := range es {
				print("D %d\n", e.Seq)
			}
			after = es[len(es)-1].Seq
		}
	}()
	select {}
}

// TestLogCrash kills a process appending and delivering with SIGKILL, many
// times, at random points: during appends, moves into the bbolt file,
// recycles of the log and growths of a full log. Each time a copy of the
// files left behind (the child recovers the originals on its next start)
// must hold every acknowledged event as acknowledged, every delivered
// event as delivered (none pending again), and nothing twice.
func TestLogCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	seed := testenv.Seed(t)
	r := rand.New(rand.NewSource(int64(seed)))
	acked := map[uint64]string{}
	delivered := map[uint64]bool{}
	delays := []string{"0s", "1ms", "50ms"}
	for cycle := 0; cycle < 15; cycle++ {
		delay := delays[r.Intn(len(delays))]
		killAfter := 50 + r.Intn(1500)
		cmd := exec.Command(os.Args[0], "-test.run=^TestLogHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), logHelperEnv+"="+path, logHelperEnv+"_DELAY="+delay)
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
		next := func() bool {
			line, err := rd.ReadString('\n')
			if err != nil {
				return false // cut by the kill: not an acknowledgement
			}
			var seq uint64
			var n int
			if _, err := fmt.Sscanf(line, "A %d %d\n", &seq, &n); err == nil {
				ev := "event-" + strconv.Itoa(n) + strings.Repeat("x", n%300)
				if prev, dup := acked[seq]; dup {
					t.Fatalf("cycle %d: seq %d acknowledged twice (%.20s, %.20s)", cycle, seq, prev, ev)
				}
				acked[seq] = ev
			} else if _, err := fmt.Sscanf(line, "D %d\n", &seq); err == nil {
				delivered[seq] = true
			} else {
				t.Fatalf("cycle %d: child printed %q", cycle, line)
			}
			lines++
			return true
		}
		for lines < killAfter && next() {
		}
		if lines < killAfter {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child stopped after %d lines\n%s", cycle, lines, stderr.String())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for next() {
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended with %v, not by SIGKILL\n%s", cycle, err, stderr.String())
		}
		check := filepath.Join(t.TempDir(), "journal.db")
		copyFile(t, path, check)
		copyFile(t, journal.LogPath(path), journal.LogPath(check))
		pending, done := readJournal(t, check)
		lost := 0
		for seq, ev := range acked {
			got, ok := pending[seq]
			if !ok {
				got, ok = done[seq]
			}
			if !ok {
				if lost++; lost <= 10 {
					t.Errorf("cycle %d: acknowledged seq %d lost", cycle, seq)
				}
				continue
			}
			if got != ev {
				t.Errorf("cycle %d: seq %d holds %.30q, acknowledged as %.30q", cycle, seq, got, ev)
			}
		}
		for seq := range delivered {
			if _, ok := done[seq]; !ok {
				t.Errorf("cycle %d: delivered seq %d not among the delivered (pending: %v)", cycle, seq, pending[seq] != "")
			}
		}
		if lost > 0 || t.Failed() {
			t.Fatalf("cycle %d (move delay %s): %d of %d acknowledged events lost (seed %d)", cycle, delay, lost, len(acked), seed)
		}
		t.Logf("cycle %d (move delay %s): %d acknowledged, %d delivered; file: %d pending, %d delivered", cycle, delay, len(acked), len(delivered), len(pending), len(done))
	}
}

// readJournal opens the journal at path and returns its pending and
// delivered events by seq, checking that its depth counts the pending.
func readJournal(t *testing.T, path string) (pending, delivered map[uint64]string) {
	t.Helper()
	j, err := journal.Open(path, journal.Options{KeepDelivered: true})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer j.Close()
	pending, delivered = map[uint64]string{}, map[uint64]string{}
	err = j.ForEach(func(e journal.Entry, d bool) error {
		m := pending
		if d {
			m = delivered
		}
		if _, dup := m[e.Seq]; dup {
			t.Errorf("seq %d twice", e.Seq)
		}
		m[e.Seq] = string(e.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq := range pending {
		if _, ok := delivered[seq]; ok {
			t.Errorf("seq %d both pending and delivered", seq)
		}
	}
	if n, _ := j.Depth(); n != len(pending) {
		t.Errorf("depth %d, %d pending in the file", n, len(pending))
	}
	return pending, delivered
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
