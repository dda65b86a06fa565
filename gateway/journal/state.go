package journal

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// GetState and PutState keep small named records (station state such as an
// open transit) in the journal's file, committed with fsync.
func (j *Journal) GetState(name string) ([]byte, error) {
	var out []byte
	err := j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bState).Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// PutState stores a named record; nil deletes it.
func (j *Journal) PutState(name string, v []byte) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if v == nil {
			return tx.Bucket(bState).Delete([]byte(name))
		}
		return tx.Bucket(bState).Put([]byte(name), v)
	})
}

// Path is the journal's file.
func (j *Journal) Path() string { return j.db.Path() }

// Backup writes a consistent copy of the journal from one read transaction,
// after moving the logged events into the file: the copy holds every
// event appended before Backup was called.
func (j *Journal) Backup(w io.Writer) (int64, error) {
	if err := j.moveAll(); err != nil {
		return 0, err
	}
	var n int64
	err := j.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
