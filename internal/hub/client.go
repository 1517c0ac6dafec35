package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gollm/gollm/internal/cachedir"
)

// DefaultEndpoint is the Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// DefaultMaxSize is the largest file Pull accepts unless Client.MaxSize
// says otherwise: 1 TiB, above any GGUF file published.
const DefaultMaxSize = 1 << 40

// DefaultIdleTimeout is Client.IdleTimeout's default.
const DefaultIdleTimeout = 2 * time.Minute

// maxListing bounds the repository listing read into memory.
const maxListing = 16 << 20

// Client talks to the hub. The zero value uses DefaultEndpoint, no
// token, its own HTTP client and DefaultMaxSize.
type Client struct {
	Endpoint string       // base URL of the hub; "" for DefaultEndpoint
	Token    string       // sent as a Bearer token to Endpoint's host only
	HTTP     *http.Client // nil: one with a 60 s wait for response headers
	MaxSize  int64        // largest file accepted; 0 for DefaultMaxSize
	// Retries is how many times a download that stops early (a dropped
	// connection) is resumed within one Pull, each after some progress.
	Retries int
	// Progress, when set, is called as bytes arrive with the bytes on
	// disk and the file's size (callers throttle their drawing).
	Progress func(done, total int64)
	// IdleTimeout ends a download that receives nothing for this long (a
	// stalled connection), which is then resumed like a dropped one; 0
	// for DefaultIdleTimeout.
	IdleTimeout time.Duration
	Logger      *slog.Logger // nil: nothing logged
}

// File is one file of a repository listing.
type File struct {
	Path   string // in the repository, "/"-separated
	Size   int64
	SHA256 string // lowercase hex, from lfs.oid; "" for a non-LFS file
}

// Result is what Pull did.
type Result struct {
	Path    string // the file in the cache
	Ref     Ref    // what was pulled, with Quant filled in from the file name
	Size    int64
	SHA256  string // verified; "" when the server published none
	Already bool   // the same file was already there; nothing was downloaded
	Resumed int64  // bytes that were on disk from an earlier try
}

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/")
}

func (c *Client) maxSize() int64 {
	if c.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return c.MaxSize
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: tr}
}

// newRequest makes a request with the token for the endpoint's host and
// no transparent compression (ranges count bytes of the file itself).
func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "gollm")
	req.Header.Set("Accept-Encoding", "identity")
	if ep, err := url.Parse(c.endpoint()); err == nil && c.Token != "" && req.URL.Host == ep.Host {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// statusError describes an answer that is not the one wanted.
func statusError(what string, resp *http.Response) error {
	msg := fmt.Sprintf("%s: the server answered %s", what, resp.Status)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (a gated or private repository needs HF_TOKEN set to a token with access)"
	case http.StatusNotFound:
		msg += " (no such repository, revision or file)"
	}
	return errors.New(msg)
}

// List returns the files of the repository owner/name at main.
func (c *Client) List(ctx context.Context, repo string) ([]File, error) {
	u := c.endpoint() + "/api/models/" + repo + "/tree/main?recursive=true"
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError("listing "+repo, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListing+1))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", repo, err)
	}
	if len(body) > maxListing {
		return nil, fmt.Errorf("listing %s: longer than %d MiB", repo, maxListing>>20)
	}
	var entries []struct {
		Type string `json:"type"`
		Path string `json:"path"`
		Size int64  `json:"size"`
		LFS  *struct {
			OID  string `json:"oid"`
			Size int64  `json:"size"`
		} `json:"lfs"`
	}
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("listing %s: not the hub's JSON: %w", repo, err)
	}
	var files []File
	for _, e := range entries {
		if e.Type != "file" {
			continue
		}
		if err := safeRepoPath(e.Path); err != nil {
			return nil, fmt.Errorf("listing %s: %w", repo, err)
		}
		f := File{Path: e.Path, Size: e.Size}
		if e.LFS != nil {
			if !sha256Hex(e.LFS.OID) {
				return nil, fmt.Errorf("listing %s: %s has lfs.oid %s, not a SHA-256", repo, quote(e.Path), quote(e.LFS.OID))
			}
			f.SHA256, f.Size = strings.ToLower(e.LFS.OID), e.LFS.Size
		}
		if f.Size < 0 {
			return nil, fmt.Errorf("listing %s: %s has size %d", repo, quote(e.Path), f.Size)
		}
		files = append(files, f)
	}
	return files, nil
}

var hexRe = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func sha256Hex(s string) bool { return hexRe.MatchString(s) }

// Meta is what the metadata requests say about a file.
type Meta struct {
	URL    string // where the bytes are, after the redirects
	Size   int64  // X-Linked-Size, else the final Content-Length; -1 if neither
	SHA256 string // from X-Linked-Etag (or an ETag that is a SHA-256); "" if none
}

// Meta asks for u's metadata with HEAD requests, following up to 10
// redirects by hand so the X-Linked-* headers of the hub's own answer
// are kept, and stopping at a redirect to another host once they gave
// the size (see the package documentation).
func (c *Client) Meta(ctx context.Context, u string) (Meta, error) {
	hc := *c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	m := Meta{Size: -1}
	for hop := 0; ; hop++ {
		if hop > 10 {
			return Meta{}, fmt.Errorf("%s: more than 10 redirects", u)
		}
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return Meta{}, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return Meta{}, err
		}
		resp.Body.Close()
		if m.SHA256 == "" {
			if e := unquoteETag(resp.Header.Get("X-Linked-Etag")); sha256Hex(e) {
				m.SHA256 = strings.ToLower(e)
			}
		}
		if m.Size < 0 {
			if s := resp.Header.Get("X-Linked-Size"); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n < 0 {
					return Meta{}, fmt.Errorf("%s: X-Linked-Size %s is not a size", u, quote(s))
				}
				m.Size = n
			}
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return Meta{}, fmt.Errorf("%s: redirect without a usable Location: %w", u, err)
			}
			if m.Size >= 0 && loc.Host != req.URL.Host {
				// The hub's redirect to its CDN, whose X-Linked-*
				// headers said all: the CDN's link is signed for GET
				// only (a HEAD there can be refused), so it is not
				// asked, as huggingface_hub does not ask it.
				m.URL = loc.String()
				return m, nil
			}
			u = loc.String()
			continue
		case resp.StatusCode != http.StatusOK:
			return Meta{}, statusError(u, resp)
		}
		if m.SHA256 == "" {
			if e := unquoteETag(resp.Header.Get("ETag")); sha256Hex(e) {
				m.SHA256 = strings.ToLower(e)
			}
		}
		if m.Size < 0 {
			m.Size = resp.ContentLength
		}
		m.URL = u
		return m, nil
	}
}

func unquoteETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// Pull gets ref into the store, as the package documentation describes,
// and returns where it is. want, when not "", is a SHA-256 the caller
// requires (for URLs whose server publishes none).
func (c *Client) Pull(ctx context.Context, st *Store, ref Ref, want string) (Result, error) {
	if want != "" && !sha256Hex(want) {
		return Result{}, fmt.Errorf("%s is not a SHA-256 (64 hex digits)", quote(want))
	}
	want = strings.ToLower(want)
	var (
		dst, u string
		size   = int64(-1)
		sha    = want
	)
	if ref.URL != "" {
		var err error
		if dst, err = st.urlPath(ref.URL, true); err != nil {
			return Result{}, err
		}
		u = ref.URL
	} else {
		files, err := c.List(ctx, ref.Repo)
		if err != nil {
			return Result{}, err
		}
		paths := make([]string, len(files))
		for i, f := range files {
			paths[i] = f.Path
		}
		p, err := Pick(paths, ref.Quant)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", ref.Repo, err)
		}
		f := files[indexOf(paths, p)]
		if ref.Quant == "" {
			ref.Quant = QuantOf(p)
		}
		if dst, err = st.hfPath(ref.Repo, path.Base(p), true); err != nil {
			return Result{}, err
		}
		if f.SHA256 != "" {
			if sha != "" && sha != f.SHA256 {
				return Result{}, fmt.Errorf("%s: the hub publishes SHA-256 %s, not the %s asked for", p, f.SHA256, sha)
			}
			sha = f.SHA256
		}
		size = f.Size
		u = c.endpoint() + "/" + ref.Repo + "/resolve/main/" + escapePath(p)
	}
	m, err := c.Meta(ctx, u)
	if err != nil {
		return Result{}, err
	}
	switch {
	case m.SHA256 != "" && sha != "" && m.SHA256 != sha:
		return Result{}, fmt.Errorf("%s: the listing (or --sha256) says SHA-256 %s, the server's headers %s", u, sha, m.SHA256)
	case m.SHA256 != "":
		sha = m.SHA256
	}
	switch {
	case m.Size >= 0 && size >= 0 && m.Size != size:
		return Result{}, fmt.Errorf("%s: the listing says %d bytes, the server's headers %d", u, size, m.Size)
	case m.Size >= 0:
		size = m.Size
	}
	if size < 0 {
		return Result{}, fmt.Errorf("%s: the server gives no size (no Content-Length), so the download cannot be bounded or resumed", u)
	}
	if size > c.maxSize() {
		return Result{}, fmt.Errorf("%s: %d bytes, more than the %d-byte limit", u, size, c.maxSize())
	}
	res := Result{Path: dst, Ref: ref, Size: size, SHA256: sha}
	res.Already, res.Resumed, err = c.download(ctx, m.URL, dst, sha, size)
	return res, err
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// fatal marks a download error that a retry cannot fix; the partial
// file is removed.
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

// download gets u into dst (see Pull), resuming a partial file.
func (c *Client) download(ctx context.Context, u, dst, sha string, size int64) (already bool, resumed int64, err error) {
	log := c.log().With("url", u, "file", dst)
	if st, err := cachedir.CheckFile(dst); err == nil {
		if st.Size() != size {
			return false, 0, fmt.Errorf("refusing to overwrite %s: it has %d bytes, the download %d (remove it with gollm rm)", dst, st.Size(), size)
		}
		if sha != "" {
			got, err := hashFile(dst)
			if err != nil {
				return false, 0, err
			}
			if got != sha {
				return false, 0, fmt.Errorf("refusing to overwrite %s: its SHA-256 is %s, the download's %s (remove it with gollm rm)", dst, got, sha)
			}
		}
		return true, 0, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, 0, err
	}
	key := sha256.Sum256([]byte(sha + "/" + strconv.FormatInt(size, 10)))
	part := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+"."+hex.EncodeToString(key[:8])+".part")
	f, err := openPart(part)
	if err != nil {
		return false, 0, err
	}
	keep := true
	defer func() {
		f.Close()
		if !keep {
			os.Remove(part)
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return false, 0, err
	}
	off := st.Size()
	if off > size {
		off = 0
	}
	resumed = off
	if off > 0 {
		log.Info("resuming", "have", off, "size", size)
	}
	for tries := 0; off < size; tries++ {
		n, err := c.fetch(ctx, u, f, off, size)
		off += n
		if err == nil {
			break
		}
		var fe fatal
		if errors.As(err, &fe) {
			keep = false
			return false, 0, fe.error
		}
		if ctx.Err() != nil || n == 0 || tries >= c.Retries {
			return false, resumed, fmt.Errorf("%w (%d of %d bytes kept: pull again to resume)", err, off, size)
		}
		log.Warn("download stopped; resuming", "have", off, "size", size, "err", err)
	}
	if err := f.Sync(); err != nil {
		return false, 0, err
	}
	got, err := hashReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return false, 0, err
	}
	if sha != "" && got != sha {
		keep = false
		return false, 0, fmt.Errorf("checksum mismatch: the %d bytes downloaded have SHA-256 %s, the server publishes %s; nothing was kept", size, got, sha)
	}
	if err := f.Close(); err != nil {
		return false, 0, err
	}
	if _, err := os.Lstat(dst); err == nil {
		keep = false
		return false, 0, fmt.Errorf("refusing to overwrite %s, which appeared during the download", dst)
	}
	if err := os.Rename(part, dst); err != nil {
		return false, 0, err
	}
	return false, resumed, nil
}

// openPart opens (or makes, mode 0600) the partial file, refusing one
// that is not the user's own.
func openPart(part string) (*os.File, error) {
	if _, err := cachedir.CheckFile(part); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = cachedir.CheckOwned(part, st, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

var ggufMagic = []byte("GGUF")

// fetch GETs u from byte off on into f at off and returns the bytes
// written. A fatal error means the server sent something else than the
// file (or the disk failed); other errors (a dropped connection, an
// error status) leave what came in place for the next try.
func (c *Client) fetch(ctx context.Context, u string, f *os.File, off, size int64) (n int64, err error) {
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := fmt.Errorf("%s: nothing received for %v", u, idle)
	timer := time.AfterFunc(idle, func() { cancel(stalled) })
	defer timer.Stop()
	defer func() {
		if err != nil && context.Cause(ctx) == stalled {
			err = stalled
		}
	}()
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return 0, fatal{err}
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		if want := fmt.Sprintf("bytes %d-%d/%d", off, size-1, size); cr != want {
			return 0, fmt.Errorf("%s: Content-Range %s, expected %q", u, quote(cr), want)
		}
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return 0, fmt.Errorf("%s: Content-Length %d, expected %d", u, resp.ContentLength, size)
		}
		if off > 0 {
			c.log().Info("the server ignored Range; starting over", "url", u)
			if err := f.Truncate(0); err != nil {
				return 0, fatal{err}
			}
			off = 0
		}
	default:
		// Not fatal: what is on disk is still good (an expired CDN link
		// answers 403; the next pull asks the hub for a fresh one).
		return 0, statusError(u, resp)
	}
	start := off
	body := io.Reader(resp.Body)
	if off == 0 {
		head := make([]byte, min(int64(len(ggufMagic)), size))
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			return 0, err
		}
		if !bytes.Equal(head, ggufMagic) {
			return 0, fatal{fmt.Errorf("%s is not a GGUF file (it starts with %q, not %q)", u, head, ggufMagic)}
		}
		body = io.MultiReader(bytes.NewReader(head), resp.Body)
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := body.Read(buf)
		timer.Reset(idle)
		if off+int64(n) > size {
			return off - start, fatal{fmt.Errorf("%s: the server sent more than the %d bytes announced", u, size)}
		}
		if n > 0 {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return off - start, fatal{err}
			}
			off += int64(n)
			if c.Progress != nil {
				c.Progress(off, size)
			}
		}
		if rerr == io.EOF {
			if off < size {
				return off - start, fmt.Errorf("%s: the connection ended after %d of %d bytes: %w", u, off, size, io.ErrUnexpectedEOF)
			}
			return off - start, nil
		}
		if rerr != nil {
			return off - start, rerr
		}
	}
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
