package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// View runs fn with a read-only view of the store. Keep fn short: a long
// read transaction holds pages the writer cannot reuse.
func (s *Store) View(fn func(v rules.View) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(newTxView(tx)) })
}

// Decide decides a scan of subj at now from the store. Any error decides
// STOP (error).
func (s *Store) Decide(subj customs.Subject, now time.Time) rules.Decision {
	var d rules.Decision
	err := s.View(func(v rules.View) error {
		d = rules.Decide(v, subj, now)
		return nil
	})
	if err != nil {
		return rules.Decision{Reason: customs.ReasonError, Chain: []rules.Step{{Subject: subj, What: "error: " + err.Error()}}}
	}
	return d
}

// txView reads one transaction. Its buckets are looked up once: a ULD's
// decision reads thousands of states, and each tx.Bucket is a lookup of
// its own.
type txView struct{ subj, up, down *bolt.Bucket }

func newTxView(tx *bolt.Tx) txView {
	return txView{subj: tx.Bucket(bSubj), up: tx.Bucket(bUp), down: tx.Bucket(bDown)}
}

var _ rules.View = txView{}

func (v txView) State(sub customs.Subject) (*rules.State, error) {
	var kb [64]byte
	val := v.subj.Get(appendSubjectKey(kb[:0], sub))
	if val == nil {
		return nil, nil
	}
	st, err := decodeState(val)
	if err != nil {
		return nil, fmt.Errorf("subject %s: %w", sub, err)
	}
	return st, nil
}

func (v txView) related(b *bolt.Bucket, sub customs.Subject) ([]customs.Subject, error) {
	var kb [64]byte
	prefix := append(appendSubjectKey(kb[:0], sub), 0)
	c := b.Cursor()
	var out []customs.Subject
	for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
		l, err := decodeLink(val)
		if err != nil {
			return nil, fmt.Errorf("link of %s: %w", sub, err)
		}
		if !l.Linked {
			continue
		}
		o, err := keySubject(k[len(prefix):])
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func (v txView) Parents(sub customs.Subject) ([]customs.Subject, error) {
	return v.related(v.up, sub)
}

func (v txView) Children(sub customs.Subject) ([]customs.Subject, error) {
	return v.related(v.down, sub)
}
