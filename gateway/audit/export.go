package audit

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ExportLine is one line of an export: a record exactly as it was
// chained, and the chain hash after it. Prev, on the first line only, is
// the chain hash before it, so that each line can be checked from the one
// before: chain = SHA-256(prev chain ‖ SHA-256(record bytes)). The chain
// hash of record Size-1 is the head of a checkpoint of that size.
type ExportLine struct {
	Prev   string          `json:"prev,omitempty"`
	Chain  string          `json:"chain"`
	Record json.RawMessage `json:"record"`
}

// Trailer is the last line of a complete export. An export without it was
// cut short.
type Trailer struct {
	Records uint64 `json:"records"`  // lines exported
	LogSize uint64 `json:"log_size"` // records in the log
	Head    string `json:"head"`     // chain hash after the log's last record
}

// Export writes the records at or after since as JSON lines (ExportLine),
// then a {"trailer": Trailer} line. It reads from one transaction, at the
// pace of w: on a running gateway, export to a file first.
func (l *Log) Export(w io.Writer, since time.Time) (int, error) { return export(l.db, w, since) }

// ExportFile exports from a log file that no process holds open.
func ExportFile(path string, w io.Writer, since time.Time) (int, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return 0, lockedErr(fmt.Errorf("audit: open %s: %w", path, err))
	}
	defer db.Close()
	return export(db, w, since)
}

func export(db *bolt.DB, w io.Writer, since time.Time) (int, error) {
	n := 0
	err := db.View(func(tx *bolt.Tx) error {
		rb, cb := tx.Bucket(bRecords), tx.Bucket(bChain)
		if rb == nil || cb == nil {
			return errors.New("not an audit log")
		}
		prev := make([]byte, 32)
		var size uint64
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // the record's bytes exactly as chained
		c := rb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			size = binary.BigEndian.Uint64(k) + 1
			chain := cb.Get(k)
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", size-1, err)
			}
			if !r.At.Before(since) {
				line := ExportLine{Chain: hex.EncodeToString(chain), Record: v}
				if n == 0 {
					line.Prev = hex.EncodeToString(prev)
				}
				if err := enc.Encode(line); err != nil {
					return err
				}
				n++
			}
			prev = append(prev[:0], chain...)
		}
		return enc.Encode(map[string]Trailer{"trailer": {Records: uint64(n), LogSize: size, Head: hex.EncodeToString(prev)}})
	})
	if err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}
