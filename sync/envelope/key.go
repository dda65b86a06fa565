package envelope

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxKeyFile bounds what LoadOrCreateKey reads from a key file.
const maxKeyFile = 4096

// LoadOrCreateKey returns the Ed25519 private key kept in path, creating it
// when the file does not exist (created reports that). The file holds the
// standard base64 of the 32-byte seed and a newline; the base64 of a full
// 64-byte private key is accepted too.
//
// A new key is written to a temporary file in the same directory (mode
// 0600), fsynced, then linked into place without replacing a file that
// appeared meanwhile, and the directory is fsynced: a crash leaves either no
// key or a complete one. An existing key file that is not a regular file or
// that the group or others may access is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, bool, error) {
	key, err := loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("key %s: generate: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(key.Seed()) + "\n")
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, false, fmt.Errorf("key %s: write: %w", path, werr)
	}
	// Link refuses to replace a key another process created meanwhile; only
	// where hard links are not supported does a rename stand in.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err := loadKey(path)
			return key, false, err
		}
		if err := os.Rename(tmpName, path); err != nil {
			return nil, false, fmt.Errorf("key %s: %w", path, err)
		}
	}
	if err := syncDir(dir); err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	return key, true, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key %s: mode %#o: group or others may access it; chmod 600", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key %s: larger than %d bytes", path, maxKeyFile)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("key %s: not standard base64", path)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !key.Equal(ed25519.PrivateKey(raw)) {
			return nil, fmt.Errorf("key %s: public half does not match the seed", path)
		}
		return key, nil
	}
	return nil, fmt.Errorf("key %s: %d bytes, want a %d-byte seed", path, len(raw), ed25519.SeedSize)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
