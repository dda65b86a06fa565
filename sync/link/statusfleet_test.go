package link

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
	"github.com/cargogate/cargogate/sync/envelope"
)

// agedOutbox has events waiting, the oldest appended at oldest.
type agedOutbox struct {
	fakeOutbox
	n      int
	oldest time.Time
}

func (o *agedOutbox) Depth() (int, int64) { return o.n, int64(100 * o.n) }
func (o *agedOutbox) Health() persist.OutboxHealth {
	return persist.OutboxHealth{Events: o.n, Writable: true}
}
func (o *agedOutbox) OldestPending() (time.Time, bool, error) { return o.oldest, o.n > 0, nil }

// The status carries the fleet view's additions (docs/protocol.md): the
// age of the oldest unacknowledged event and the last audit checkpoint's
// time, under outbox_oldest_s and checkpoint_at; and it goes out at least
// every 30 s with nothing changed, so a fleet view's "last seen" stays
// fresh.
func TestStatusFleetFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		cp := start.Add(-90 * time.Second)
		ob := &agedOutbox{fakeOutbox: fakeOutbox{notify: make(chan struct{})}, n: 3, oldest: start.Add(-42 * time.Second)}
		l, err := New(Options{Site: "PVG-W", Gateway: "g07", Signer: ctlKey, Version: "1.2.3",
			Checkpoint: func() (time.Time, bool) { return cp, true }},
			&fakeStore{persist.Progress{Watermark: 5, MaxSeq: 5, Head: 8}}, ob, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := l.status("online")
		if st.Outbox != 3 || st.OutboxOldest != 42 || st.CheckpointAt == nil || !st.CheckpointAt.Equal(cp) || st.Version != "1.2.3" {
			t.Fatalf("status = %+v, want outbox 3, oldest 42 s, checkpoint at %v", st, cp)
		}
		raw, _ := json.Marshal(st)
		for _, k := range []string{`"outbox_oldest_s":42`, `"checkpoint_at":"`, `"head_seq":8`, `"applied_seq":5`} {
			if !strings.Contains(string(raw), k) {
				t.Errorf("status JSON %s lacks %s", raw, k)
			}
		}

		// Published on the control loop: once at connection, then with
		// nothing changing at least every 30 s.
		c := &fakeConn{}
		l.conn = c
		go l.newControl().Run(t.Context())
		l.setOnline(true)
		l.connected <- struct{}{}
		time.Sleep(95 * time.Second)
		synctest.Wait()
		var got []customs.Status
		c.mu.Lock()
		for _, m := range c.sent {
			if !strings.HasSuffix(m.topic, "/"+customs.LeafStatus) {
				continue
			}
			payload, _, err := envelope.Keyring{ctlKey.Kid: ctlKey.Public()}.Open(m.data)
			if err != nil {
				t.Fatalf("status not signed: %v", err)
			}
			var s customs.Status
			json.Unmarshal(payload, &s)
			got = append(got, s)
		}
		c.mu.Unlock()
		if len(got) < 4 {
			t.Fatalf("%d statuses in 95 s, want at least 4 (at connection, then every 30 s)", len(got))
		}
		if last := got[len(got)-1]; last.CheckpointAt == nil || last.OutboxOldest < 42+90-1 {
			t.Errorf("last status %+v: want checkpoint_at and the oldest event's age grown to about 132 s", last)
		}
	})
}
