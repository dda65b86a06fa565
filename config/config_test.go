package config_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/cargogate/cargogate/config"
	"github.com/cargogate/cargogate/drivers"
)

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	files = append(files, "../cargogate.example.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// expectedErrors reads the "# error: …" lines among the comments at the top
// of a bad file.
func expectedErrors(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# error: ")
		if !ok {
			if strings.HasPrefix(sc.Text(), "#") {
				continue
			}
			break
		}
		want = append(want, line)
	}
	if len(want) == 0 {
		t.Fatalf("%s: no '# error: ' line at the top", path)
	}
	return want
}

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// TestBadFiles loads each bad file: its error must contain each of the
// file's "# error:" lines, and be exactly its golden file (NAME.bad.golden,
// the whole text of every problem; -update rewrites them).
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("only %d bad files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := expectedErrors(t, f)
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatal("parsed without error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantAll, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got != string(wantAll) {
				t.Errorf("errors differ from %s:\ngot:\n%swant:\n%s", golden, got, wantAll)
			}
		})
	}
}

// TestGoodFilesAsBefore compares each good file, loaded, with the values
// it loaded to before the drivers owned their sections and the walk
// checked the tree (NAME.good.json, written then by the old code: every
// non-zero value, a device's keys beside its driver).
func TestGoodFilesAsBefore(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(nonZero(flattenSections(v)), "", "  ")
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if string(got)+"\n" != string(want) {
				t.Errorf("loads differently than before:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// flattenSections puts a device's section keys beside its driver, as the
// old config.Scanner and config.Gate held them.
func flattenSections(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if sec, ok := x["Section"].(map[string]any); ok {
			if _, dev := x["Driver"]; dev {
				delete(x, "Section")
				for k, e := range flattenSections(sec).(map[string]any) {
					x[k] = e
				}
			}
		}
		for k, e := range x {
			x[k] = flattenSections(e)
		}
	case []any:
		for i := range x {
			x[i] = flattenSections(x[i])
		}
	}
	return v
}

// nonZero drops the zero values (empty strings, 0, false, null, empty
// maps and lists) of a decoded JSON value.
func nonZero(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			e = nonZero(e)
			switch y := e.(type) {
			case nil:
				continue
			case string:
				if y == "" {
					continue
				}
			case float64:
				if y == 0 {
					continue
				}
			case bool:
				if !y {
					continue
				}
			case map[string]any:
				if len(y) == 0 {
					continue
				}
			case []any:
				if len(y) == 0 {
					continue
				}
			}
			out[k] = e
		}
		return out
	case []any:
		for i := range x {
			x[i] = nonZero(x[i])
		}
	}
	return v
}

func TestDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Central.GapGrace != 2*time.Second || c.Central.ResyncTimeout != 30*time.Second ||
		c.Central.LookupTimeout != 300*time.Millisecond {
		t.Errorf("central durations: %+v", c.Central)
	}
	if c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("log: %+v", c.Log)
	}
	st := c.Stations[0]
	if st.CloseAfter != 10*time.Minute || st.Scanner.Section.(*drivers.SerialScannerConfig).Baud != 9600 {
		t.Errorf("station: %+v", st)
	}
	g := st.Gate.Section.(*drivers.SerialGateConfig)
	if g.Baud != 9600 || g.Pass != "PASS\r\n" || g.Stop != "STOP\r\n" || g.AckTimeout != 500*time.Millisecond {
		t.Errorf("serial gate: %+v", g)
	}
}

func TestFullFile(t *testing.T) {
	c, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Central.LookupTimeout != -time.Second {
		t.Errorf("negative lookup_timeout: got %v, want -1s (off, kept negative)", c.Central.LookupTimeout)
	}
	if c.Central.GapGrace != 5*time.Second || c.Central.ResyncTimeout != time.Minute {
		t.Errorf("durations: %+v", c.Central)
	}
	m := c.Stations[2].Gate.Section.(*drivers.ModbusGateConfig)
	if *m.Unit != 0 || m.PulseMS != 1500 || *m.OpenCoil != 0 || *m.AlarmCoil != 1 || *m.ClosedInput != 3 {
		t.Errorf("modbus gate: %+v", m)
	}
	if c.Stations[0].CloseAfter != 15*time.Minute || c.Stations[0].Scanner.Section.(*drivers.TCPServerConfig).Debounce != time.Second {
		t.Errorf("arrival station: %+v", c.Stations[0])
	}
	relay := c.Stations[3].Gate.Section.(*drivers.SerialGateConfig)
	pass, err := drivers.DecodeFrame(relay.Pass)
	if err != nil || !bytes.Equal(pass, []byte{0xA0, 0x01, 0x01, 0xA2}) {
		t.Errorf("relay pass frame: %x, %v", pass, err)
	}
}

func TestModbusUnitDefault(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(bytes.Replace(data, []byte("      unit: 0\n"), nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := *c.Stations[2].Gate.Section.(*drivers.ModbusGateConfig).Unit; got != 1 {
		t.Errorf("unit left out: got %d, want default 1", got)
	}
}

func TestDoubleQuotedAndEscapedFramesAgree(t *testing.T) {
	// In YAML, "PASS\r\n" (double quotes) is already CR LF; 'PASS\r\n'
	// (single quotes) holds backslashes. Both must mean the same bytes.
	const doc = "a: \"PASS\\r\\n\"\nb: 'PASS\\r\\n'\n"
	c, err := Parse([]byte(doc))
	if err == nil || c != nil {
		t.Fatal("unknown keys a, b accepted")
	}
	for _, s := range []string{"PASS\r\n", `PASS\r\n`} {
		got, err := drivers.DecodeFrame(s)
		if err != nil || string(got) != "PASS\r\n" {
			t.Errorf("DecodeFrame(%q) = %q, %v", s, got, err)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{`PASS\r\n`, "PASS\r\n", ""},
		{"PASS\r\n", "PASS\r\n", ""},
		{`\xA0\x01\x01\xA2`, "\xa0\x01\x01\xa2", ""},
		{`\xa0`, "\xa0", ""},
		{`a\\b`, `a\b`, ""},
		{"", "", ""},
		{`\q`, "", "unknown escape"},
		{`ab\`, "", "lone"},
		{`\x4`, "", "two hex digits"},
		{`\xG1`, "", "not two hex digits"},
		{`\x+1`, "", "not two hex digits"},
	}
	for _, tt := range tests {
		got, err := drivers.DecodeFrame(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("DecodeFrame(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("DecodeFrame(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateProgrammatic(t *testing.T) {
	c, err := Load("../cargogate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Stations[0].Gate.Section.(*drivers.SerialGateConfig).Baud = 300
	err = c.Validate()
	const want = `stations[0] ("gate-3").gate.baud: must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 (got 300)`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "data_dir: required") {
		t.Errorf("empty file: %v", err)
	}
}

func TestOutbox(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{{"1048576", 1 << 20}, {"1GiB", 1 << 30}, {"512 MiB", 512 << 20}, {"100KB", 100_000}, {"7B", 7}} {
		if got, err := ParseByteSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "GiB", "99999999999TiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	c, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox != (Outbox{MaxEvents: 200000, MaxBytes: 256 << 20, AlarmPercent: 75, RedeliverWindow: 45 * time.Second}) {
		t.Errorf("full: outbox %+v", c.Outbox)
	}
	c, err = Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox != (Outbox{MaxEvents: DefaultOutboxMaxEvents, MaxBytes: DefaultOutboxMaxBytes, AlarmPercent: DefaultOutboxAlarmPercent}) {
		t.Errorf("defaults: outbox %+v", c.Outbox)
	}
}
