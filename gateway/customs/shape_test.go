package customs

import (
	"regexp"
	"strings"
	"testing"
)

var shapePatterns = []struct {
	name string
	s    shape
	re   *regexp.Regexp
}{
	{"id", idRE, regexp.MustCompile(`^[A-Z0-9]{1,64}$`)},
	{"office", officeRE, regexp.MustCompile(`^[0-9]{4}$`)},
	{"seal", sealRE, regexp.MustCompile(`^[A-Z0-9-]{1,32}$`)},
}

func checkShapes(t *testing.T, s string) {
	for _, p := range shapePatterns {
		if got, want := p.s.MatchString(s), p.re.MatchString(s); got != want {
			t.Errorf("%s shape on %q: %v, the pattern says %v", p.name, s, got, want)
		}
	}
}

// TestShapesMatchTheirPatterns: each shape accepts exactly what its
// regular expression does.
func TestShapesMatchTheirPatterns(t *testing.T) {
	for _, s := range []string{"", "A", "a", "2244", "224", "22445", "22A4", "RR123456785CN", "CN-ES-000123", "-", "A-",
		"A\n", "\nA", "É", "AÉ", "A B", strings.Repeat("A", 32), strings.Repeat("A", 33), strings.Repeat("9", 64),
		strings.Repeat("9", 65), "0000", "A\x00", "[", "@", "Z", "9", "/", ":"} {
		checkShapes(t, s)
	}
}

func FuzzShapes(f *testing.F) {
	for _, s := range []string{"RR123456785CN", "2244", "CN-ES-000123", "a-Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkShapes(t, s) })
}
