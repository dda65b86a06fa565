package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
)

func TestHelpAndPrintPubkey(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "Example:") || !strings.Contains(errb.String(), "-gateway-key") {
		t.Errorf("help lacks the example:\n%s", errb.String())
	}

	keyPath := filepath.Join(t.TempDir(), "central.key")
	out.Reset()
	if err := run(context.Background(), []string{"-key", keyPath, "-print-pubkey"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	pub, err := envelope.ParsePublicKey(out.String())
	if err != nil {
		t.Fatalf("printed %q: %v", out.String(), err)
	}
	key, created, err := envelope.LoadOrCreateKey(keyPath)
	if err != nil || created || !key.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("printed key is not the file's: %v", err)
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %#o", st.Mode().Perm())
	}

	for _, args := range [][]string{{"-key", keyPath}, {"-key", keyPath, "-site", "X", "extra"}, {"-nope"}, {"-gateway-key", "novalue"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run %q succeeded", args)
		}
	}
}

func TestRunServesOrdersFile(t *testing.T) {
	broker, _ := testenv.StartMosquitto(t)
	dir := t.TempDir()
	orders := filepath.Join(dir, "orders.jsonl")
	os.WriteFile(orders, []byte(`{"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}}`+"\n"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-site", "PVG-W", "-broker", broker, "-db", filepath.Join(dir, "c.db"),
			"-key", filepath.Join(dir, "c.key"), "-http", addr, "-orders", orders, "-generate", "50"}, io.Discard, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/head")
		if err == nil {
			var h struct{ Seq uint64 }
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Seq == 51 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("head did not reach 51: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
