package faults

import (
	"testing"
)

// TestOutboxFull: with the link down, scans fill a small outbox. The alarm
// is raised (status) well before anything is refused; once full, a scan's
// event cannot be kept, so the scan is decided STOP and counted, never
// passed unrecorded. When the link is back the outbox drains, the alarm
// clears and scans pass again.
func TestOutboxFull(t *testing.T) {
	s := newSite(t, siteOpts{proxy: true, outbox: "{max_events: 20, alarm_percent: 50, redeliver_window: 10s}"})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	p := parcel(600001)
	s.issue(release(p))
	s.converge()
	s.proxy.Cut()
	s.waitFor("offline", func(st gwStatus) bool { return !st.Link.Online && !st.Link.PubOnline })
	alarmAt, firstStop := 0, 0
	for i := 1; i <= 25; i++ {
		f := s.scan(p.ID)
		st, _ := s.status()
		if alarmAt == 0 && st.Link.OutboxH != nil && st.Link.OutboxH.Alarm {
			alarmAt = i
			if len(st.Alarms) == 0 {
				t.Errorf("outbox alarm not among the status alarms")
			}
		}
		if f == "STOP" && firstStop == 0 {
			firstStop = i
		}
	}
	st, _ := s.status()
	t.Logf("outbox of 20: alarm from scan %d, first STOP at scan %d; %+v alarms %q", alarmAt, firstStop, st.Link.OutboxH, st.Alarms)
	// The device events of startup take room too, so the counts shift by
	// what was pending; the order is what matters.
	if alarmAt == 0 || firstStop == 0 || alarmAt >= firstStop {
		t.Fatalf("alarm at scan %d, first refusal at scan %d: the alarm must come first", alarmAt, firstStop)
	}
	if st.Link.OutboxH == nil || st.Link.OutboxH.Refused == 0 {
		t.Fatalf("refusals not counted: %+v", st.Link.OutboxH)
	}
	s.proxy.Restore()
	s.converge()
	st = s.waitFor("alarm cleared", func(st gwStatus) bool { return st.Link.OutboxH != nil && !st.Link.OutboxH.Alarm })
	if got := s.scan(p.ID); got != "PASS" {
		t.Errorf("after the outbox drained: %s, want PASS", got)
	}
	r := s.finalCheck()
	t.Logf("outbox full: %s", r)
}
