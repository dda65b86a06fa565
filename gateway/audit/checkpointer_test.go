package audit

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// events is a journal that keeps what it is given.
type events struct {
	mu  sync.Mutex
	got []customs.Event
	err error
}

func (e *events) Append(_ context.Context, data []byte) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return 0, e.err
	}
	var ev customs.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return 0, err
	}
	e.got = append(e.got, ev)
	return uint64(len(e.got)), nil
}

func openLog(t *testing.T) *Log {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "audit.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		l.Close()
	})
	return l
}

func add(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		if err := l.AddSync(context.Background(), KindDecision, map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

// A checkpoint is signed and journalled when the log has grown, and only
// then; the event carries the signed head, which verifies.
func TestCheckpointerSignsWhenGrown(t *testing.T) {
	l := openLog(t)
	pub, priv := testKey()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	jr := &events{}
	c := &Checkpointer{Log: l, Journal: jr, Kid: "PVG-W/g07", Key: priv, Gateway: "g07", Now: func() time.Time { return at }}
	ctx := context.Background()
	if c.Checkpoint(ctx) {
		t.Fatal("checkpoint of an empty log")
	}
	add(t, l, 3)
	if !c.Checkpoint(ctx) {
		t.Fatal("no checkpoint after 3 records")
	}
	if c.Checkpoint(ctx) {
		t.Fatal("a second checkpoint with no new record")
	}
	add(t, l, 1)
	if !c.Checkpoint(ctx) {
		t.Fatal("no checkpoint after a 4th record")
	}
	if len(jr.got) != 2 {
		t.Fatalf("%d events journalled, want 2", len(jr.got))
	}
	for i, want := range []uint64{3, 4} {
		ev := jr.got[i]
		if ev.Kind != customs.EventCheckpoint || ev.Station != "g07" || ev.Checkpoint == nil || ev.ID == "" {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if cp := ev.Checkpoint; cp.Size != want || cp.Kid != "PVG-W/g07" || !cp.At.Equal(at) || cp.Sig == "" {
			t.Fatalf("event %d checkpoint %+v, want size %d", i, cp, want)
		}
	}
	rep, err := l.Verify(pub)
	if err != nil || rep.Checkpoints != 2 || rep.Records != 4 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if rep.Head != jr.got[1].Checkpoint.Head {
		t.Fatalf("journalled head %s, log's %s", jr.got[1].Checkpoint.Head, rep.Head)
	}
}

// A journal that refuses the event does not stop the checkpoint, stored in
// the log, nor the next one.
func TestCheckpointerJournalRefuses(t *testing.T) {
	l := openLog(t)
	pub, priv := testKey()
	jr := &events{err: errors.New("outbox full")}
	c := &Checkpointer{Log: l, Journal: jr, Kid: "k", Key: priv, Gateway: "g07"}
	add(t, l, 2)
	if !c.Checkpoint(context.Background()) {
		t.Fatal("no checkpoint")
	}
	if rep, err := l.Verify(pub); err != nil || rep.Checkpoints != 1 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// Run checkpoints every interval, when the log has grown, until its context
// ends; in a testing/synctest bubble.
func TestCheckpointerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := openLog(t)
		_, priv := testKey()
		jr := &events{}
		c := &Checkpointer{Log: l, Journal: jr, Kid: "k", Key: priv, Gateway: "g07", Interval: time.Minute}
		add(t, l, 1)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- c.Run(ctx) }()
		journalled := func(when string, want int) []customs.Event {
			t.Helper()
			synctest.Wait()
			jr.mu.Lock()
			defer jr.mu.Unlock()
			if len(jr.got) != want {
				t.Fatalf("%s: %d checkpoints journalled, want %d", when, len(jr.got), want)
			}
			return append([]customs.Event(nil), jr.got...)
		}
		time.Sleep(time.Minute - time.Second)
		journalled("before the interval", 0)
		time.Sleep(2 * time.Second)
		if got := journalled("after the interval", 1); !got[0].At.Equal(start.Add(time.Minute).UTC()) {
			t.Errorf("checkpoint at %v, want the tick's %v", got[0].At, start.Add(time.Minute))
		}
		time.Sleep(3 * time.Minute)
		journalled("the log not grown", 1)
		add(t, l, 2)
		time.Sleep(time.Minute)
		journalled("the log grown", 2)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
