package store

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Subject keys are one kind byte and the normalized id. Ids are [A-Z0-9],
// so 0x00 separates the two halves of a link key.
var kindByte = map[customs.Kind]byte{customs.Parcel: 'p', customs.Bag: 'b', customs.ULD: 'u', customs.AWB: 'a', customs.Transit: 't'}
var byteKind = map[byte]customs.Kind{'p': customs.Parcel, 'b': customs.Bag, 'u': customs.ULD, 'a': customs.AWB, 't': customs.Transit}

func subjectKey(s customs.Subject) []byte {
	return appendSubjectKey(make([]byte, 0, 1+len(s.ID)), s)
}

// appendSubjectKey appends s's key to k, for lookups that keep the key on
// the stack.
func appendSubjectKey(k []byte, s customs.Subject) []byte {
	var kind byte
	switch s.Kind {
	case customs.Parcel:
		kind = 'p'
	case customs.Bag:
		kind = 'b'
	case customs.ULD:
		kind = 'u'
	case customs.AWB:
		kind = 'a'
	case customs.Transit:
		kind = 't'
	default:
		kind = kindByte[s.Kind] // 0, as the map gives for an unknown kind
	}
	k = append(k, kind)
	return append(k, s.ID...)
}

func keySubject(k []byte) (customs.Subject, error) {
	if len(k) < 2 {
		return customs.Subject{}, errors.New("store: short subject key")
	}
	kind, ok := byteKind[k[0]]
	if !ok {
		return customs.Subject{}, errors.New("store: bad subject key")
	}
	return customs.Subject{Kind: kind, ID: string(k[1:])}, nil
}

// pairKey is a||0||b: the link of b under a (down) or of a under b (up).
func pairKey(a, b customs.Subject) []byte {
	k := subjectKey(a)
	k = append(k, 0)
	return append(k, subjectKey(b)...)
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

var holdReasons = map[string]byte{"inspection": 1, "do_not_load": 2, "detention": 3, "information": 4, "other": 5}
var holdReasonNames = map[byte]string{1: "inspection", 2: "do_not_load", 3: "detention", 4: "information", 5: "other"}

// stateVersion is the encoding of a state. Version 2 adds, after each
// hold's flag byte, the text of a reason not in the list (amendment 2); a
// state is written as version 2 only when one of its holds has such a text,
// so every other state keeps version 1, and a binary that knows only
// version 1 refuses a version 2 state (STOP error: fail closed) instead of
// misreading it.
const (
	stateVersion     = 1
	stateVersionText = 2
)

// encodeState writes a state compactly: the hot bucket holds one per
// subject, and every byte saved is a byte less per dirty page.
func encodeState(st *rules.State) []byte {
	b := make([]byte, 0, 32)
	version := byte(stateVersion)
	for _, h := range st.Holds {
		if h.Text != "" {
			version = stateVersionText
		}
	}
	b = append(b, version, st.RelFlag)
	b = binary.AppendUvarint(b, st.RelSeq)
	// Expiry as presence, seconds and nanoseconds: UnixNano would wrap
	// outside 1678–2262, and 0 must not stand for "none".
	if st.ExpiresAt.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, st.ExpiresAt.Unix())
		b = binary.AppendUvarint(b, uint64(st.ExpiresAt.Nanosecond()))
	}
	b = binary.AppendUvarint(b, st.CancelSeq)
	b = binary.AppendUvarint(b, st.LastSeq)
	b = binary.AppendUvarint(b, uint64(st.Children))
	b = binary.AppendUvarint(b, uint64(st.Parents))
	b = binary.AppendUvarint(b, uint64(len(st.Holds)))
	for _, h := range st.Holds {
		b = binary.AppendUvarint(b, uint64(len(h.ID)))
		b = append(b, h.ID...)
		b = binary.AppendUvarint(b, h.Seq)
		flag := holdReasons[h.Reason]
		if h.Active {
			flag |= 0x80
		}
		b = append(b, flag)
		if version == stateVersionText {
			b = binary.AppendUvarint(b, uint64(len(h.Text)))
			b = append(b, h.Text...)
		}
	}
	b = binary.AppendUvarint(b, st.SealSeq)
	b = binary.AppendUvarint(b, uint64(len(st.Seals)))
	for _, s := range st.Seals {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errCorrupt
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeState(b []byte) (*rules.State, error) {
	r := &reader{b: b}
	version := r.byte1()
	if version != stateVersion && version != stateVersionText {
		return nil, errCorrupt
	}
	st := &rules.State{}
	st.RelFlag = r.byte1()
	st.RelSeq = r.uvarint()
	if r.byte1() == 1 {
		sec, ns := r.varint(), r.uvarint()
		if ns >= 1e9 {
			return nil, errCorrupt
		}
		st.ExpiresAt = time.Unix(sec, int64(ns)).UTC()
	}
	st.CancelSeq = r.uvarint()
	st.LastSeq = r.uvarint()
	st.Children = uint32(r.uvarint())
	st.Parents = uint32(r.uvarint())
	// A subject keeps one slot per hold_id it ever had, and encodeState
	// writes them all: the bound is what the bytes can hold (each slot
	// takes at least 3), not a count, so a state written is always read
	// back. A bound below what Apply can write would make the subject
	// poison every batch that touches it, and ingest would stall.
	n := r.uvarint()
	if n > uint64(len(r.b))/3 {
		return nil, errCorrupt
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		h := rules.HoldSlot{ID: r.str(), Seq: r.uvarint()}
		flag := r.byte1()
		h.Active = flag&0x80 != 0
		h.Reason = holdReasonNames[flag&0x7f]
		if version == stateVersionText {
			h.Text = r.str()
		}
		st.Holds = append(st.Holds, h)
	}
	st.SealSeq = r.uvarint()
	n = r.uvarint()
	if n > customs.MaxSeals {
		return nil, errCorrupt
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		st.Seals = append(st.Seals, r.str())
	}
	if r.err != nil {
		return nil, r.err
	}
	return st, nil
}

// linkVal is the seq and linked flag of one pair.
func encodeLink(l rules.LinkState) []byte {
	b := binary.AppendUvarint(nil, l.Seq)
	if l.Linked {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeLink(b []byte) (rules.LinkState, error) {
	r := &reader{b: b}
	l := rules.LinkState{Seq: r.uvarint()}
	l.Linked = r.byte1() == 1
	return l, r.err
}
