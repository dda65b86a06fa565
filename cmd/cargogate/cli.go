package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cargogate/cargogate/config"
)

// The command table: one place for every command's synopsis, summary,
// flags and examples. The usage texts (stderr on misuse, stdout on
// --help), the shell completion and the man page are all made from it.

const defaultConfig = "/etc/cargogate/cargogate.yaml"

type command struct {
	name     string
	args     string   // what follows the name in the synopsis, flags aside
	subs     []string // sub-commands (export events, audit verify|export)
	summary  string
	details  string
	examples []string
	flags    func(fs *flag.FlagSet)
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func configFlag(fs *flag.FlagSet) {
	fs.String("config", defaultConfig, "the `FILE` to read the configuration from")
}

var commands []*command

func init() {
	commands = []*command{
		{name: "run", summary: "run the gateway",
			details:  "Runs the gateway in the foreground until SIGINT or SIGTERM; SIGHUP reloads the configuration.",
			examples: []string{"cargogate run --config /etc/cargogate/cargogate.yaml"},
			flags:    configFlag, run: cmdRun},
		{name: "demo", summary: "run a self-contained demo: embedded broker, reference central, three simulated stations, live page",
			details: "Needs nothing installed. It prints where its scanners listen and how to scan by hand, " +
				"and writes the configuration it runs with, so the other commands (status, inspect, pair…) work against it with --config.",
			examples: []string{"cargogate demo", "cargogate demo --listen 127.0.0.1:8081 --pace 500ms"},
			flags: func(fs *flag.FlagSet) {
				fs.String("listen", "127.0.0.1:8080", "the host:port `ADDR` the live page is served on")
				fs.Duration("pace", 1500*time.Millisecond, "time between two scans at a station")
				fs.Bool("v", false, "show the gateway's own log")
			}, run: cmdDemo},
		{name: "check-config", args: "FILE", summary: "check a configuration file; prints every problem",
			examples: []string{"cargogate check-config /etc/cargogate/cargogate.yaml"}, run: func(_ context.Context, a []string, o, e io.Writer) error { return cmdCheckConfig(a, o, e) }},
		{name: "keys", summary: "show this gateway's public key and kid (makes the key on first use)",
			examples: []string{"cargogate keys --config /etc/cargogate/cargogate.yaml"},
			flags:    configFlag, run: func(_ context.Context, a []string, o, e io.Writer) error { return cmdKeys(a, o, e) }},
		{name: "status", summary: "what the running gateway reports: link, lag, outbox, alarms, stations",
			examples: []string{"cargogate status", "cargogate status --json --config /etc/cargogate/cargogate.yaml"},
			flags: func(fs *flag.FlagSet) {
				configFlag(fs)
				fs.Bool("json", false, "print the raw /api/status document")
			}, run: cmdStatus},
		{name: "inspect", args: "CODE", summary: "a code's decision and why, from the local store (offline too)",
			examples: []string{"cargogate inspect RR123456785CN --config /etc/cargogate/cargogate.yaml"},
			flags:    configFlag, run: cmdInspect},
		{name: "export", args: "events", subs: []string{"events"}, summary: "journalled events as JSON lines",
			examples: []string{"cargogate export events --since 2026-11-27T00:00:00Z --config /etc/cargogate/cargogate.yaml"},
			flags: func(fs *flag.FlagSet) {
				configFlag(fs)
				fs.String("since", "", "RFC 3339 `TIME`; events at or after it")
			}, run: cmdExport},
		{name: "pair", args: "[STATION]", summary: "a one-time pairing link for a screen, an operator's browser or a handheld device (running gateway)",
			examples: []string{"cargogate pair --name wall-1 --page /supervisor --config /etc/cargogate/cargogate.yaml",
				"cargogate pair dock-hh --config /etc/cargogate/cargogate.yaml",
				"cargogate pair --revoke wall-1"},
			flags: func(fs *flag.FlagSet) {
				configFlag(fs)
				fs.String("name", "", "the device's `NAME` (letters, digits, - and _); with STATION, default STATION-xxxx")
				fs.String("role", "screens", "screens, operator or scan")
				fs.String("page", "/", "the page the device opens once paired, e.g. /station/gate-3")
				fs.String("url", "", "the gateway's address as the device reaches it, e.g. https://10.0.0.7:8443 (default: from http.listen)")
				fs.String("revoke", "", "forget the paired device of this `NAME` instead")
			}, run: cmdPair},
		{name: "backup", args: "DIR", summary: "a consistent hot copy of the stores into a new or empty directory",
			examples: []string{"cargogate backup /var/backups/cargogate-2026-11-27 --config /etc/cargogate/cargogate.yaml"},
			flags: func(fs *flag.FlagSet) {
				configFlag(fs)
				fs.Bool("force", false, "write into DIR even if it is not empty, replacing the stores' files in it")
			}, run: cmdBackup},
		{name: "audit", args: "verify|export", subs: []string{"verify", "export"},
			summary: "prove the audit log intact, or export it as JSON lines",
			examples: []string{"cargogate audit verify --config /etc/cargogate/cargogate.yaml",
				"cargogate audit export --since 2026-11-27T00:00:00Z > audit.jsonl"},
			flags: func(fs *flag.FlagSet) {
				configFlag(fs)
				fs.String("since", "", "export: RFC 3339 `TIME`; records at or after it")
			}, run: cmdAudit},
		{name: "fleet", summary: "the site's fleet view: every gateway's signed status, worst first, on a page, /api/fleet and /metrics",
			details: "Read only: it subscribes to the site's status messages, verifies each with its gateway's public key, and publishes nothing. " +
				"Its configuration is a small file of its own (docs/fleet.md).",
			examples: []string{"cargogate fleet --config /etc/cargogate/fleet.yaml"},
			flags: func(fs *flag.FlagSet) {
				fs.String("config", defaultFleetConfig, "the fleet view's configuration `FILE`")
			}, run: cmdFleet},
		{name: "compact", summary: "reclaim space in the stores (gateway stopped)",
			examples: []string{"cargogate compact --config /etc/cargogate/cargogate.yaml"},
			flags:    configFlag, run: cmdCompact},
		{name: "completion", args: "bash", subs: []string{"bash"}, summary: "print the shell completion script",
			examples: []string{"cargogate completion bash > /etc/bash_completion.d/cargogate", "source <(cargogate completion bash)"},
			run:      cmdCompletion},
		{name: "man", summary: "print the manual page (roff)",
			examples: []string{"cargogate man | man -l -"}, run: cmdMan},
		{name: "version", summary: "print the version",
			examples: []string{"cargogate version"}, run: cmdVersion},
		{name: "help", args: "[COMMAND]", summary: "this text, or a command's",
			examples: []string{"cargogate help inspect"}},
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a misuse: exit status 2. Unless quiet (the command said
// what is wrong already, e.g. the configuration's problems), the message
// and the command's usage are printed on stderr.
type usageError struct {
	msg   string
	quiet bool
}

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// flagsFor returns the command's flag set, its flags declared from the
// table. It prints nothing: run prints the usage.
func flagsFor(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c := lookup(name); c != nil && c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// parseFlags parses flags given before or after the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(reorder(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{msg: err.Error()}
	}
	return nil
}

// reorder puts flags before positional arguments, so that both
// `inspect CODE --config F` and `inspect --config F CODE` work.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					continue
				}
				if i+1 >= len(args) {
					// The value is missing: the parser says so.
					return flags
				}
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(append(flags, "--"), pos...)
}

func sval(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }
func bval(fs *flag.FlagSet, name string) bool {
	return fs.Lookup(name).Value.(flag.Getter).Get().(bool)
}
func dval(fs *flag.FlagSet, name string) time.Duration {
	return fs.Lookup(name).Value.(flag.Getter).Get().(time.Duration)
}

// loadConfig loads --config: a missing file is a usage error that names
// the flag; a configuration with problems lists every problem.
func loadConfig(fs *flag.FlagSet, stderr io.Writer) (*config.Config, error) {
	path := sval(fs, "config")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		def := ""
		if path == defaultConfig {
			def = " (the default)"
		}
		return nil, usageError{msg: fmt.Sprintf("no configuration file %s%s: give one with --config FILE", path, def)}
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration has problems:\n", path)
		printProblems(stderr, err)
		return nil, usageError{msg: "bad configuration", quiet: true}
	}
	return cfg, nil
}

// usageText is a command's usage: synopsis, summary, flags, examples.
func (c *command) usageText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n%s.\n", c.synopsis(), upperFirst(c.summary))
	if c.details != "" {
		fmt.Fprintf(&b, "%s\n", c.details)
	}
	if fl := c.flagLines(); len(fl) > 0 {
		b.WriteString("\nFlags:\n")
		for _, l := range fl {
			fmt.Fprintf(&b, "  %-22s %s\n", l[0], l[1])
		}
	}
	b.WriteString("\nExample:\n")
	for _, e := range c.examples {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

func (c *command) synopsis() string {
	s := "cargogate " + c.name
	if c.args != "" {
		s += " " + c.args
	}
	if c.flags != nil {
		s += " [flags]"
	}
	return s
}

// flagLines are the command's flags as {"--name VALUE", "usage (default …)"}.
func (c *command) flagLines() [][2]string {
	var out [][2]string
	flagsFor(c.name).VisitAll(func(f *flag.Flag) {
		arg, use := flag.UnquoteUsage(f)
		if arg == "value" {
			arg = "VALUE"
		}
		name := "--" + f.Name
		if arg != "" {
			name += " " + strings.ToUpper(arg)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			use += " (default " + f.DefValue + ")"
		}
		out = append(out, [2]string{name, use})
	})
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// globalUsage lists every command.
func globalUsage() string {
	var b strings.Builder
	b.WriteString("cargogate — customs edge gateway for airport cargo terminals\n\nUsage:\n")
	for _, c := range commands {
		syn := c.synopsis()
		if len(syn) > 40 {
			fmt.Fprintf(&b, "  %s\n  %-40s %s\n", syn, "", c.summary)
		} else {
			fmt.Fprintf(&b, "  %-40s %s\n", syn, c.summary)
		}
	}
	fmt.Fprintf(&b, "\nEvery command that reads the configuration takes --config FILE (default %s).\n", defaultConfig)
	b.WriteString("`cargogate COMMAND --help` shows a command's flags and examples.\n\nExamples:\n")
	b.WriteString("  cargogate check-config /etc/cargogate/cargogate.yaml\n  cargogate run --config /etc/cargogate/cargogate.yaml\n  cargogate demo\n")
	return b.String()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "cargogate: no command given\n\n%s", globalUsage())
		return usageError{msg: "no command", quiet: true}
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		name = "help"
	case "--version", "-version":
		name = "version"
	}
	if name == "help" {
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				fmt.Fprint(stdout, c.usageText())
				return nil
			}
			fmt.Fprintf(stderr, "cargogate help: unknown command %q\n\n%s", args[1], globalUsage())
			return usageError{msg: "unknown command", quiet: true}
		}
		fmt.Fprint(stdout, globalUsage())
		return nil
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "cargogate: unknown command %q\n\n%s", name, globalUsage())
		return usageError{msg: "unknown command " + name, quiet: true}
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, c.usageText())
		return nil
	}
	var ue usageError
	if errors.As(err, &ue) && !ue.quiet {
		fmt.Fprintf(stderr, "cargogate %s: %s\n\n%s", c.name, ue.msg, c.usageText())
		return usageError{msg: ue.msg, quiet: true}
	}
	return err
}

// runMain is main without the process: it runs the command, prints an
// error run did not print, and returns the exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout, stderr)
	if err == nil {
		return 0
	}
	var ue usageError
	if !errors.As(err, &ue) || !ue.quiet {
		fmt.Fprintln(stderr, "cargogate:", err)
	}
	return exitCode(err)
}

// noArgs checks that a command got no positional arguments.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	return printVersion(stdout)
}

func cmdCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("completion")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 1 && fs.Arg(0) != "bash" {
		return usageError{msg: fmt.Sprintf("no completion for shell %q: only bash", fs.Arg(0))}
	}
	if fs.NArg() != 1 {
		return usageError{msg: "give the shell: bash"}
	}
	fmt.Fprint(stdout, bashCompletion())
	return nil
}

// bashCompletion completes command names, sub-commands, flags, and files
// for --config and DIR/FILE arguments.
func bashCompletion() string {
	var b strings.Builder
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	b.WriteString("# bash completion for cargogate; made by `cargogate completion bash`\n")
	b.WriteString("_cargogate() {\n")
	b.WriteString("    local cur prev cmd\n")
	b.WriteString("    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
	b.WriteString("    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	b.WriteString("    if [ \"$COMP_CWORD\" -eq 1 ]; then\n")
	fmt.Fprintf(&b, "        COMPREPLY=( $(compgen -W %q -- \"$cur\") )\n", strings.Join(names, " "))
	b.WriteString("        return 0\n    fi\n")
	b.WriteString("    cmd=\"${COMP_WORDS[1]}\"\n")
	b.WriteString("    case \"$prev\" in\n        --config) COMPREPLY=( $(compgen -f -- \"$cur\") ); return 0 ;;\n    esac\n")
	b.WriteString("    case \"$cmd\" in\n")
	for _, c := range commands {
		var flags []string
		flagsFor(c.name).VisitAll(func(f *flag.Flag) { flags = append(flags, "--"+f.Name) })
		flags = append(flags, "--help")
		fmt.Fprintf(&b, "        %s)\n", c.name)
		switch {
		case c.name == "help":
			fmt.Fprintf(&b, "            COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", strings.Join(names, " "))
		case len(c.subs) > 0:
			fmt.Fprintf(&b, "            if [ \"$COMP_CWORD\" -eq 2 ]; then COMPREPLY=( $(compgen -W %q -- \"$cur\") ); else COMPREPLY=( $(compgen -W %q -- \"$cur\") ); fi ;;\n",
				strings.Join(c.subs, " "), strings.Join(flags, " "))
		case c.args == "FILE" || c.args == "DIR":
			fmt.Fprintf(&b, "            COMPREPLY=( $(compgen -W %q -- \"$cur\") $(compgen -f -- \"$cur\") ) ;;\n", strings.Join(flags, " "))
		default:
			fmt.Fprintf(&b, "            COMPREPLY=( $(compgen -W %q -- \"$cur\") ) ;;\n", strings.Join(flags, " "))
		}
	}
	b.WriteString("    esac\n}\ncomplete -F _cargogate cargogate\n")
	return b.String()
}

func cmdMan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagsFor("man")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fmt.Fprint(stdout, manPage())
	return nil
}

// roff escapes text for a man page.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var nb strings.Builder
	for _, r := range s {
		if r > 127 {
			fmt.Fprintf(&nb, `\[u%04X]`, r) // groff reads ASCII
		} else {
			nb.WriteRune(r)
		}
	}
	s = nb.String()
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// manPage is cargogate(1), from the command table.
func manPage() string {
	var b strings.Builder
	// No version in the page: docs/cargogate.1 is this text, kept in the
	// repository and checked by a test.
	b.WriteString(".TH CARGOGATE 1 \"\" \"cargogate\" \"User Commands\"\n")
	b.WriteString(".SH NAME\ncargogate \\- customs edge gateway for airport cargo terminals\n")
	b.WriteString(".SH SYNOPSIS\n.B cargogate\n.I COMMAND\n[\\fIflags\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roff("cargogate applies customs orders received from central over MQTT to a local store, and decides PASS or STOP for every parcel, bag and ULD scanned at the terminal's stations; it drives the gates and serves the screens. Anything not positively released, or in doubt, is STOP.") + "\n")
	fmt.Fprintf(&b, ".PP\nEvery command that reads the configuration takes \\fB\\-\\-config\\fR \\fIFILE\\fR (default \\fI%s\\fR) and \\fB\\-\\-help\\fR.\n", roff(defaultConfig))
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".SS %s\n", roff(c.synopsis()))
		fmt.Fprintf(&b, "%s.\n", roff(upperFirst(c.summary)))
		if c.details != "" {
			fmt.Fprintf(&b, "%s\n", roff(c.details))
		}
		for _, l := range c.flagLines() {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", roff(l[0]), roff(l[1]))
		}
		for _, e := range c.examples {
			fmt.Fprintf(&b, ".PP\n.nf\n.RS\n%s\n.RE\n.fi\n", roff(e))
		}
	}
	b.WriteString(".SH EXIT STATUS\n0 success; 1 the command failed; 2 misuse (unknown command, bad flag, missing or bad configuration).\n")
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B CARGOGATE_TOKEN\nthe bearer token the operator commands send to a running gateway's HTTP API.\n")
	b.WriteString(".SH FILES\n.TP\n.I /etc/cargogate/cargogate.yaml\nthe configuration.\n")
	return b.String()
}
