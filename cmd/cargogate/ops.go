package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/gateway/audit"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/ident"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/screens"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
)

// Operator commands. Each works on a stopped gateway's data directory; on a
// running one the store is locked, and the command asks the running gateway
// over its HTTP API instead (http.listen), where that makes sense.

// flagsAndConfig parses a command's flags and loads --config.
func flagsAndConfig(name string, args []string, stderr io.Writer) (*config.Config, *flag.FlagSet, error) {
	fs := flagsFor(name)
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(fs, stderr)
	if err != nil {
		return nil, nil, err
	}
	return cfg, fs, nil
}

func printInspection(w io.Writer, in screens.Inspection) {
	verdict := "STOP"
	if in.Pass {
		verdict = "PASS"
	}
	fmt.Fprintf(w, "%s  %s", verdict, in.Code)
	if in.Subject != nil {
		fmt.Fprintf(w, "  (%s %s)", in.Subject.Kind, in.Subject.ID)
	}
	fmt.Fprintf(w, "\nreason: %s", in.Reason)
	if in.Problem != "" {
		fmt.Fprintf(w, " — %s", in.Problem)
	}
	fmt.Fprintf(w, "\ndecided at %s from orders applied up to seq %d\n", in.At.Format(time.RFC3339), in.AppliedSeq)
	if in.Items > 0 {
		fmt.Fprintf(w, "contents: %d items below\n", in.Items)
	}
	for _, b := range in.Blocking {
		fmt.Fprintf(w, "  blocked by %s %s: %s\n", b.Subject.Kind, b.Subject.ID, b.Reason)
	}
	if len(in.Chain) > 0 {
		fmt.Fprintln(w, "why:")
	}
	for _, s := range in.Chain {
		fmt.Fprintf(w, "  %s %s: %s", s.Subject.Kind, s.Subject.ID, s.What)
		if o := s.Order; o != nil {
			fmt.Fprintf(w, " — order seq %d: %s", o.Seq, o.Action)
			if o.HoldID != "" {
				fmt.Fprintf(w, " %s", o.HoldID)
			}
			if o.Reason != "" {
				fmt.Fprintf(w, " (%s)", o.Reason)
			}
			if !o.ExpiresAt.IsZero() {
				fmt.Fprintf(w, " until %s", o.ExpiresAt.Format(time.RFC3339))
			}
			if !o.IssuedAt.IsZero() {
				fmt.Fprintf(w, ", issued %s", o.IssuedAt.Format(time.RFC3339))
			}
			if o.Office != "" || o.Ref != "" {
				fmt.Fprintf(w, ", office %s ref %s", o.Office, o.Ref)
			}
			if o.Note != "" {
				fmt.Fprintf(w, ", note %q", o.Note)
			}
		} else if s.Seq > 0 {
			fmt.Fprintf(w, " (order seq %d)", s.Seq)
		}
		fmt.Fprintln(w)
	}
}

func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("inspect")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{msg: "inspect takes one code"}
	}
	rest := fs.Args()
	cfg, err := loadConfig(fs, stderr)
	if err != nil {
		return err
	}
	cls, err := ident.New(cfg.Ident.ParcelPatterns, cfg.Ident.TransitPatterns, cfg.Ident.SealPatterns)
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, ordersFile), store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	if errors.Is(err, store.ErrLocked) {
		// The gateway is running: ask it.
		var in screens.Inspection
		if err := getAPI(cfg, "/api/inspect?code="+urlEscape(rest[0]), &in); err != nil {
			return fmt.Errorf("the gateway is running and its HTTP API did not answer: %w", err)
		}
		printInspection(stdout, in)
		return nil
	}
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.Progress()
	if err != nil {
		return err
	}
	clk := clock.New(nil, p.Floor)
	clk.Restore(p.Wall)
	in, err := inspectCode(cls, st, clk.Now(), p.Watermark, false, rest[0])
	if err != nil {
		return err
	}
	printInspection(stdout, in)
	return nil
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", " ", "%20", "#", "%23", "?", "%3F")
	return r.Replace(s)
}

// API client timeouts: connecting, and then each wait for the gateway.
// There is no overall timeout: a hot backup of a large store takes as long
// as it takes, as long as bytes keep coming.
var (
	apiConnectTimeout = 5 * time.Second
	apiHeaderTimeout  = 10 * time.Minute // the gateway spools the whole backup or export before answering
	apiIdleTimeout    = time.Minute      // no byte for this long: the transfer is abandoned
)

// apiBase is the running gateway's URL and a client for it: https when
// http.tls_cert_file is set, trusting exactly that certificate (the CLI
// runs on the gateway's host and reads the same files).
func apiBase(cfg *config.Config) (string, *http.Client, error) {
	if cfg.HTTP.Listen == "" {
		return "", nil, errors.New("http.listen is not configured")
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return "", nil, err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: apiConnectTimeout}).DialContext,
		TLSHandshakeTimeout:   apiConnectTimeout,
		ResponseHeaderTimeout: apiHeaderTimeout,
	}
	scheme := "http"
	if cfg.HTTP.TLSCertFile != "" {
		scheme = "https"
		pair, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			return "", nil, fmt.Errorf("http.tls_cert_file: %w", err)
		}
		want := pair.Certificate[0]
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // pinned instead:
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], want) {
					return errors.New("the gateway presented another certificate than http.tls_cert_file")
				}
				return nil
			}}
	}
	return scheme + "://" + net.JoinHostPort(host, port), &http.Client{Transport: tr}, nil
}

// idleReader cancels the request when no byte arrived for idle.
type idleReader struct {
	r     io.Reader
	t     *time.Timer
	idle  time.Duration
	fired *atomic.Bool
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.idle)
	}
	if err != nil && r.fired.Load() {
		err = fmt.Errorf("no data from the gateway for %s: %w", r.idle, err)
	}
	return n, err
}

// callAPI sends a request to the running gateway's HTTP API, with
// CARGOGATE_TOKEN as the bearer token, and decodes the answer into v (or
// copies it, for an io.Writer).
func callAPI(cfg *config.Config, method, path string, v any) error {
	base, client, err := apiBase(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv("CARGOGATE_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var fired atomic.Bool
	t := time.AfterFunc(apiIdleTimeout, func() { fired.Store(true); cancel() })
	defer t.Stop()
	body := &idleReader{r: resp.Body, t: t, idle: apiIdleTimeout, fired: &fired}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if w, ok := v.(io.Writer); ok {
		n, err := io.Copy(w, body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("cut short: %d of %d bytes", n, resp.ContentLength)
		}
		return err
	}
	return json.NewDecoder(body).Decode(v)
}

// getAPI GETs a path from the running gateway's HTTP API.
func getAPI(cfg *config.Config, path string, v any) error { return callAPI(cfg, "GET", path, v) }

// lastLine keeps the last line written through it.
type lastLine struct {
	w    io.Writer
	last []byte
	cur  []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			l.last, l.cur = append(l.last[:0], l.cur...), l.cur[:0]
		} else if len(l.cur) < 4096 {
			l.cur = append(l.cur, b)
		}
	}
	return l.w.Write(p)
}

// cmdPair makes a one-time pairing link for a screen (or, with --role, an
// operator's browser or a scanning device) on the running gateway, or
// with --revoke forgets a paired device.
func cmdPair(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, fs, err := flagsAndConfig("pair", args, stderr)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{msg: "pair takes one handheld STATION at most"}
	}
	name, role, page, revoke := sval(fs, "name"), sval(fs, "role"), sval(fs, "page"), sval(fs, "revoke")
	if fs.NArg() == 1 && revoke == "" {
		return pairHandheld(cfg, fs.Arg(0), name, sval(fs, "url"), stdout, stderr)
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	base := sval(fs, "url")
	for flag, v := range map[string]string{"name": name, "revoke": revoke} {
		if v != "" && !screens.ValidDeviceName(v) {
			return usageError{msg: fmt.Sprintf("--%s %q: letters, digits, - and _ (1 to 64)", flag, v)}
		}
	}
	if role != screens.RoleScreens && role != screens.RoleOperator && role != screens.RoleScan {
		return usageError{msg: fmt.Sprintf("--role %q: screens, operator or scan", role)}
	}
	if revoke != "" {
		var out map[string]any
		if err := callAPI(cfg, "POST", "/api/unpair?name="+url.QueryEscape(revoke), &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s unpaired\n", revoke)
		return nil
	}
	if name == "" {
		return usageError{msg: "--name is required (or --revoke NAME)"}
	}
	var out struct {
		Link    string    `json:"link"`
		Expires time.Time `json:"expires"`
	}
	q := url.Values{"name": {name}, "role": {role}, "next": {page}}
	if err := callAPI(cfg, "POST", "/api/pair?"+q.Encode(), &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s%s\n", baseURL(cfg, base), out.Link)
	fmt.Fprintf(stderr, "open it once on the device before %s; it works once\n", out.Expires.Format(time.RFC3339))
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, fs, err := flagsAndConfig("status", args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	var raw json.RawMessage
	if err := getAPI(cfg, "/api/status", &raw); err != nil {
		base, _, _ := apiBase(cfg)
		return fmt.Errorf("the gateway is not answering on %s (is it running?): %w", base, err)
	}
	if bval(fs, "json") {
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	return printStatus(stdout, raw)
}

// cmdBackup writes a consistent copy of the order store, the journal and
// the audit log into a directory: from the running gateway over HTTP, or
// straight from the files of a stopped one.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("backup")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{msg: "backup takes one target directory"}
	}
	dir := fs.Arg(0)
	// An earlier backup is never overwritten by mistake.
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 && !bval(fs, "force") {
		return usageError{msg: fmt.Sprintf("%s exists and is not empty: give a new directory, or --force to write into it", dir)}
	} else if errors.Is(err, syscall.ENOTDIR) {
		return usageError{msg: fmt.Sprintf("%s is a file, not a directory: give a new directory", dir)}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cfg, err := loadConfig(fs, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, df := range dataFiles {
		name := df.name
		target := filepath.Join(dir, name)
		err := df.copy(filepath.Join(cfg.DataDir, name), target)
		if errors.Is(err, df.locked) {
			f, ferr := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if ferr != nil {
				return ferr
			}
			err = getAPI(cfg, "/api/backup?file="+name, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return fmt.Errorf("backup %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "%s\n", target)
	}
	return nil
}

// dataFiles are the gateway's stores, with their storage package's copy and
// compaction of a stopped gateway's file and the error saying a running
// gateway holds it.
var dataFiles = []struct {
	name          string
	copy, compact func(src, dst string) error
	locked        error
}{
	{ordersFile, store.CopyFile, store.CompactFile, store.ErrLocked},
	{journalFile, journal.CopyFile, journal.CompactFile, journal.ErrLocked},
	{auditFile, audit.CopyFile, audit.CompactFile, audit.ErrLocked},
}

// cmdExport writes journalled events at or after --since as JSON lines.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return errHelp
		}
		return usageError{msg: "say what to export: events"}
	}
	if args[0] != "events" {
		return usageError{msg: fmt.Sprintf("cannot export %q: only events", args[0])}
	}
	cfg, fs, err := flagsAndConfig("export", args[1:], stderr)
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	since := sval(fs, "since")
	var t time.Time
	if since != "" {
		if t, err = time.Parse(time.RFC3339, since); err != nil {
			return usageError{msg: badSince(since)}
		}
	}
	jr, err := journal.Open(filepath.Join(cfg.DataDir, journalFile), journal.Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		// Running: ask the gateway.
		if aerr := getAPI(cfg, "/api/export/events?since="+urlEscape(since), stdout); aerr != nil {
			return fmt.Errorf("%v; and the running gateway's HTTP API: %w", err, aerr)
		}
		return nil
	}
	defer jr.Close()
	return jr.Export(stdout, t)
}

// cmdAudit verifies or exports the audit log of a stopped gateway.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return errHelp
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return usageError{msg: "say what to do: verify or export"}
		}
		return usageError{msg: fmt.Sprintf("unknown audit command %q: verify or export", args[0])}
	}
	cfg, fs, err := flagsAndConfig("audit", args[1:], stderr)
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	since := sval(fs, "since")
	file := filepath.Join(cfg.DataDir, auditFile)
	if args[0] == "export" {
		var t time.Time
		if since != "" {
			if t, err = time.Parse(time.RFC3339, since); err != nil {
				return usageError{msg: badSince(since)}
			}
		}
		n, err := audit.ExportFile(file, stdout, t)
		if errors.Is(err, audit.ErrLocked) {
			ll := &lastLine{w: stdout}
			if err := getAPI(cfg, "/api/audit/export?since="+urlEscape(since), ll); err != nil {
				return fmt.Errorf("audit export incomplete: %w", err)
			}
			if !bytes.HasPrefix(ll.last, []byte(`{"trailer":`)) {
				return errors.New("audit export incomplete: no trailer line")
			}
			return nil
		}
		if err == nil {
			fmt.Fprintf(stderr, "%d records\n", n)
		}
		return err
	}
	key, _, err := envelope.LoadOrCreateKey(filepath.Join(cfg.DataDir, keyFile))
	if err != nil {
		return err
	}
	rep, err := audit.VerifyFile(file, envelope.Signer{Key: key}.Public())
	if errors.Is(err, audit.ErrLocked) {
		var r struct {
			Report audit.Report `json:"report"`
			Error  string       `json:"error"`
		}
		if aerr := getAPI(cfg, "/api/audit/verify", &r); aerr != nil {
			return aerr
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "audit log NOT intact: %s\n", r.Error)
			return errors.New("audit log not intact")
		}
		rep, err = r.Report, nil
	}
	if err != nil {
		fmt.Fprintf(stdout, "audit log NOT intact: %v\n", err)
		return errors.New("audit log not intact")
	}
	fmt.Fprintf(stdout, "audit log intact: %d records, %d signed checkpoints, head %s\n", rep.Records, rep.Checkpoints, rep.Head)
	if rep.GapCount > 0 {
		fmt.Fprintf(stdout, "WARNING: %d records were lost (the log could not take them), in %d gaps:\n", rep.Lost, rep.GapCount)
		for _, g := range rep.Gaps {
			fmt.Fprintf(stdout, "  record %d: %d lost (%s) between %s and %s\n", g.Index, g.Lost, g.Reason,
				g.First.Format(time.RFC3339Nano), g.Last.Format(time.RFC3339Nano))
		}
		if rep.GapCount > len(rep.Gaps) {
			fmt.Fprintf(stdout, "  … and %d more gaps\n", rep.GapCount-len(rep.Gaps))
		}
	}
	return nil
}

// cmdCompact rewrites a stopped gateway's stores into fresh files,
// reclaiming the space bbolt never gives back by itself.
func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, fs, err := flagsAndConfig("compact", args, stderr)
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	for _, df := range dataFiles {
		name := df.name
		src := filepath.Join(cfg.DataDir, name)
		before, err := os.Stat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		tmp := src + ".compact"
		if err := df.compact(src, tmp); err != nil {
			os.Remove(tmp)
			if errors.Is(err, df.locked) {
				return fmt.Errorf("%s is in use: stop the gateway first", src)
			}
			return fmt.Errorf("compact %s: %w", name, err)
		}
		after, _ := os.Stat(tmp)
		if err := os.Rename(tmp, src); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d → %d bytes\n", src, before.Size(), after.Size())
	}
	return nil
}

// badSince says what --since takes when it cannot be read.
func badSince(v string) string {
	return fmt.Sprintf("--since: must be an RFC 3339 time such as 2026-11-27T00:00:00Z or 2026-11-27T08:00:00+08:00 (got %q)", v)
}
