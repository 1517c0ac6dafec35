package hub

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ref names a model to pull: a Hugging Face repository with an optional
// quantization name, or the URL of a GGUF file.
type Ref struct {
	Repo  string // "owner/name"; "" for a URL
	Quant string // "Q4_K_M"; "" to let Pick choose
	URL   string // "https://…/x.gguf"; "" for a repository
}

// String is the ref as ParseRef reads it back: hf:owner/name[:QUANT], or
// the URL.
func (r Ref) String() string {
	if r.URL != "" {
		return r.URL
	}
	if r.Quant == "" {
		return "hf:" + r.Repo
	}
	return "hf:" + r.Repo + ":" + r.Quant
}

var (
	// repoPart is one half of owner/name, as the hub allows them.
	repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
	// quantRe is a quantization name (or any part of a file name).
	quantRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// ParseRef reads [hf:]OWNER/NAME[:QUANT] or an http(s) URL. The error
// says what is wrong and quotes at most 80 characters of s.
func ParseRef(s string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("model reference %s: %s (want [hf:]OWNER/NAME[:QUANT], like Qwen/Qwen3-8B-GGUF:Q4_K_M, or an https:// URL of a .gguf file)", quote(s), why)
	}
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		u, err := url.Parse(s)
		if err != nil {
			return bad("not a URL")
		}
		if u.Host == "" || u.User != nil {
			return bad("a URL needs a host and no user:password")
		}
		if _, err := safeName(path.Base(u.Path)); err != nil {
			return bad("the URL's file name: " + err.Error())
		}
		return Ref{URL: s}, nil
	}
	rest := strings.TrimPrefix(s, "hf:")
	repo, quant, hasQuant := strings.Cut(rest, ":")
	owner, name, ok := strings.Cut(repo, "/")
	switch {
	case rest == "":
		return bad("empty")
	case !ok || strings.Contains(name, "/"):
		return bad("the repository is OWNER/NAME, with one slash")
	case !repoPart.MatchString(owner) || !repoPart.MatchString(name):
		return bad("owner and name are 1 to 96 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case strings.Contains(repo, ".."):
		return bad("the repository name contains \"..\"")
	case hasQuant && !quantRe.MatchString(quant):
		return bad("the quantization after ':' is 1 to 128 letters, digits, '.', '_', '+' or '-'")
	}
	return Ref{Repo: repo, Quant: quant}, nil
}

// quote quotes s, Go-style, with at most 80 characters of it.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= 80 {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == 80 {
			return strconv.Quote(s[:i]) + fmt.Sprintf("… (%d bytes)", len(s))
		}
		n++
	}
	return strconv.Quote(s)
}

// safeName checks a file name that will be a file in the cache: no
// directory, no leading dot (the cache's own partial files start with
// one), no control characters, at most 200 bytes, ending in .gguf.
func safeName(name string) (string, error) {
	switch {
	case name == "" || name == "." || name == ".." || name == "/":
		return "", fmt.Errorf("no file name")
	case strings.ContainsAny(name, `/\:`):
		return "", fmt.Errorf("file name %s has a path separator", quote(name))
	case strings.HasPrefix(name, "."):
		return "", fmt.Errorf("file name %s starts with a dot", quote(name))
	case len(name) > 200:
		return "", fmt.Errorf("file name of %d bytes (at most 200)", len(name))
	case !strings.HasSuffix(strings.ToLower(name), ".gguf"):
		return "", fmt.Errorf("file name %s does not end in .gguf", quote(name))
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return "", fmt.Errorf("file name %s has control characters", quote(name))
		}
	}
	return name, nil
}

// safeRepoPath checks a path from a repository listing: relative, no
// "..", "." or empty segments, no backslashes.
func safeRepoPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || len(p) > 1024 {
		return fmt.Errorf("unsafe path %s in the listing", quote(p))
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("unsafe path %s in the listing", quote(p))
		}
	}
	return nil
}

// DefaultQuant is what Pick chooses when no quantization is named and the
// repository has several files (llama.cpp's -hf does the same).
const DefaultQuant = "Q4_K_M"

var (
	splitRe = regexp.MustCompile(`(?i)-\d{5}-of-\d{5}\.gguf$`)
	quantIn = regexp.MustCompile(`(?i)(?:^|[-._])((?:I?Q\d+(?:_[A-Z0-9]+)*)|BF16|F16|F32)(?:[-._]|$)`)
)

// QuantOf is the quantization name in a GGUF file name
// ("Qwen3-8B-Q4_K_M.gguf" → "Q4_K_M"), or "" when it has none that looks
// like one.
func QuantOf(file string) string {
	base := path.Base(file)
	base = base[:len(base)-len(path.Ext(base))]
	m := quantIn.FindAllStringSubmatch(base, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// Pick chooses the GGUF file that quant names among paths: the one whose
// base name contains quant, ignoring case; when several do, the one
// where it stands between separators (Q4_K picks x-Q4_K.gguf over
// x-Q4_K_M.gguf). With quant "", a repository with one GGUF file gives
// that file and one with several gives DefaultQuant's. Files that are
// not .gguf, split files (-00001-of-00003.gguf) and, without a quant,
// vision projectors (mmproj) are left out. The errors list what there is.
func Pick(paths []string, quant string) (string, error) {
	var ggufs, splits []string
	for _, p := range paths {
		switch base := path.Base(p); {
		case !strings.HasSuffix(strings.ToLower(base), ".gguf"):
		case splitRe.MatchString(base):
			splits = append(splits, p)
		case quant == "" && strings.Contains(strings.ToLower(base), "mmproj"):
		default:
			ggufs = append(ggufs, p)
		}
	}
	sort.Strings(ggufs)
	if quant == "" {
		switch len(ggufs) {
		case 0:
			return "", noGGUF(splits)
		case 1:
			return ggufs[0], nil
		}
		if p, err := Pick(ggufs, DefaultQuant); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%d GGUF files; name a quantization after ':' (available: %s)", len(ggufs), available(ggufs))
	}
	q := strings.ToLower(quant)
	var found, bounded []string
	for _, p := range ggufs {
		base := strings.ToLower(path.Base(p))
		i := strings.Index(base, q)
		if i < 0 {
			continue
		}
		found = append(found, p)
		for ; i >= 0; i = nextIndex(base, q, i) {
			if (i == 0 || !wordByte(base[i-1])) && (i+len(q) == len(base) || !wordByte(base[i+len(q)])) {
				bounded = append(bounded, p)
				break
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(bounded) == 1:
		return bounded[0], nil
	case len(found) > 1:
		return "", fmt.Errorf("%d GGUF files match %s: %s; name one more exactly", len(found), quote(quant), strings.Join(found, ", "))
	case len(ggufs) == 0:
		return "", noGGUF(splits)
	}
	for _, p := range splits {
		if strings.Contains(strings.ToLower(path.Base(p)), q) {
			return "", fmt.Errorf("only split GGUF files match %s (%s, …), which gollm cannot load yet (available: %s)", quote(quant), p, available(ggufs))
		}
	}
	return "", fmt.Errorf("no GGUF file matches %s (available: %s)", quote(quant), available(ggufs))
}

func nextIndex(s, sub string, i int) int {
	j := strings.Index(s[i+1:], sub)
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func wordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func noGGUF(splits []string) error {
	if len(splits) > 0 {
		return fmt.Errorf("only split GGUF files (%s, …), which gollm cannot load yet", splits[0])
	}
	return fmt.Errorf("no GGUF files")
}

// available lists the quantizations of files (their names, for files
// without one), at most 40 of them.
func available(files []string) string {
	var names []string
	seen := map[string]bool{}
	for _, f := range files {
		n := QuantOf(f)
		if n == "" {
			n = path.Base(f)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(names) > 40 {
		return strings.Join(names[:40], ", ") + fmt.Sprintf(", … (%d in all)", len(names))
	}
	return strings.Join(names, ", ")
}
