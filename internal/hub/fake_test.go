package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeHub answers like the Hugging Face Hub: the listing API and resolve
// URLs on one server, which redirect (302, with X-Linked-Etag and
// X-Linked-Size) to a second, CDN-like server that serves the bytes with
// Range support. It counts the bytes of files it serves and can drop a
// connection in the middle or publish a wrong checksum.
type fakeHub struct {
	hub, cdn *httptest.Server
	repo     string

	mu          sync.Mutex
	files       map[string][]byte // path in the repository → content
	order       []string
	badSHA      map[string]string // path → the SHA-256 published instead
	extra       []map[string]any  // extra listing entries
	dropAfter   int               // >0: the next body GET stops after this many bytes
	ignoreRange bool
	served      int64             // bytes of file bodies sent
	gets        int               // body GETs
	auth        map[string]string // "hub"/"cdn" → last Authorization seen
	sizeHeader  string            // overrides X-Linked-Size
}

func newFakeHub(t *testing.T, repo string) *fakeHub {
	f := &fakeHub{repo: repo, files: map[string][]byte{}, badSHA: map[string]string{}, auth: map[string]string{}}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(f.close)
	return f
}

func (f *fakeHub) close() { f.hub.Close(); f.cdn.Close() }

// ggufBytes is a fake GGUF file of n bytes: the magic, then noise.
func ggufBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "GGUF")
	return b
}

func (f *fakeHub) add(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = data
	f.order = append(f.order, path)
}

func (f *fakeHub) sha(path string) string {
	if s, ok := f.badSHA[path]; ok {
		return s
	}
	h := sha256.Sum256(f.files[path])
	return hex.EncodeToString(h[:])
}

func (f *fakeHub) stats() (served int64, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served, f.gets
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth["hub"] = r.Header.Get("Authorization")
	if r.URL.Path == "/api/models/"+f.repo+"/tree/main" {
		if r.URL.Query().Get("recursive") != "true" {
			http.Error(w, "want recursive", http.StatusBadRequest)
			return
		}
		list := []map[string]any{}
		for _, p := range f.order {
			e := map[string]any{"type": "file", "path": p, "size": len(f.files[p]), "oid": "0123456789abcdef0123456789abcdef01234567"}
			if strings.HasSuffix(p, ".gguf") {
				e["lfs"] = map[string]any{"oid": f.sha(p), "size": len(f.files[p]), "pointerSize": 134}
			}
			list = append(list, e)
		}
		list = append(list, f.extra...)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/"+f.repo+"/resolve/main/")
	data, found := f.files[p]
	if !ok || !found {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if !strings.HasSuffix(p, ".gguf") { // a small Git file: served directly
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef01234567"`)
		w.Write(data)
		return
	}
	size := strconv.Itoa(len(data))
	if f.sizeHeader != "" {
		size = f.sizeHeader
	}
	w.Header().Set("X-Linked-Etag", `"`+f.sha(p)+`"`)
	w.Header().Set("X-Linked-Size", size)
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef01234567"`)
	w.Header().Set("X-Repo-Commit", "4d2b5c1f0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c")
	// A relative redirect to a path of the hub, which redirects again to
	// the CDN, as a real hub can (and signed CDN URLs look like this).
	http.Redirect(w, r, f.cdn.URL+"/xet/"+p+"?X-Amz-Signature=abc", http.StatusFound)
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth["cdn"] = r.Header.Get("Authorization")
	p, _ := strings.CutPrefix(r.URL.Path, "/xet/")
	if rest, ok := strings.CutPrefix(r.URL.Path, "/plain/"); ok {
		p = rest // a plain web server: ETag is the SHA-256, no redirects
		w.Header().Set("ETag", `"`+f.sha(p)+`"`)
	}
	data, found := f.files[p]
	if !found {
		http.NotFound(w, r)
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !f.ignoreRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || n < 0 || n >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	w.Header().Set("Accept-Ranges", "bytes")
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	}
	if r.Method == http.MethodHead {
		return
	}
	f.gets++
	body := data[start:]
	if f.dropAfter > 0 && f.dropAfter < len(body) {
		body = body[:f.dropAfter]
		f.dropAfter = 0
		w.Write(body)
		f.served += int64(len(body))
		w.(http.Flusher).Flush()
		// Close the connection with the body unfinished: the client
		// sees an unexpected EOF.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Write(body)
	f.served += int64(len(body))
}
