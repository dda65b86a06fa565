package main

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/screens"
)

// The HTTP server's timeouts (docs/security.md, "The screens and the HTTP
// API"). No client can hold a connection on its own pace for longer:
// headers within readHeaderTimeout (a trickled request is cut before any
// 401 is due), the whole request within readTimeout, each response within
// writeTimeout (streams set their own per-write deadline instead, see
// opsapi.API.spool), and an idle keep-alive connection for idleTimeout.
// Variables, so that tests can shorten them.
var (
	readHeaderTimeout = 2 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	// verifyEvery is how often /api/audit/verify may run.
	verifyEvery = 10 * time.Second
)

// newHTTPServer speaks HTTP/1.1 only, TLS or not: an HTTP/2 connection
// is not bound by ReadHeaderTimeout, so a client with no token could hold
// a connection slot for the whole IdleTimeout without sending a request.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: 16 << 10, Protocols: protos,
		ErrorLog: slog.NewLogLogger(log.With("part", "http").Handler(), slog.LevelWarn)}
}

// httpCredentials are the configured tokens with their roles: http.token
// is the operator's.
func httpCredentials(h config.HTTP) []screens.Credential {
	var out []screens.Credential
	if h.Token != "" {
		out = append(out, screens.Credential{Name: "http.token", Role: screens.RoleOperator, Token: h.Token})
	}
	for _, t := range h.Tokens {
		out = append(out, screens.Credential{Name: t.Name, Role: t.Role, Token: t.Token})
	}
	return out
}

// auditStatus is the audit log's part of /api/status.
func auditStatus(aud *audit.Log) map[string]any {
	size, _ := aud.Head()
	return map[string]any{"records": size, "lost": aud.Lost()}
}

// limitListener accepts at most n connections at once; Accept waits for a
// slot (the kernel's backlog holds the next clients meanwhile). With the
// timeouts above, a slot held by a client that does nothing is freed
// within seconds; only WebSockets (at most screens.DefaultMaxClients) stay.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n)}
}

type limitedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
