package screens

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// Alarm kinds raised by the overview.
const (
	AlarmDeviceDown       = "device_down"        // a scanner or gate is down or in fault
	AlarmLinkOffline      = "link_offline"       // the order link to central is down
	AlarmOutboxFilling    = "outbox_filling"     // undelivered events at or above OutboxAlarm
	AlarmClockTrouble     = "clock_trouble"      // the wall clock lags central's time by ClockAlarm or more
	AlarmStoreNotWritable = "store_not_writable" // the last scan could not be recorded (decided STOP)
	AlarmOrderGap         = "order_gap"          // an order central sent cannot be applied, or its replay did not deliver a seq: the seq stays a gap
	AlarmAuditLost        = "audit_records_lost" // the audit log could not take records (a gap record says how many)
)

// Alarm is one thing the supervisor must act on.
type Alarm struct {
	Kind    string    `json:"kind"`
	Station string    `json:"station,omitempty"`
	Device  string    `json:"device,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Detail  string    `json:"detail,omitempty"`
}

// Overview is the supervisor's document: pushed every second over the
// WebSocket and served on /api/overview.
type Overview struct {
	At       time.Time       `json:"at"`
	Status   json.RawMessage `json:"status"` // the /api/status document as it is
	Stations []StationView   `json:"stations"`
	Counts   Counts          `json:"counts"`
	Alarms   []Alarm         `json:"alarms"`
	Recent   []scan.Outcome  `json:"recent"` // the last scans of all stations, newest last
	Screens  int             `json:"screens"`
	// Dropped counts outcomes the screens missed because the hub was
	// behind; Slow counts screens dropped for not keeping up.
	Dropped uint64 `json:"dropped"`
	Slow    uint64 `json:"slow_screens_dropped"`
}

// StationView is one station on the overview.
type StationView struct {
	StationInfo
	Devices map[string]DeviceState `json:"devices"`
	Gate    GateState              `json:"gate_state"`
	Last    *scan.Outcome          `json:"last,omitempty"`
	Pass    int                    `json:"pass"` // over the last hour
	Stop    int                    `json:"stop"`
	// Transit is the open transit of an arrival station; nil when none.
	Transit *TransitBrief `json:"transit,omitempty"`
}

// Counts are decisions over the last hour.
type Counts struct {
	WindowS  int            `json:"window_s"`
	Pass     int            `json:"pass"`
	Stop     int            `json:"stop"`
	ByReason map[string]int `json:"by_reason"`
}

// window counts decisions in one-minute buckets over the last hour.
type window struct {
	buckets [60]bucket
}

type bucket struct {
	minute   int64 // Unix minute; 0 = empty
	pass     int
	stop     int
	reasons  map[string]int
	stations map[string][2]int // pass, stop
}

func (w *window) add(now time.Time, st string, pass bool, reason string) {
	m := now.Unix() / 60
	b := &w.buckets[m%60]
	if b.minute != m {
		*b = bucket{minute: m, reasons: map[string]int{}, stations: map[string][2]int{}}
	}
	c := b.stations[st]
	if pass {
		b.pass++
		c[0]++
	} else {
		b.stop++
		c[1]++
	}
	b.stations[st] = c
	b.reasons[reason]++
}

// sum adds up the buckets of the last 60 minutes, this one included.
func (w *window) sum(now time.Time) (Counts, map[string][2]int) {
	m := now.Unix() / 60
	c := Counts{WindowS: 3600, ByReason: map[string]int{}}
	per := map[string][2]int{}
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.minute == 0 || b.minute <= m-60 || b.minute > m {
			continue
		}
		c.Pass += b.pass
		c.Stop += b.stop
		for r, n := range b.reasons {
			c.ByReason[r] += n
		}
		for s, n := range b.stations {
			p := per[s]
			p[0] += n[0]
			p[1] += n[1]
			per[s] = p
		}
	}
	return c, per
}

// statusView is what the overview reads from the status document. Every
// field but link.online/since/outbox is optional: a status without it
// raises no alarm from it.
type statusView struct {
	Audit *struct {
		Lost uint64 `json:"lost"`
	} `json:"audit"`
	Link *struct {
		Online bool      `json:"online"`
		Since  time.Time `json:"since"`
		Outbox int       `json:"outbox"`
		// The order store and the outbox (event journal) commit.
		StoreWritable  *bool  `json:"store_writable"`
		StoreError     string `json:"store_error"`
		OutboxWritable *bool  `json:"outbox_writable"`
		OutboxHealth   *struct {
			Alarm     bool   `json:"alarm"`
			LastError string `json:"last_error"`
		} `json:"outbox_health"`
		// Seqs held open by orders that cannot be applied (amendment 2).
		AppliedSeq      uint64 `json:"applied_seq"`
		UnappliableOpen int    `json:"unappliable_open"`
		UnappliableSeqs []struct {
			Seq   uint64    `json:"seq"`
			Since time.Time `json:"since"`
			Error string    `json:"error"`
		} `json:"unappliable_seqs"`
		// Seqs a resync asked for and central's replay did not deliver.
		UndeliveredOpen uint64 `json:"undelivered_open"`
		UndeliveredSeqs []struct {
			From   uint64    `json:"from"`
			To     uint64    `json:"to"`
			Beyond bool      `json:"beyond_replay"`
			Since  time.Time `json:"since"`
		} `json:"undelivered_seqs"`
	} `json:"link"`
	ClockBehindS float64 `json:"clock_behind_s"`
	Stations     []struct {
		ID      string                  `json:"id"`
		Devices map[string]device.State `json:"devices"`
	} `json:"stations"`
}

// Overview builds the supervisor's document now.
func (h *Hub) Overview() Overview {
	raw, err := json.Marshal(h.opt.Status())
	if err != nil {
		raw = []byte("{}")
	}
	var sv statusView
	_ = json.Unmarshal(raw, &sv)
	now := h.opt.Now().UTC()
	o := Overview{At: now, Status: raw, Dropped: h.dropped.Load(), Slow: h.slow.Load()}

	h.mu.Lock()
	defer h.mu.Unlock()
	// Device states the status knows and the hub has not heard (a hub
	// that missed a change) are taken from the status.
	for _, ss := range sv.Stations {
		s := h.stationLocked(ss.ID)
		for d, st := range ss.Devices {
			if _, ok := s.devices[d]; !ok {
				s.devices[d] = DeviceState{State: st}
			}
		}
	}
	var per map[string][2]int
	o.Counts, per = h.counts.sum(now)
	o.Screens = len(h.clients)
	o.Recent = make([]scan.Outcome, 0, len(h.recent))
	for _, r := range h.recent {
		r.Chain, r.Blocking = nil, nil // the overview lists scans; the chains are on the other screens
		o.Recent = append(o.Recent, r)
	}
	for _, id := range h.order {
		s := h.stations[id]
		v := StationView{StationInfo: s.info, Devices: maps.Clone(s.devices), Gate: s.gate,
			Pass: per[id][0], Stop: per[id][1], Transit: s.brief()}
		// The last decision: a seal scan or a transit closing is not one.
		for i := len(s.recent) - 1; i >= 0; i-- {
			if isDecision(s.recent[i]) {
				last := s.recent[i]
				last.Chain, last.Blocking = nil, nil
				v.Last = &last
				break
			}
		}
		o.Stations = append(o.Stations, v)
		devs := make([]string, 0, len(s.devices))
		for d := range s.devices {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		for _, d := range devs {
			if ds := s.devices[d]; ds.State == device.Down || ds.State == device.Fault {
				o.Alarms = append(o.Alarms, Alarm{Kind: AlarmDeviceDown, Station: id, Device: d, Since: ds.Since, Detail: ds.Detail})
			}
		}
	}
	if l := sv.Link; l != nil {
		if !l.Online {
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmLinkOffline, Since: l.Since})
		}
		if l.Outbox >= h.opt.OutboxAlarm || (l.OutboxHealth != nil && l.OutboxHealth.Alarm) {
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmOutboxFilling, Detail: strconv.Itoa(l.Outbox) + " events not yet delivered"})
		}
		if l.StoreWritable != nil && !*l.StoreWritable {
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmStoreNotWritable, Device: "orders", Detail: l.StoreError})
		}
		if l.OutboxWritable != nil && !*l.OutboxWritable {
			d := ""
			if l.OutboxHealth != nil {
				d = l.OutboxHealth.LastError
			}
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmStoreNotWritable, Device: "events", Detail: d})
		}
		if l.UnappliableOpen > 0 && len(l.UnappliableSeqs) > 0 {
			g := l.UnappliableSeqs[0]
			d := "seq " + strconv.FormatUint(g.Seq, 10) + " cannot be applied (" + g.Error + "); applied up to " +
				strconv.FormatUint(l.AppliedSeq, 10) + "; asked of central again every resync_timeout"
			if l.UnappliableOpen > 1 {
				d += "; " + strconv.Itoa(l.UnappliableOpen) + " such seqs open"
			}
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmOrderGap, Since: g.Since, Detail: d})
		}
		if l.UndeliveredOpen > 0 && len(l.UndeliveredSeqs) > 0 {
			r := l.UndeliveredSeqs[0]
			run := strconv.FormatUint(r.From, 10)
			if r.To != r.From {
				run += "–" + strconv.FormatUint(r.To, 10)
			}
			d := "seqs " + run + " not delivered by central's replay"
			if r.Beyond {
				d += " (announced, but above what it can replay)"
			}
			d += "; applied up to " + strconv.FormatUint(l.AppliedSeq, 10) + "; asked of central again every resync_timeout"
			if len(l.UndeliveredSeqs) > 1 {
				d += "; " + strconv.FormatUint(l.UndeliveredOpen, 10) + " such seqs open"
			}
			o.Alarms = append(o.Alarms, Alarm{Kind: AlarmOrderGap, Since: r.Since, Detail: d})
		}
	}
	if behind := time.Duration(sv.ClockBehindS * float64(time.Second)); behind >= h.opt.ClockAlarm {
		o.Alarms = append(o.Alarms, Alarm{Kind: AlarmClockTrouble, Detail: "wall clock " + behind.Round(time.Second).String() + " behind central's time"})
	}
	if sv.Audit != nil && sv.Audit.Lost > 0 {
		o.Alarms = append(o.Alarms, Alarm{Kind: AlarmAuditLost, Device: "audit",
			Detail: strconv.FormatUint(sv.Audit.Lost, 10) + " audit records lost since the gateway started; `cargogate audit verify` lists the gaps"})
	}
	if h.record != nil && !slices.ContainsFunc(o.Alarms, func(a Alarm) bool { return a.Kind == AlarmStoreNotWritable }) {
		o.Alarms = append(o.Alarms, *h.record)
	}
	if o.Alarms == nil {
		o.Alarms = []Alarm{}
	}
	return o
}

// pushOverview sends the overview to every open screen. Nothing is built
// while no screen is open.
func (h *Hub) pushOverview() {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	if n == 0 {
		return
	}
	msg, err := json.Marshal(struct {
		Type     string   `json:"type"`
		Overview Overview `json:"overview"`
	}{"overview", h.Overview()})
	if err != nil {
		h.log.Error("encode overview", "err", err)
		return
	}
	h.mu.Lock()
	h.overview = msg
	h.broadcastLocked(msg, "")
	h.mu.Unlock()
}

func isRecordFailure(o scan.Outcome) bool {
	return !o.Pass && strings.HasPrefix(o.Problem, "cannot record the decision")
}
