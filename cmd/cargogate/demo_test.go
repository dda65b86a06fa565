package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoTellsHowToUseIt runs the demo and follows what it prints: the
// configuration it writes works with `status` and `inspect`, and a code
// scanned by hand at the printed scanner address is decided.
func TestDemoTellsHowToUseIt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--pace", "200ms"}, &out, &errOut)
	}()

	find := func(what string, re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			select {
			case err := <-done:
				t.Fatalf("demo ended (%v) before printing %s:\n%s", err, what, out.String())
			case <-deadline:
				t.Fatalf("no %s in the demo's output:\n%s", what, out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	cfgPath := find("config path", regexp.MustCompile(` status --config (\S+)`))[1]
	hand := find("hand-scan line", regexp.MustCompile(`printf '(\S+)\\r\\n' > /dev/tcp/127\.0\.0\.1/(\d+)`))
	find("gate-1's scanner", regexp.MustCompile(`gate-1 +\(gate\) +scanner on 127\.0\.0\.1:`+hand[2]+`, gate on the pseudo-terminal /dev/pts/\d+`))
	find("inspect line", regexp.MustCompile(` inspect `+hand[1]+` --config `+regexp.QuoteMeta(cfgPath)))

	// The handheld station's pairing link, its last line, opens the page.
	link := find("the handheld pairing link", regexp.MustCompile(`(?m)^(http://127\.0\.0\.1:\d+/pair\?code=\S+&next=%2Fh%2Fhand-1)$`))[1]
	jar, _ := cookiejar.New(nil)
	if r, err := (&http.Client{Jar: jar}).Get(link); err != nil || r.StatusCode != 200 || r.Request.URL.Path != "/h/hand-1" {
		t.Fatalf("the demo's pairing link %s: %v %+v", link, err, r)
	} else {
		r.Body.Close()
	}

	// The operator commands against the running demo, with its config.
	var so, se bytes.Buffer
	if code := runMain(ctx, []string{"status", "--config", cfgPath}, &so, &se); code != 0 ||
		!strings.Contains(so.String(), "gateway  DEMO/g01") || !strings.Contains(so.String(), "gate-1") {
		t.Fatalf("status --config %s: exit %d\n%s%s", cfgPath, code, so.String(), se.String())
	}
	so.Reset()
	if code := runMain(ctx, []string{"inspect", "HAND-SCAN-1", "--config", cfgPath}, &so, &se); code != 0 ||
		!strings.HasPrefix(so.String(), "STOP  HAND-SCAN-1") {
		t.Fatalf("inspect --config %s: exit %d\n%s%s", cfgPath, code, so.String(), se.String())
	}

	// Scan by hand, as printed, next to the simulated scanner.
	c, err := net.Dial("tcp", "127.0.0.1:"+hand[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("HAND-SCAN-1\r\n")); err != nil {
		t.Fatal(err)
	}
	find("the hand scan's decision", regexp.MustCompile(`station  gate-1 scanned code "HAND-SCAN-1" → STOP`))
	c.Close()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind: %v", cfgPath, err)
	}
}
