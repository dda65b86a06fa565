package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/audit"
)

// auditPairing is the audit kind of pairings and revocations of devices.
const auditPairing = "pairing"

// pairingAudit records every pairing link made, device paired and device
// unpaired in the audit log.
func pairingAudit(aud *audit.Log) func(event string, fields map[string]any) {
	return func(event string, fields map[string]any) {
		rec := map[string]any{"event": event}
		for k, v := range fields {
			rec[k] = v
		}
		aud.Add(auditPairing, rec)
	}
}

// baseURL is the gateway's address as devices reach it: --url, else from
// http.listen.
func baseURL(cfg *config.Config, base string) string {
	if base == "" {
		hostport := cfg.HTTP.Listen
		// Listening on every address: name one a device can reach.
		if h, p, err := net.SplitHostPort(hostport); err == nil && (h == "" || net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified()) {
			if ip := lanAddress(); ip != "" {
				hostport = net.JoinHostPort(ip, p)
			}
		}
		base = "http://" + hostport
		if cfg.HTTP.TLSCertFile != "" {
			base = "https://" + hostport
		}
	}
	return strings.TrimSuffix(base, "/")
}

// pairHandheld asks the running gateway for a one-time pairing link for a
// handheld device of station st and prints it with a QR code to scan with
// the device's camera; the URL is the last line.
func pairHandheld(cfg *config.Config, st, name, base string, stdout, stderr io.Writer) error {
	var out struct {
		Link    string    `json:"link"`
		Expires time.Time `json:"expires"`
	}
	q := url.Values{"name": {name}, "role": {"scan"}, "station": {st}, "next": {"/h/" + st}}
	if name != "" {
		if err := callAPI(cfg, "POST", "/api/pair?"+q.Encode(), &out); err != nil {
			return err
		}
	} else {
		// A generated name must not replace a paired device: the gateway
		// refuses a taken name (new=1, 409) and we draw another.
		var err error
		for range 5 {
			b := make([]byte, 4)
			rand.Read(b)
			name = fmt.Sprintf("%.55s-%x", st, b) // within the 64 a name may have
			q.Set("name", name)
			q.Set("new", "1")
			if err = callAPI(cfg, "POST", "/api/pair?"+q.Encode(), &out); err == nil || !strings.HasPrefix(err.Error(), "409 ") {
				break
			}
		}
		if err != nil {
			return err
		}
	}
	link := baseURL(cfg, base) + out.Link
	code, err := qr.Encode(link, qr.M)
	if err != nil {
		return err
	}
	writeQR(stdout, code)
	fmt.Fprintf(stdout, "handheld %s for station %s: open this link on the device once, before %s (revoke: cargogate pair --revoke %s)\n",
		name, st, out.Expires.Format(time.RFC3339), name)
	fmt.Fprintln(stdout, link)
	return nil
}

// writeQR draws a QR code with half blocks, two modules a character
// high, dark on light with the quiet zone, for any terminal font.
func writeQR(w io.Writer, c *qr.Code) {
	const quiet = 2
	n := c.Size
	black := func(x, y int) bool { return x >= 0 && y >= 0 && x < n && y < n && c.Black(x, y) }
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bot := black(x, y), black(x, y+1)
			switch {
			case !top && !bot:
				b.WriteString("█")
			case top && !bot:
				b.WriteString("▄")
			case !top && bot:
				b.WriteString("▀")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

// demoHandheld is the demo's handheld station.
const demoHandheld = "hand-1"

// lanAddress is this machine's first non-loopback IPv4 address, for a
// link a device on the LAN can open; "" if none.
func lanAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}
