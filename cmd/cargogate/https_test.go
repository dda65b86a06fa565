package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/internal/testenv"
)

// TestHTTPSBuiltIn runs the gateway with http.tls_cert_file: HTTPS with
// HSTS, plain HTTP refused on the port, the CLI over HTTPS (pinned to the
// configured certificate), and a pairing link that sets a Secure cookie.
func TestHTTPSBuiltIn(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "screens-ca")
	cert, key := ca.Issue(t, "gateway-screens", "127.0.0.1")
	s := newSiteHTTP(t, "gate", "", fmt.Sprintf("  tls_cert_file: %s\n  tls_key_file: %s\n  trust_loopback: false", cert, key))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(url, bearer string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		r, err := cl.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r
	}
	base := "https://" + s.gwHTTP
	if r := get(base+"/api/status", testOpToken); r.StatusCode != 200 || r.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("https status: %d, HSTS %q", r.StatusCode, r.Header.Get("Strict-Transport-Security"))
	}
	if r := get(base+"/api/status", ""); r.StatusCode != 401 {
		t.Fatalf("https status without a token: %d", r.StatusCode)
	}
	// Plain HTTP on the HTTPS port serves nothing.
	if r, err := http.Get("http://" + s.gwHTTP + "/api/status"); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 400 || strings.Contains(string(b), "applied_seq") {
			t.Fatalf("plain HTTP on the TLS port: %d %s", r.StatusCode, b)
		}
	}
	// The CLI over HTTPS.
	cmd := exec.Command(bins["cargogate"], "status", "--json", "--config", s.cfgPath)
	cmd.Env = append(os.Environ(), "CARGOGATE_TOKEN="+testOpToken)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"applied_seq"`) {
		t.Fatalf("cargogate status over https: %v\n%s", err, out)
	}
	cmd = exec.Command(bins["cargogate"], "pair", "--name", "wall-1", "--page", "/supervisor", "--config", s.cfgPath)
	cmd.Env = append(os.Environ(), "CARGOGATE_TOKEN="+testOpToken)
	out, err := cmd.Output()
	link := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(link, base+"/pair?code=") {
		t.Fatalf("pair: %v %q", err, out)
	}
	r := get(link, "")
	ck := r.Cookies()
	if r.StatusCode != 303 || r.Header.Get("Location") != "/supervisor" || len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly ||
		ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("pairing over https: %d %q %+v", r.StatusCode, r.Header.Get("Location"), ck)
	}
}
