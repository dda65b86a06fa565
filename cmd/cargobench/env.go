package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// env lets the bench reuse internal/testenv (mosquitto, ptys), whose
// helpers take a testing.TB. It embeds the interface only to satisfy its
// unexported method; every method testenv calls is implemented here, and a
// fatal error becomes a panic that run recovers into an error.
type env struct {
	testing.TB
	dir      string
	n        int
	cleanups []func()
	failed   bool
}

type fatal struct{ err error }

func (e *env) Helper()                   {}
func (e *env) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (e *env) Failed() bool              { return e.failed }
func (e *env) Cleanup(f func())          { e.cleanups = append(e.cleanups, f) }
func (e *env) Fatal(a ...any)            { e.fail(fmt.Sprint(a...)) }
func (e *env) Fatalf(f string, a ...any) { e.fail(fmt.Sprintf(f, a...)) }
func (e *env) Skipf(f string, a ...any)  { e.fail("cannot run: " + fmt.Sprintf(f, a...)) }
func (e *env) Errorf(f string, a ...any) { e.fail(fmt.Sprintf(f, a...)) }
func (e *env) fail(msg string)           { e.failed = true; panic(fatal{fmt.Errorf("%s", msg)}) }
func (e *env) Name() string              { return "cargobench" }
func (e *env) TempDir() string {
	e.n++
	d := filepath.Join(e.dir, fmt.Sprintf("tmp%03d", e.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		e.fail(err.Error())
	}
	return d
}

// close runs the cleanups, last first.
func (e *env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// machine describes where the figures were taken.
type machine struct {
	CPU, Kernel, Go, Disk string
	Cores                 int
}

func machineFacts(dir string) machine {
	m := machine{CPU: "unknown", Kernel: "unknown", Go: runtime.Version(), Cores: runtime.NumCPU(), Disk: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	// The mount holding dir: longest mount point that prefixes it.
	abs, _ := filepath.Abs(dir)
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		best := ""
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			if (abs == f[1] || strings.HasPrefix(abs, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(best) {
				best = f[1]
				m.Disk = f[0] + " " + f[2] + " on " + f[1]
			}
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		m.Disk += fmt.Sprintf(", %.0f GiB free", float64(st.Bavail)*float64(st.Bsize)/(1<<30))
	}
	return m
}
