package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Problem is the first inconsistency Verify found.
type Problem struct {
	Index  uint64 // the first bad record (or checkpoint size)
	Reason string
}

func (p *Problem) Error() string { return fmt.Sprintf("audit record %d: %s", p.Index, p.Reason) }

// Report is what Verify checked.
type Report struct {
	Records     uint64
	Checkpoints int
	Head        string
	// Lost is the number of records the gap records stand for; Gaps lists
	// the first MaxGapsListed of them.
	Lost     uint64     `json:",omitempty"`
	GapCount int        `json:",omitempty"`
	Gaps     []GapIndex `json:",omitempty"`
}

// GapIndex is a gap record found by Verify.
type GapIndex struct {
	Index uint64 // the gap record's index
	Gap
}

// testHookVerified, when set, runs once the chain is walked.
var testHookVerified func()

// MaxGapsListed bounds Report.Gaps (they are all counted).
const MaxGapsListed = 100

// Verify recomputes the chain from the first record, checks every stored
// chain hash, and checks every checkpoint's size, head and signature with
// pub. It returns a *Problem naming the first bad record. Its memory does
// not grow with the log: the chain and the checkpoints (kept by size) are
// walked side by side. It holds a read transaction for the whole walk: on
// a running gateway, verify a snapshot (VerifyFile) instead.
func (l *Log) Verify(pub ed25519.PublicKey) (Report, error) {
	return verify(l.db, pub)
}

// VerifyFile verifies a log file that no process holds open.
func VerifyFile(path string, pub ed25519.PublicKey) (Report, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return Report{}, lockedErr(fmt.Errorf("audit: open %s: %w", path, err))
	}
	defer db.Close()
	return verify(db, pub)
}

func verify(db *bolt.DB, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	var bad *Problem
	err := db.View(func(tx *bolt.Tx) error {
		rb, cb, kb := tx.Bucket(bRecords), tx.Bucket(bChain), tx.Bucket(bCheckpoints)
		if rb == nil || cb == nil || kb == nil {
			return errors.New("not an audit log")
		}
		// Checkpoints are keyed by size (big-endian), so they come in the
		// order the chain reaches them.
		kc := kb.Cursor()
		kk, kv := kc.First()
		// checkHead checks the checkpoints of size n against the chain's
		// head h after n records.
		checkHead := func(n uint64, h [32]byte) bool {
			for kk != nil && binary.BigEndian.Uint64(kk) <= n {
				size := binary.BigEndian.Uint64(kk)
				rep.Checkpoints++
				var c Checkpoint
				if err := json.Unmarshal(kv, &c); err != nil {
					bad = &Problem{size, "checkpoint unreadable"}
					return false
				}
				sig, err := hex.DecodeString(c.Sig)
				if err != nil || pub == nil || !ed25519.Verify(pub, c.signedBytes(), sig) {
					bad = &Problem{size, "checkpoint signature does not verify"}
					return false
				}
				if c.Size != size || size != n {
					bad = &Problem{size, "checkpoint filed under another size"}
					return false
				}
				if hex.EncodeToString(h[:]) != c.Head {
					bad = &Problem{c.Size, "chain does not match the signed checkpoint (records before it were rewritten)"}
					return false
				}
				kk, kv = kc.Next()
			}
			return true
		}
		var h [32]byte
		if !checkHead(0, h) {
			return nil
		}
		rc, cc := rb.Cursor(), cb.Cursor()
		rk, rv := rc.First()
		ck, cv := cc.First()
		var i uint64
		for ; rk != nil || ck != nil; i++ {
			switch {
			case rk == nil || binary.BigEndian.Uint64(rk) != i:
				bad = &Problem{i, "deleted (its chain entry remains)"}
				if ck == nil || binary.BigEndian.Uint64(ck) != i {
					bad.Reason = "deleted"
				}
				return nil
			case ck == nil || binary.BigEndian.Uint64(ck) != i:
				bad = &Problem{i, "chain entry deleted"}
				return nil
			}
			var r Record
			if err := json.Unmarshal(rv, &r); err != nil || r.Index != i {
				bad = &Problem{i, "unreadable or renumbered"}
				return nil
			}
			h = chainNext(h, rv)
			if !bytes.Equal(h[:], cv) {
				bad = &Problem{i, "content changed (chain hash does not match)"}
				return nil
			}
			if r.Kind == KindGap {
				var g Gap
				json.Unmarshal(r.Data, &g)
				rep.Lost += g.Lost
				rep.GapCount++
				if len(rep.Gaps) < MaxGapsListed {
					rep.Gaps = append(rep.Gaps, GapIndex{Index: i, Gap: g})
				}
			}
			if !checkHead(i+1, h) {
				return nil
			}
			rk, rv = rc.Next()
			ck, cv = cc.Next()
		}
		rep.Records = i
		rep.Head = hex.EncodeToString(h[:])
		if testHookVerified != nil {
			testHookVerified()
		}
		if kk != nil {
			rep.Checkpoints++
			var c Checkpoint
			json.Unmarshal(kv, &c)
			bad = &Problem{rep.Records, fmt.Sprintf("log truncated: a checkpoint covers %d records, the log holds %d", binary.BigEndian.Uint64(kk), rep.Records)}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if bad != nil {
		return rep, bad
	}
	return rep, nil
}
