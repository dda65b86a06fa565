// Package testenv starts the real external processes that tests run against,
// such as a mosquitto broker on a free loopback port. It is for tests only.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MosquittoPath is where the broker is looked for; the MOSQUITTO environment
// variable overrides it.
const MosquittoPath = "/usr/sbin/mosquitto"

// startTimeout bounds the wait for the broker to accept connections.
const startTimeout = 10 * time.Second

// Mosquitto is a broker process owned by one test. Its port stays the same
// across Restart, so clients can reconnect to the same URL.
type Mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
	out *syncBuffer
	ran chan struct{} // closed when cmd has exited
}

// StartMosquitto starts a broker on a free 127.0.0.1 port with
// `allow_anonymous true` and `persistence false`, plus extraConf lines
// (e.g. "max_queued_messages 100000"), and waits until it accepts
// connections. It returns the broker URL (tcp://127.0.0.1:PORT) and a stop
// function, which is also registered with t.Cleanup. The test is skipped when
// mosquitto is not installed.
func StartMosquitto(t testing.TB, extraConf ...string) (url string, stop func()) {
	t.Helper()
	m := NewMosquitto(t, extraConf...)
	return m.URL(), m.Stop
}

// NewMosquitto is StartMosquitto returning the broker itself, for tests that
// kill or restart it.
func NewMosquitto(t testing.TB, extraConf ...string) *Mosquitto {
	t.Helper()
	bin := MosquittoPath
	if p := os.Getenv("MOSQUITTO"); p != "" {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		// In CI a missing broker is a failure, never a silent skip.
		if os.Getenv("CI") != "" {
			t.Fatalf("mosquitto not available at %s (set MOSQUITTO; .ci/run installs it): %v", bin, err)
		}
		t.Skipf("mosquitto not available at %s (set MOSQUITTO): %v", bin, err)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port, err := freePort()
		if err != nil {
			t.Fatalf("mosquitto: free port: %v", err)
		}
		conf := filepath.Join(dir, "mosquitto.conf")
		lines := append([]string{
			"listener " + strconv.Itoa(port) + " 127.0.0.1",
			"allow_anonymous true",
			"persistence false",
			"log_dest stderr",
		}, extraConf...)
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatalf("mosquitto: %v", err)
		}
		m := &Mosquitto{t: t, bin: bin, conf: conf, port: port}
		if lastErr = m.start(); lastErr == nil {
			t.Cleanup(m.Stop)
			return m
		}
	}
	t.Fatalf("mosquitto: %v", lastErr)
	return nil
}

// URL is the broker URL, tcp://127.0.0.1:PORT.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr() }

// Addr is 127.0.0.1:PORT.
func (m *Mosquitto) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// Output is what the broker has logged so far.
func (m *Mosquitto) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		return ""
	}
	return m.out.String()
}

// Kill ends the broker with SIGKILL, as a crash would: no goodbye to clients,
// sessions and queues lost (persistence is off).
func (m *Mosquitto) Kill() { m.signal(os.Kill) }

// Stop ends the broker with SIGTERM and waits for it. It is idempotent.
func (m *Mosquitto) Stop() { m.signal(os.Interrupt) }

// Restart stops the broker (SIGTERM) and starts it again on the same port.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatalf("mosquitto: restart: %v", err)
	}
}

func (m *Mosquitto) signal(sig os.Signal) {
	m.mu.Lock()
	cmd, ran, out := m.cmd, m.ran, m.out
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-ran
	}
	if m.t.Failed() {
		m.t.Logf("mosquitto output:\n%s", out.String())
	}
}

func (m *Mosquitto) start() error {
	out := &syncBuffer{}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	ran := make(chan struct{})
	go func() { _ = cmd.Wait(); close(ran) }()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-ran:
			return fmt.Errorf("exited at start: %s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-ran
			return fmt.Errorf("not accepting on %s after %v: %s", m.Addr(), startTimeout, out.String())
		}
	}
	m.mu.Lock()
	m.cmd, m.ran, m.out = cmd, ran, out
	m.mu.Unlock()
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
