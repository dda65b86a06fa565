package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func testKey() (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	return priv.Public().(ed25519.PublicKey), priv
}

// build makes a log of n records with a checkpoint after every 10.
func build(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go l.Run(t.Context())
	_, priv := testKey()
	for i := range n {
		if err := l.AddSync(context.Background(), KindDecision, map[string]any{"code": "RR123456785CN", "n": i, "decision": "stop"}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%10 == 0 {
			if _, err := l.Checkpoint("PVG-W/g07", priv, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func tamper(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIntact(t *testing.T) {
	path := build(t, 35)
	pub, _ := testKey()
	rep, err := VerifyFile(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 35 || rep.Checkpoints != 3 {
		t.Fatalf("report %+v", rep)
	}
	var out bytes.Buffer
	n, err := ExportFile(path, &out, time.Time{})
	if err != nil || n != 35 || strings.Count(out.String(), "\n") != 36 { // and the trailer
		t.Fatalf("export: %d records, err %v", n, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	pub, _ := testKey()
	otherPub, _, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name    string
		tamper  func(tx *bolt.Tx) error
		pub     ed25519.PublicKey
		index   uint64
		inError string
	}{
		{name: "a record edited", index: 12, inError: "content changed", tamper: func(tx *bolt.Tx) error {
			b := tx.Bucket(bRecords)
			v := bytes.Replace(b.Get(key(12)), []byte(`"stop"`), []byte(`"pass"`), 1)
			return b.Put(key(12), v)
		}},
		{name: "a record edited and the chain rewritten after it", index: 20, inError: "signed checkpoint", tamper: func(tx *bolt.Tx) error {
			rb, cb := tx.Bucket(bRecords), tx.Bucket(bChain)
			rb.Put(key(12), bytes.Replace(rb.Get(key(12)), []byte(`"stop"`), []byte(`"pass"`), 1))
			var h [32]byte
			for i := uint64(0); i < 35; i++ {
				h = chainNext(h, rb.Get(key(i)))
				cb.Put(key(i), append([]byte(nil), h[:]...))
			}
			return nil
		}},
		{name: "a record deleted", index: 7, inError: "deleted", tamper: func(tx *bolt.Tx) error {
			return tx.Bucket(bRecords).Delete(key(7))
		}},
		{name: "a record and its chain entry deleted", index: 7, inError: "deleted", tamper: func(tx *bolt.Tx) error {
			tx.Bucket(bChain).Delete(key(7))
			return tx.Bucket(bRecords).Delete(key(7))
		}},
		{name: "truncated", index: 25, inError: "truncated", tamper: func(tx *bolt.Tx) error {
			for i := uint64(25); i < 35; i++ {
				tx.Bucket(bRecords).Delete(key(i))
				tx.Bucket(bChain).Delete(key(i))
			}
			return nil
		}},
		{name: "checkpoint forged", index: 20, inError: "signature", tamper: func(tx *bolt.Tx) error {
			b := tx.Bucket(bCheckpoints)
			return b.Put(key(20), bytes.Replace(b.Get(key(20)), []byte(`"size":20`), []byte(`"size":21`), 1))
		}},
		{name: "verified with another key", index: 10, inError: "signature", pub: otherPub, tamper: func(tx *bolt.Tx) error { return nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := build(t, 35)
			tamper(t, path, c.tamper)
			key := pub
			if c.pub != nil {
				key = c.pub
			}
			_, err := VerifyFile(path, key)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("tampering not detected: %v", err)
			}
			if p.Index != c.index || !strings.Contains(p.Reason, c.inError) {
				t.Fatalf("problem %v, want record %d with %q", p, c.index, c.inError)
			}
		})
	}
}

// TestRunOwnsTheCommitter: Run commits until its context ends, and
// commits what is queued then; a second Run is refused; records added after
// Run returned, or with no Run at all, are committed by Close.
func TestRunOwnsTheCommitter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	if err := l.AddSync(t.Context(), KindStart, map[string]string{"version": "test"}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		l.Add(KindDecision, map[string]string{"decision": "stop"})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n, _ := l.Head(); n != 21 {
		t.Fatalf("after Run: %d records committed, want 21", n)
	}
	if err := l.Run(t.Context()); err == nil {
		t.Fatal("second Run: no error")
	}
	for range 5 {
		l.Add(KindDecision, map[string]string{"decision": "pass"})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(t.Context()); err == nil {
		t.Fatal("Run after Close: no error")
	}
	pub, _ := testKey()
	rep, err := VerifyFile(path, pub)
	if err != nil || rep.Records != 26 {
		t.Fatalf("report %+v err %v, want 26 records", rep, err)
	}
}

func TestReopenContinuesTheChain(t *testing.T) {
	path := build(t, 5)
	l, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Several records in one group commit, the way a busy gateway adds them.
	for range 50 {
		l.Add(KindStart, map[string]string{"version": "test"})
	}
	l.Close()
	pub, _ := testKey()
	rep, err := VerifyFile(path, pub)
	if err != nil || rep.Records != 55 {
		t.Fatalf("report %+v err %v", rep, err)
	}
}

// TestQueueFullLeavesAGap fills the queue while the committer is held: the
// records that did not fit are counted, and a gap record in the chain
// stands where they were lost, with how many.
func TestQueueFullLeavesAGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := open(path, slog.New(slog.DiscardHandler), 8)
	if err != nil {
		t.Fatal(err)
	}
	go l.Run(t.Context())
	const total = 5000
	l.mu.Lock() // the committer waits here with at most one batch
	for i := range total / 2 {
		l.Add(KindDecision, map[string]int{"n": i})
	}
	l.mu.Unlock()
	for i := total / 2; i < total; i++ {
		l.Add(KindDecision, map[string]int{"n": i})
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // let the committer keep up now
		}
	}
	lost := l.Lost()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if lost == 0 {
		t.Fatal("nothing lost: the test did not fill the queue")
	}
	pub, _ := testKey()
	rep, err := VerifyFile(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lost != lost || rep.GapCount == 0 || rep.Records != total-lost+uint64(rep.GapCount) {
		t.Fatalf("lost %d, report %+v", lost, rep)
	}
	// Walk the chain: where n jumps, the gap records in between account
	// for exactly the records missing.
	var out bytes.Buffer
	if _, err := ExportFile(path, &out, time.Time{}); err != nil {
		t.Fatal(err)
	}
	last, pendingGap := -1, uint64(0)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var el struct {
			Record *Record `json:"record"`
		}
		json.Unmarshal([]byte(line), &el)
		if el.Record == nil {
			continue // the trailer
		}
		switch el.Record.Kind {
		case KindGap:
			var g Gap
			json.Unmarshal(el.Record.Data, &g)
			if g.Reason != "queue_full" || g.Kinds[KindDecision] != g.Lost {
				t.Fatalf("gap record %s", el.Record.Data)
			}
			pendingGap += g.Lost
		case KindDecision:
			var d struct{ N int }
			json.Unmarshal(el.Record.Data, &d)
			if missing := uint64(d.N - last - 1); missing != pendingGap {
				t.Fatalf("record n=%d after n=%d: %d missing, gap records say %d", d.N, last, missing, pendingGap)
			}
			last, pendingGap = d.N, 0
		}
	}
	if missing := uint64(total - 1 - last); missing != pendingGap {
		t.Fatalf("%d lost at the end, gap records say %d", missing, pendingGap)
	}
}

// TestExportCarriesTheChain checks every exported line against the one
// before and the last one against a signed checkpoint, and that the
// export ends with its trailer.
func TestExportCarriesTheChain(t *testing.T) {
	path := build(t, 30) // checkpoints at 10, 20, 30
	var out bytes.Buffer
	since := time.Now().Add(time.Hour) // nothing: only the trailer
	if n, err := ExportFile(path, &out, since); err != nil || n != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("empty export: %d, %v: %s", n, err, out.String())
	}
	out.Reset()
	if _, err := ExportFile(path, &out, time.Time{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 31 {
		t.Fatalf("%d lines", len(lines))
	}
	var prev [32]byte
	for i, line := range lines[:30] {
		var el ExportLine
		if err := json.Unmarshal([]byte(line), &el); err != nil {
			t.Fatal(err)
		}
		if i == 0 && el.Prev != hex.EncodeToString(prev[:]) {
			t.Fatalf("first line prev %q", el.Prev)
		}
		h := chainNext(prev, el.Record)
		if hex.EncodeToString(h[:]) != el.Chain {
			t.Fatalf("line %d: chain %s, recomputed %x", i, el.Chain, h)
		}
		prev = h
	}
	var tr struct{ Trailer *Trailer }
	if err := json.Unmarshal([]byte(lines[30]), &tr); err != nil || tr.Trailer == nil {
		t.Fatalf("no trailer: %s", lines[30])
	}
	db, _ := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	var c Checkpoint
	db.View(func(tx *bolt.Tx) error { return json.Unmarshal(tx.Bucket(bCheckpoints).Get(key(30)), &c) })
	db.Close()
	if c.Head != hex.EncodeToString(prev[:]) || tr.Trailer.Head != c.Head || tr.Trailer.Records != 30 || tr.Trailer.LogSize != 30 {
		t.Fatalf("checkpoint head %s, last line %x, trailer %+v", c.Head, prev, *tr.Trailer)
	}
}

// TestVerifyMemoryBounded verifies a long log and samples the heap: it
// must not grow with the number of records.
func TestVerifyMemoryBounded(t *testing.T) {
	const n = 200000
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	tamper(t, path, func(tx *bolt.Tx) error {
		rb, cb := tx.Bucket(bRecords), tx.Bucket(bChain)
		var h [32]byte
		for i := range uint64(n) {
			raw, _ := json.Marshal(Record{Index: i, Kind: KindDecision, Data: json.RawMessage(`{}`)})
			h = chainNext(h, raw)
			rb.Put(key(i), raw)
			cb.Put(key(i), append([]byte(nil), h[:]...))
		}
		return nil
	})
	// What verify holds once it has walked the whole chain, still inside
	// its transaction: the live heap after a collection.
	runtime.GC()
	runtime.GC() // and the pools emptied
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var held int64
	testHookVerified = func() {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		held = int64(m.HeapAlloc) - int64(base)
	}
	defer func() { testHookVerified = nil }()
	rep, err := VerifyFile(path, nil)
	if err != nil || rep.Records != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	t.Logf("verify held %d bytes at the end of %d records", held, n)
	if held > 1<<20 {
		t.Fatalf("verify held %d bytes at the end of %d records", held, n)
	}
}
