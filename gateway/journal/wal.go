package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The log (LogPath: the journal's file name + ".wal") is where an Append
// is made durable: one write of the group's records at the end of the
// log and one fdatasync, nothing else. The file is filled with zeros when
// it is made (and when it grows), so every later write lands on blocks
// already allocated and written: fdatasync then has no metadata to flush.
//
// Layout: a 16-byte header (walMagic, then zeros), then records:
//
//	u32 BE  length of the event
//	u32 BE  CRC-32C of the length, seq, at and event bytes
//	u64 BE  journal seq
//	u64 BE  append time, Unix nanoseconds
//	        the event
//
// The mover copies records into the bbolt file (the pending bucket, whose
// sequence then says up to which seq the log has been moved: the
// watermark). Once every record written is below the watermark, the next
// write starts again at the header: the log is recycled, and what follows
// the new records is left from before. Reading stops at the first record
// that is short, fails its CRC, or whose seq does not follow the previous
// one; records at or below the watermark are skipped. An old record can
// therefore never be taken for a new one: every seq written after a
// recycle is above all the seqs before it.
const (
	walMagic  = "cargogate wal 1\x00"
	walHeader = len(walMagic)
	recHeader = 4 + 4 + 8 + 8
	// DefaultLogBytes is Options.LogBytes' default.
	DefaultLogBytes = 1 << 20
	minLogBytes     = 64 << 10
)

// maxRecord bounds a record's event length: Append refuses a longer event
// (ErrTooLarge), and reading the log stops at a record claiming more. A
// variable for the tests.
var maxRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// syncData is fdatasync; a test makes it fail.
var syncData = fdatasync

// LogPath is the log file beside the journal's file path.
func LogPath(path string) string { return path + ".wal" }

type logRec struct {
	seq  uint64
	at   int64
	data []byte
}

type wal struct {
	f    *os.File
	size int64  // bytes in the file, every one of them written
	off  int64  // where the next record goes
	last uint64 // seq of the last record written since the last recycle; 0: none
	want int64  // the size the file is made with
	// dirty: the file holds something besides its header and zeros (read
	// at open); shrink then makes it anew.
	dirty bool
}

// openWAL opens or makes the log and returns the records it holds, in
// order (the caller skips those it already has).
func openWAL(path string, size int64) (*wal, []logRec, error) {
	size = max(size, minLogBytes)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	w := &wal{f: f, off: int64(walHeader), want: size}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	w.size = st.Size()
	head := make([]byte, walHeader)
	if w.size >= int64(walHeader) {
		if _, err := f.ReadAt(head, 0); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if w.size < int64(walHeader) || bytes.Equal(head, make([]byte, walHeader)) {
		// New, or made by a process killed before its header was written.
		// The directory is synced whether or not the file existed: a
		// process killed before its header was written was killed before
		// it synced the directory, too.
		if err := w.init(); err != nil {
			f.Close()
			return nil, nil, err
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, nil, err
		}
		return w, nil, nil
	}
	if string(head) != walMagic {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, errNotLog)
	}
	buf := make([]byte, w.size)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		f.Close()
		return nil, nil, err
	}
	recs := parseLog(buf)
	w.dirty = bytes.ContainsFunc(buf[walHeader:], func(r rune) bool { return r != 0 })
	if w.size < size {
		if err := w.grow(size); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	return w, recs, nil
}

// parseLog reads the chain of whole, intact, consecutive records after the
// header.
func parseLog(buf []byte) []logRec {
	var recs []logRec
	off := walHeader
	var prev uint64
	for off+recHeader <= len(buf) {
		h := buf[off : off+recHeader]
		n := int(binary.BigEndian.Uint32(h[0:4]))
		if n > maxRecord || off+recHeader+n > len(buf) {
			break
		}
		data := buf[off+recHeader : off+recHeader+n]
		if recCRC(h, data) != binary.BigEndian.Uint32(h[4:8]) {
			break
		}
		seq := binary.BigEndian.Uint64(h[8:16])
		if seq == 0 || (prev != 0 && seq != prev+1) {
			break
		}
		recs = append(recs, logRec{seq: seq, at: int64(binary.BigEndian.Uint64(h[16:24])), data: data})
		prev = seq
		off += recHeader + n
	}
	return recs
}

func recCRC(h, data []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[0:4])
	c = crc32.Update(c, castagnoli, h[8:recHeader])
	return crc32.Update(c, castagnoli, data)
}

// appendRec encodes one record at the end of buf.
func appendRec(buf []byte, seq uint64, at int64, data []byte) []byte {
	var h [recHeader]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(data)))
	binary.BigEndian.PutUint64(h[8:16], seq)
	binary.BigEndian.PutUint64(h[16:24], uint64(at))
	binary.BigEndian.PutUint32(h[4:8], recCRC(h[:], data))
	buf = append(buf, h[:]...)
	return append(buf, data...)
}

// init writes the header and zeros up to w.want, then syncs the file.
func (w *wal) init() error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	w.size = 0
	if err := w.fill(w.want); err != nil {
		return err
	}
	if _, err := w.f.WriteAt([]byte(walMagic), 0); err != nil {
		return err
	}
	return w.f.Sync()
}

// fill writes zeros from the end of the file up to size.
func (w *wal) fill(size int64) error {
	zeros := make([]byte, 1<<20)
	for w.size < size {
		n := min(int64(len(zeros)), size-w.size)
		if _, err := w.f.WriteAt(zeros[:n], w.size); err != nil {
			return err
		}
		w.size += n
	}
	return nil
}

// grow makes the file size bytes long, zero-filled, and syncs it with its
// metadata (the new length).
func (w *wal) grow(size int64) error {
	if err := w.fill(size); err != nil {
		return err
	}
	return w.f.Sync()
}

// write appends buf, holding records last-n+1 .. last, and syncs its data.
// The log grows (doubling) when buf does not fit.
func (w *wal) write(buf []byte, last uint64) error {
	if end := w.off + int64(len(buf)); end > w.size {
		if err := w.grow(max(2*w.size, end+w.want)); err != nil {
			return fmt.Errorf("grow log: %w", err)
		}
	}
	_, err := w.f.WriteAt(buf, w.off)
	if err == nil {
		err = syncData(w.f)
	}
	if err != nil {
		// The next write goes to the same place, with the same seqs; zero
		// what may have been written (best effort), so that a shorter next
		// group is not followed by records whose appends failed; and sync
		// the zeros, so that a crash before the next group's sync cannot
		// bring back, as events, appends that were answered with an error.
		if _, zerr := w.f.WriteAt(make([]byte, len(buf)), w.off); zerr == nil {
			syncData(w.f)
		}
		return err
	}
	w.off += int64(len(buf))
	w.last = last
	return nil
}

// recycle makes the next write start at the header again. Every record
// written must be in the bbolt file by then.
func (w *wal) recycle() {
	w.off = int64(walHeader)
	w.last = 0
}

// clear recycles and overwrites the first record's header, so that the log
// reads as empty (a stopped gateway's file is then whole without it).
func (w *wal) clear() error {
	w.recycle()
	if _, err := w.f.WriteAt(make([]byte, recHeader), int64(walHeader)); err != nil {
		return err
	}
	return fdatasync(w.f)
}

// syncDir is syncDirectory; a test watches it.
var syncDir = syncDirectory

func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// shrink recycles the log, whose records the bbolt file has, and cuts it
// back to its usual size if it grew to more than twice that. A log that
// holds anything but zeros after its header is made anew (zeros, synced):
// its records were written by an earlier run, whose seqs this run may
// give again (a journal file restored from a backup starts below them),
// and a record of this run must never be followed on reading by one of
// those whose seq happens to follow its own.
func (w *wal) shrink() error {
	w.recycle()
	changed := false
	if w.size > 2*w.want {
		if err := w.f.Truncate(w.want); err != nil {
			return err
		}
		w.size = w.want
		changed = true
	}
	if w.dirty {
		// In place, over blocks the file has: this needs no free space
		// (a gateway restarted on a full disk still opens).
		zeros := make([]byte, 1<<20)
		for off := int64(walHeader); off < w.size; off += int64(len(zeros)) {
			n := min(int64(len(zeros)), w.size-off)
			if _, err := w.f.WriteAt(zeros[:n], off); err != nil {
				return err
			}
		}
		w.dirty = false
		changed = true
	}
	if !changed {
		return nil
	}
	return w.f.Sync()
}
