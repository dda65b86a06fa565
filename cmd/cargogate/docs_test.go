package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestDocsLinks checks README.md and docs/*.md: every relative link names
// a file of the repository and every #anchor a heading of its page; no
// doc points outside the repository; every repository path a doc names
// in backquotes exists.
func TestDocsLinks(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	code := regexp.MustCompile("`([^`\n]+)`")
	repoPath := regexp.MustCompile(`^(cmd|docs|gateway|internal|sync|drivers|config)/[A-Za-z0-9_./-]*[A-Za-z0-9_]$`)
	mdFile := regexp.MustCompile(`^[A-Za-z0-9_./-]+\.md$`)
	goIdent := regexp.MustCompile(`\.[A-Z]\w*$`)
	outside := regexp.MustCompile(`\.\./shared|/work/|\.\./\.\./`)
	anchors := map[string]map[string]bool{}
	headings := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		data, _ := os.ReadFile(file)
		seen := map[string]int{}
		for _, l := range prose(string(data)) {
			if !strings.HasPrefix(l, "#") {
				continue
			}
			s := slug(strings.TrimLeft(l, "#"))
			if n := seen[s]; n > 0 {
				a[s+"-"+strconv.Itoa(n)] = true
			} else {
				a[s] = true
			}
			seen[s]++
		}
		anchors[file] = a
		return a
	}
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, l := range strings.Split(string(data), "\n") {
			if m := outside.FindString(l); m != "" {
				t.Errorf("%s:%d: points outside the repository (%q): %s", rel, i+1, m, l)
			}
		}
		for _, l := range prose(string(data)) {
			for _, m := range link.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				file := doc
				if path != "" {
					file = filepath.Join(filepath.Dir(doc), path)
					if r, err := filepath.Rel(root, file); err != nil || strings.HasPrefix(r, "..") {
						t.Errorf("%s: link %q leaves the repository", rel, target)
						continue
					}
					if _, err := os.Stat(file); err != nil {
						t.Errorf("%s: link %q: no such file", rel, target)
						continue
					}
				}
				if anchor != "" && strings.HasSuffix(file, ".md") && !headings(file)[anchor] {
					t.Errorf("%s: link %q: no heading with anchor #%s in %s", rel, target, anchor, filepath.Base(file))
				}
			}
			for _, m := range code.FindAllStringSubmatch(l, -1) {
				p := strings.TrimSuffix(m[1], "/")
				if mdFile.MatchString(p) {
					_, e1 := os.Stat(filepath.Join(root, p))
					_, e2 := os.Stat(filepath.Join(filepath.Dir(doc), p))
					if e1 != nil && e2 != nil {
						t.Errorf("%s: names `%s`, which is not in the repository", rel, p)
					}
					continue
				}
				p = goIdent.ReplaceAllString(p, "") // gateway/scan.Outcome: the package
				if !repoPath.MatchString(p) || strings.ContainsAny(p, "*{") {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s: names `%s`, which is not in the repository", rel, p)
				}
			}
		}
	}
}

// prose is a markdown file's lines outside fenced code blocks.
func prose(s string) []string {
	var out []string
	fenced := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// slug is a heading's anchor as GitHub makes it: lower case, spaces to
// hyphens, punctuation other than - and _ dropped.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
