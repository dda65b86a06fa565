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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"

	"github.com/cargogate/cargogate/internal/testenv"
)

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
	go j.Run(context.Background())
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
