package audit

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReview19_AddDuringCloseNeverLostQuietly: records added while the
// log closes (a station's last decision racing the shutdown) are either
// committed or counted as lost (Lost); none disappears uncounted.
func TestReview19_AddDuringCloseNeverLostQuietly(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "audit.db")
		l, err := open(path, slog.New(slog.DiscardHandler), 64)
		if err != nil {
			t.Fatal(err)
		}
		go l.Run(context.Background())
		var added atomic.Uint64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 2000; i++ {
					l.Add(KindDecision, map[string]int{"n": i})
					added.Add(1)
				}
			}()
		}
		close(start)
		for added.Load() < 1000 {
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		pub, _ := testKey()
		rep, err := VerifyFile(path, pub)
		if err != nil {
			t.Fatal(err)
		}
		committed := rep.Records - uint64(rep.GapCount)
		if committed+l.Lost() != added.Load() {
			t.Fatalf("round %d: %d added, %d committed, %d counted lost: %d lost quietly",
				round, added.Load(), committed, l.Lost(), added.Load()-committed-l.Lost())
		}
	}
}

// TestReview19_AddAfterCloseCounted: a record added once the log is
// closed cannot be written; it is counted as lost, not parked in a queue
// that nobody will ever commit.
func TestReview19_AddAfterCloseCounted(t *testing.T) {
	l, err := open(filepath.Join(t.TempDir(), "audit.db"), nil, 64)
	if err != nil {
		t.Fatal(err)
	}
	go l.Run(context.Background())
	l.Close()
	for i := 0; i < 10; i++ {
		l.Add(KindDecision, map[string]int{"n": i})
	}
	if l.Lost() != 10 {
		t.Fatalf("10 records added after Close, %d counted lost", l.Lost())
	}
}

// TestReview19_AddSyncAfterCloseAnswers: AddSync on a closed log returns
// an error at once instead of waiting for a committer that is gone.
func TestReview19_AddSyncAfterCloseAnswers(t *testing.T) {
	l, err := open(filepath.Join(t.TempDir(), "audit.db"), nil, 64)
	if err != nil {
		t.Fatal(err)
	}
	go l.Run(context.Background())
	l.Close()
	done := make(chan error, 1)
	go func() { done <- l.AddSync(context.Background(), KindConfig, "x") }()
	if err := <-done; err == nil {
		t.Fatal("AddSync on a closed log reported the record committed")
	}
}
