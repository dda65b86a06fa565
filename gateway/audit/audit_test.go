package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"path/filepath"
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
	if err != nil || n != 35 || strings.Count(out.String(), "\n") != 35 {
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
