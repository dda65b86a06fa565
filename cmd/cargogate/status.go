package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// statusSummary is the part of /api/status a person reads first.
type statusSummary struct {
	Site          string  `json:"site"`
	Gateway       string  `json:"gateway"`
	Version       string  `json:"version"`
	Ready         bool    `json:"ready"`
	StoreWritable bool    `json:"store_writable"`
	ClockBehind   float64 `json:"clock_behind_s"`
	Link          struct {
		Online       bool      `json:"online"`
		EventsOnline bool      `json:"events_online"`
		Broker       string    `json:"broker"`
		EventsBroker string    `json:"events_broker"`
		Brokers      []string  `json:"brokers"`
		Since        time.Time `json:"since"`
		Applied      uint64    `json:"applied_seq"`
		Head         uint64    `json:"head_seq"`
		Lag          uint64    `json:"lag"`
		Outbox       int       `json:"outbox"`
		OutboxOldest float64   `json:"outbox_oldest_s"`
		Rejected     uint64    `json:"rejected"`
		LastReject   string    `json:"last_reject"`
		Resyncing    bool      `json:"resyncing"`
	} `json:"link"`
	Alarms   []string `json:"alarms"`
	Stations []struct {
		ID      string            `json:"id"`
		Devices map[string]string `json:"devices"`
	} `json:"stations"`
	Audit *struct {
		Records uint64 `json:"records"`
		Lost    uint64 `json:"lost"`
	} `json:"audit"`
}

// printStatus prints the status document as a short report; `status
// --json` prints the document itself.
func printStatus(w io.Writer, raw []byte) error {
	var s statusSummary
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("the gateway's status: %w", err)
	}
	ready := "ready"
	if !s.Ready {
		ready = "NOT READY (a store does not commit: orders are not taken)"
	}
	fmt.Fprintf(w, "gateway  %s/%s, version %s, %s\n", s.Site, s.Gateway, s.Version, ready)
	l := s.Link
	state := "online"
	if !l.Online {
		state = "OFFLINE"
	}
	since := ""
	if !l.Since.IsZero() {
		since = " since " + l.Since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "link     %s%s", state, since)
	if l.Broker != "" {
		fmt.Fprintf(w, " on %s", l.Broker)
	}
	if !l.EventsOnline {
		fmt.Fprint(w, " (events connection down)")
	} else if l.EventsBroker != "" && l.EventsBroker != l.Broker {
		fmt.Fprintf(w, " (events on %s)", l.EventsBroker)
	}
	if l.Resyncing {
		fmt.Fprint(w, ", resyncing")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "orders   applied up to seq %d of central's head %d: lag %d", l.Applied, l.Head, l.Lag)
	if l.Rejected > 0 {
		fmt.Fprintf(w, "; %d %s rejected", l.Rejected, plural(int(l.Rejected), "message", "messages"))
		if l.LastReject != "" {
			fmt.Fprintf(w, " (last: %s)", l.LastReject)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "outbox   %d %s not yet delivered to central", l.Outbox, plural(int(l.Outbox), "event", "events"))
	if l.Outbox > 0 {
		fmt.Fprintf(w, ", oldest %s", (time.Duration(l.OutboxOldest * float64(time.Second))).Round(time.Second))
	}
	fmt.Fprintln(w)
	if s.ClockBehind >= 1 {
		fmt.Fprintf(w, "clock    the wall clock is %.0fs behind central's time\n", s.ClockBehind)
	}
	if s.Audit != nil && s.Audit.Lost > 0 {
		fmt.Fprintf(w, "audit    %d records, %d LOST\n", s.Audit.Records, s.Audit.Lost)
	}
	if len(s.Alarms) == 0 {
		fmt.Fprintln(w, "alarms   none")
	} else {
		fmt.Fprintf(w, "alarms   %s\n", strings.Join(s.Alarms, ", "))
	}
	fmt.Fprintf(w, "stations %d\n", len(s.Stations))
	for _, st := range s.Stations {
		names := make([]string, 0, len(st.Devices))
		for d := range st.Devices {
			names = append(names, d)
		}
		sort.Strings(names)
		var devs []string
		for _, d := range names {
			devs = append(devs, d+" "+st.Devices[d])
		}
		if len(devs) == 0 {
			devs = []string{"no devices reported"}
		}
		fmt.Fprintf(w, "  %-10s %s\n", st.ID, strings.Join(devs, ", "))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
