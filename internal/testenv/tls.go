package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NewMosquittoConfig starts a broker whose whole configuration is what conf
// returns for n free loopback ports (listeners, TLS, ACLs: nothing is added
// but the log destination). The broker's Addr and URL are those of ports[0],
// the port waited on at start, which Restart keeps; the test builds the
// other listeners' URLs (ssl://…) from ports itself. Like NewMosquitto, it
// skips the test when mosquitto is not installed, and fails it in CI.
func NewMosquittoConfig(t testing.TB, n int, conf func(ports []int) []string) (*Mosquitto, []int) {
	t.Helper()
	bin := MosquittoPath
	if p := os.Getenv("MOSQUITTO"); p != "" {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" { // as NewMosquitto: in CI a missing broker fails
			t.Fatalf("mosquitto not available at %s (set MOSQUITTO; .ci/run installs it): %v", bin, err)
		}
		t.Skipf("mosquitto not available at %s (set MOSQUITTO): %v", bin, err)
	}
	if n < 1 {
		t.Fatal("mosquitto: at least one port")
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken meanwhile
		ports := make([]int, n)
		for i := range ports {
			p, err := freePort()
			if err != nil {
				t.Fatalf("mosquitto: free port: %v", err)
			}
			ports[i] = p
		}
		path := filepath.Join(dir, "mosquitto.conf")
		lines := append([]string{"log_dest stderr"}, conf(ports)...)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatalf("mosquitto: %v", err)
		}
		m := &Mosquitto{t: t, bin: bin, conf: path, port: ports[0]}
		if lastErr = m.start(); lastErr == nil {
			t.Cleanup(m.Stop)
			return m, ports
		}
	}
	t.Fatalf("mosquitto: %v", lastErr)
	return nil, nil
}

// CA is a certificate authority made by a test, with its certificate in
// PEM at CertFile.
type CA struct {
	Cert     *x509.Certificate
	CertFile string
	key      *ecdsa.PrivateKey
	dir      string
	serial   int64
}

// NewCA makes a self-signed ECDSA P-256 CA named cn, valid for a day, and
// writes its certificate to dir/cn.crt.
func NewCA(t testing.TB, dir, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, key: key, dir: dir, serial: 1, CertFile: filepath.Join(dir, cn+".crt")}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Issue makes a leaf certificate named cn signed by the CA and writes it
// to dir/cn.crt and its key to dir/cn.key (mode 0600). hosts, IP addresses
// or DNS names, make it a server certificate for them; none, a client
// certificate.
func (ca *CA) Issue(t testing.TB, cn string, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, cn+".crt"), filepath.Join(ca.dir, cn+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
