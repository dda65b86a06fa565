package testenv

import (
	"net"
	"testing"
	"time"
)

func TestMosquittoKillRestart(t *testing.T) {
	m := NewMosquitto(t, "max_queued_messages 100000")
	dial := func() error {
		c, err := net.DialTimeout("tcp", m.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatal(err)
	}
	m.Kill()
	if err := dial(); err == nil {
		t.Fatal("broker still accepting after Kill")
	}
	m.Restart()
	if err := dial(); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	url, stop := StartMosquitto(t)
	if url == m.URL() {
		t.Fatal("two brokers on one port")
	}
	stop()
	stop() // idempotent
}
