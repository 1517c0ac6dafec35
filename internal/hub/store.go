package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/gollm/gollm/internal/cachedir"
)

// Store is the model cache: a directory laid out as
//
//	hf/OWNER/NAME/FILE.gguf    pulled from a Hugging Face repository
//	url/HOST/FILE.gguf         pulled from a URL
//
// with partial downloads next to their file as .FILE.gguf.<key>.part.
// Every directory and file must be the user's own (internal/cachedir).
type Store struct {
	Dir string
}

// DefaultStore is the store in the user's cache directory: models under
// cachedir.Dir().
func DefaultStore() (*Store, error) {
	dir, err := cachedir.Dir()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "models")
	if err := cachedir.MkdirOwned(dir); err != nil {
		return nil, err
	}
	return &Store{Dir: dir}, nil
}

// sub returns Dir/parts..., each checked (and made when mkdir is set).
func (s *Store) sub(mkdir bool, parts ...string) (string, error) {
	dir := s.Dir
	for _, p := range parts {
		dir = filepath.Join(dir, p)
		if mkdir {
			if err := cachedir.MkdirOwned(dir); err != nil {
				return "", err
			}
			continue
		}
		st, err := os.Lstat(dir)
		if err != nil {
			return "", err
		}
		if err := cachedir.CheckOwned(dir, st, true); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (s *Store) hfPath(repo, file string, mkdir bool) (string, error) {
	if _, err := safeName(file); err != nil {
		return "", err
	}
	owner, name, _ := strings.Cut(repo, "/")
	dir, err := s.sub(mkdir, "hf", owner, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, file), nil
}

var hostRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

func (s *Store) urlPath(raw string, mkdir bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	host := u.Hostname()
	if !hostRe.MatchString(host) || strings.Contains(host, "..") {
		return "", fmt.Errorf("URL host %s cannot name a cache directory", quote(host))
	}
	if p := u.Port(); p != "" {
		host += "_" + p
	}
	file, err := safeName(path.Base(u.Path))
	if err != nil {
		return "", err
	}
	dir, err := s.sub(mkdir, "url", host)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, file), nil
}

// ggufFiles lists the regular .gguf files in dir (no partial files).
func ggufFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); !strings.HasPrefix(n, ".") && strings.HasSuffix(strings.ToLower(n), ".gguf") {
			names = append(names, n)
		}
	}
	return names, nil
}

// Lookup finds ref in the store without the network. A model that is not
// there is an error naming `gollm pull`.
func (s *Store) Lookup(ref Ref) (string, error) {
	notCached := fmt.Errorf("%s is not in the model cache (%s); get it with: gollm pull %s", ref, s.Dir, strings.TrimPrefix(ref.String(), "hf:"))
	var p string
	if ref.URL != "" {
		var err error
		if p, err = s.urlPath(ref.URL, false); errors.Is(err, fs.ErrNotExist) {
			return "", notCached
		} else if err != nil {
			return "", err
		}
	} else {
		owner, name, _ := strings.Cut(ref.Repo, "/")
		dir, err := s.sub(false, "hf", owner, name)
		if errors.Is(err, fs.ErrNotExist) {
			return "", notCached
		} else if err != nil {
			return "", err
		}
		names, err := ggufFiles(dir)
		if err != nil {
			return "", err
		}
		if len(names) == 0 {
			return "", notCached
		}
		file, err := Pick(names, ref.Quant)
		if err != nil && ref.Quant != "" {
			return "", fmt.Errorf("%s is not in the model cache (it holds %s of %s); get it with: gollm pull %s", ref, available(names), ref.Repo, strings.TrimPrefix(ref.String(), "hf:"))
		} else if err != nil {
			return "", fmt.Errorf("%s in the model cache: %w", ref, err)
		}
		p = filepath.Join(dir, file)
	}
	if _, err := cachedir.CheckFile(p); errors.Is(err, fs.ErrNotExist) {
		return "", notCached
	} else if err != nil {
		return "", err
	}
	return p, nil
}

// Entry is one cached model.
type Entry struct {
	Ref   string // hf:OWNER/NAME:QUANT, or url:HOST/FILE
	Repo  string // OWNER/NAME, or the URL's host
	Quant string // from the file name; "" when it has none
	File  string
	Size  int64
	Path  string
}

// List returns the cached models, sorted by ref. Entries that are not
// the user's own are left out.
func (s *Store) List() ([]Entry, error) {
	var out []Entry
	add := func(dir, repo, ref string) {
		names, err := ggufFiles(dir)
		if err != nil {
			return
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			st, err := cachedir.CheckFile(p)
			if err != nil {
				continue
			}
			q := QuantOf(n)
			r := ref + ":" + q
			if q == "" {
				r = ref + ":" + n
			}
			if strings.HasPrefix(ref, "url:") {
				r = ref + "/" + n
			}
			out = append(out, Entry{Ref: r, Repo: repo, Quant: q, File: n, Size: st.Size(), Path: p})
		}
	}
	owners, _ := os.ReadDir(filepath.Join(s.Dir, "hf"))
	for _, o := range owners {
		names, _ := os.ReadDir(filepath.Join(s.Dir, "hf", o.Name()))
		for _, n := range names {
			if dir, err := s.sub(false, "hf", o.Name(), n.Name()); err == nil {
				repo := o.Name() + "/" + n.Name()
				add(dir, repo, "hf:"+repo)
			}
		}
	}
	hosts, _ := os.ReadDir(filepath.Join(s.Dir, "url"))
	for _, h := range hosts {
		if dir, err := s.sub(false, "url", h.Name()); err == nil {
			add(dir, h.Name(), "url:"+h.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// Remove deletes the cached model that ref names (a ref as Pull takes
// it, or url:HOST/FILE as List shows it), with its partial downloads, and
// returns its path.
func (s *Store) Remove(ref string) (string, error) {
	var p string
	if rest, ok := strings.CutPrefix(ref, "url:"); ok {
		host, file, _ := strings.Cut(rest, "/")
		if _, err := safeName(file); err != nil || !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`).MatchString(host) || strings.Contains(host, "..") {
			return "", fmt.Errorf("bad reference %s: url:HOST/FILE.gguf, as gollm ls shows it", quote(ref))
		}
		dir, err := s.sub(false, "url", host)
		if err != nil {
			return "", fmt.Errorf("%s is not in the model cache", quote(ref))
		}
		p = filepath.Join(dir, file)
	} else {
		r, err := ParseRef(ref)
		if err != nil {
			return "", err
		}
		if r.URL == "" && r.Quant == "" {
			// Never let Pick's default choose what to delete.
			owner, name, _ := strings.Cut(r.Repo, "/")
			if dir, err := s.sub(false, "hf", owner, name); err == nil {
				if names, _ := ggufFiles(dir); len(names) > 1 {
					return "", fmt.Errorf("%s holds %d models (%s); name one as %s:QUANT", r.Repo, len(names), available(names), r.Repo)
				}
			}
		}
		if p, err = s.Lookup(r); err != nil {
			return "", err
		}
	}
	if _, err := cachedir.CheckFile(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s is not in the model cache", quote(ref))
		}
		return "", err
	}
	if err := os.Remove(p); err != nil {
		return "", err
	}
	parts, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "."+globEscape(filepath.Base(p))+".*.part"))
	for _, q := range parts {
		os.Remove(q)
	}
	return p, nil
}

func globEscape(s string) string {
	return strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`).Replace(s)
}
