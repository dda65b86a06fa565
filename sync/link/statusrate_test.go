package link

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/sync/envelope"
)

// statuses returns the status documents published so far.
func (c *fakeConn) statuses(t *testing.T) []customs.Status {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []customs.Status
	for _, m := range c.sent {
		if !strings.HasSuffix(m.topic, "/"+customs.LeafStatus) {
			continue
		}
		payload, _, err := envelope.Keyring{ctlKey.Kid: ctlKey.Public()}.Open(m.data)
		if err != nil {
			t.Fatalf("status not signed: %v", err)
		}
		var s customs.Status
		if err := json.Unmarshal(payload, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// While orders apply, the status changes with every commit: it goes out at
// most once a second (a site of dozens of gateways sent central several a
// second each), the last change within a second, and at once on a
// reconnection.
func TestStatusRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, c := controlRig(t, 0, time.Minute, time.Minute)
		start := time.Now()
		if n := len(c.statuses(t)); n != 1 {
			t.Fatalf("%d statuses at connection, want 1", n)
		}
		// 10 s of commits, one every 50 ms, each kicking the status.
		for range 200 {
			time.Sleep(50 * time.Millisecond)
			l.watermark.Add(1)
			l.head.Store(l.watermark.Load())
			l.kickStatus()
		}
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		got := c.statuses(t)
		for i := 1; i < len(got); i++ {
			if d := got[i].At.Sub(got[i-1].At); d < time.Second {
				t.Fatalf("statuses %d and %d %v apart, want at least 1 s", i-1, i, d)
			}
		}
		if n := len(got); n > 13 || n < 10 {
			t.Fatalf("%d statuses over %v of changes, want about one a second", n, time.Since(start))
		}
		if last := got[len(got)-1]; last.AppliedSeq != 200 {
			t.Fatalf("last status applied_seq %d, want 200 (the last change)", last.AppliedSeq)
		}

		// A reconnection 200 ms after a change's status: sent at once.
		l.watermark.Add(1)
		l.kickStatus()
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		n := len(c.statuses(t))
		time.Sleep(200 * time.Millisecond)
		l.setOnline(false) // the connection lost, and back
		synctest.Wait()
		reconnect := time.Now()
		l.setOnline(true)
		l.connected <- struct{}{}
		synctest.Wait()
		got = c.statuses(t)
		if len(got) != n+1 || !got[n].At.Equal(reconnect.UTC()) {
			t.Fatalf("statuses %d -> %d; want one more at the reconnection", n, len(got))
		}
	})
}
