package envelope

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "gateway.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	again, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("load: created=%v err=%v", created, err)
	}
	if !again.Equal(key) {
		t.Fatal("loaded key differs from the created one")
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: err = %v", err)
	}
	if err := os.Chmod(path, 0o604); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("world-readable key accepted")
	}
}

func TestLoadKeyRejectsJunk(t *testing.T) {
	for name, content := range map[string]string{
		"not base64": "hello world\n",
		"short":      "AAAA\n",
		"mismatch":   strings.Repeat("A", 86) + "==\n", // 64 zero bytes: public half wrong
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadOrCreateKey(path); err == nil {
				t.Fatal("junk key accepted")
			}
		})
	}
	if _, _, err := LoadOrCreateKey(t.TempDir()); err == nil {
		t.Fatal("directory accepted as a key file")
	}
}
