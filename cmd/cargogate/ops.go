package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

func loadConfigFlag(name, example string, args []string, stderr io.Writer) (*config.Config, []string, error) {
	fs := newFlags(name, example, stderr)
	path := fs.String("config", "/etc/cargogate/cargogate.yaml", "configuration file")
	if err := fs.Parse(reorder(args)); err != nil {
		return nil, nil, usageError{err.Error()}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration has problems:\n", *path)
		printProblems(stderr, err)
		return nil, nil, usageError{"bad configuration"}
	}
	return cfg, fs.Args(), nil
}

// reorder puts flags before positional arguments, so that both
// `inspect CODE --config F` and `inspect --config F CODE` work.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && a != "--help" && a != "-h" {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
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
	cfg, rest, err := loadConfigFlag("inspect CODE", "cargogate inspect RR123456785CN --config /etc/cargogate/cargogate.yaml", args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"inspect takes one code"}
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

// getAPI GETs a path from the running gateway's HTTP API.
func getAPI(cfg *config.Config, path string, v any) error {
	if cfg.HTTP.Listen == "" {
		return errors.New("http.listen is not configured")
	}
	req, err := http.NewRequest("GET", "http://"+cfg.HTTP.Listen+path, nil)
	if err != nil {
		return err
	}
	if tok := os.Getenv("CARGOGATE_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if w, ok := v.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfigFlag("status", "cargogate status --config /etc/cargogate/cargogate.yaml", args, stderr)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := getAPI(cfg, "/api/status", &doc); err != nil {
		return fmt.Errorf("gateway not answering on http://%s: %w", cfg.HTTP.Listen, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// cmdBackup writes a consistent copy of the order store, the journal and
// the audit log into a directory: from the running gateway over HTTP, or
// straight from the files of a stopped one.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, rest, err := loadConfigFlag("backup DIR", "cargogate backup /var/backups/cargogate-2026-11-27 --config /etc/cargogate/cargogate.yaml", args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"backup takes one target directory"}
	}
	dir := rest[0]
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
	if len(args) == 0 || args[0] != "events" {
		return usageError{"usage: cargogate export events --since 2026-11-27T00:00:00Z --config FILE"}
	}
	fs := newFlags("export events", "cargogate export events --since 2026-11-27T00:00:00Z --config /etc/cargogate/cargogate.yaml", stderr)
	path := fs.String("config", "/etc/cargogate/cargogate.yaml", "configuration file")
	since := fs.String("since", "", "RFC 3339 time; events at or after it")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	var t time.Time
	if *since != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, *since); err != nil {
			return usageError{"--since: " + err.Error()}
		}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return usageError{"bad configuration"}
	}
	jr, err := journal.Open(filepath.Join(cfg.DataDir, journalFile), journal.Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		// Running: ask the gateway.
		if aerr := getAPI(cfg, "/api/export/events?since="+urlEscape(*since), stdout); aerr != nil {
			return fmt.Errorf("%v; and the running gateway's HTTP API: %w", err, aerr)
		}
		return nil
	}
	defer jr.Close()
	return exportEvents(jr, stdout, t)
}

func exportEvents(jr *journal.Journal, w io.Writer, since time.Time) error {
	return jr.ForEach(func(e journal.Entry, delivered bool) error {
		var ev struct {
			At time.Time `json:"at"`
		}
		if err := json.Unmarshal(e.Data, &ev); err != nil || ev.At.Before(since) {
			return nil
		}
		_, err := fmt.Fprintf(w, "%s\n", e.Data)
		return err
	})
}

// cmdAudit verifies or exports the audit log of a stopped gateway.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		return usageError{"usage: cargogate audit verify|export [--since T] --config FILE"}
	}
	fs := newFlags("audit "+args[0], "cargogate audit verify --config /etc/cargogate/cargogate.yaml", stderr)
	path := fs.String("config", "/etc/cargogate/cargogate.yaml", "configuration file")
	since := fs.String("since", "", "export: RFC 3339 time; records at or after it")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return usageError{"bad configuration"}
	}
	file := filepath.Join(cfg.DataDir, auditFile)
	if args[0] == "export" {
		var t time.Time
		if *since != "" {
			if t, err = time.Parse(time.RFC3339, *since); err != nil {
				return usageError{"--since: " + err.Error()}
			}
		}
		n, err := audit.ExportFile(file, stdout, t)
		if errors.Is(err, audit.ErrLocked) {
			return getAPI(cfg, "/api/audit/export?since="+urlEscape(*since), stdout)
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
	return nil
}

// cmdCompact rewrites a stopped gateway's stores into fresh files,
// reclaiming the space bbolt never gives back by itself.
func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfigFlag("compact", "cargogate compact --config /etc/cargogate/cargogate.yaml   (gateway stopped)", args, stderr)
	if err != nil {
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
