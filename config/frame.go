package config

import (
	"fmt"
	"strconv"
)

// DecodeFrame turns a gate frame as configured into the bytes written
// (PROTOCOL.md §8). It understands the escapes \r, \n, \\ and \xHH (two hex
// digits), as written in a single-quoted YAML string or a plain scalar; any
// other byte, real control bytes included (a double-quoted YAML "PASS\r\n"
// arrives already decoded), stands for itself.
func DecodeFrame(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("frame %q: lone \\ at the end", s)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+3 > len(s) {
				return nil, fmt.Errorf("frame %q: \\x needs two hex digits", s)
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("frame %q: \\x%s: not two hex digits", s, s[i+1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf("frame %q: unknown escape \\%c (use \\r, \\n, \\\\ or \\xHH)", s, s[i])
		}
	}
	return out, nil
}
