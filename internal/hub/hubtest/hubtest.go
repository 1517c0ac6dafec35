// Package hubtest is a fake Hugging Face Hub for tests: the listing API
// and resolve URLs on one httptest server, which redirect to a second,
// CDN-like one that serves the bytes with Range support.
package hubtest

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

// Hub answers like the Hugging Face Hub: the listing API and resolve
// URLs on one server, which redirect (302, with X-Linked-Etag and
// X-Linked-Size) to a second, CDN-like server that serves the bytes with
// Range support. It counts the bytes of files it serves and can drop a
// connection in the middle or publish a wrong checksum.
type Hub struct {
	HubServer, CDN *httptest.Server
	repo           string

	mu          sync.Mutex
	files       map[string][]byte // path in the repository → content
	order       []string
	BadSHA      map[string]string // path → the SHA-256 published instead
	Extra       []map[string]any  // Extra listing entries
	DropAfter   int               // >0: the next body GET stops after this many bytes
	IgnoreRange bool
	FailRange   int               // >0: the next GET with a Range header gets this status (an expired CDN link: 403)
	Stall       bool              // with DropAfter: keep the connection open, silent, instead of closing it
	served      int64             // bytes of file bodies sent
	gets        int               // body GETs
	auth        map[string]string // "hub"/"cdn" → last Authorization seen
	SizeHeader  string            // overrides X-Linked-Size
}

// New starts a fake hub holding the repository repo (owner/name), stopped
// when the test ends. Set its fields before the requests they affect.
func New(t *testing.T, repo string) *Hub {
	f := &Hub{repo: repo, files: map[string][]byte{}, BadSHA: map[string]string{}, auth: map[string]string{}}
	f.CDN = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.HubServer = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(f.Close)
	return f
}

// Auth is the Authorization header of the last request to the hub
// (which "hub") or the CDN ("cdn").
func (f *Hub) Auth(which string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.auth[which]
}

// Close stops both servers (a hub that cannot be reached).
func (f *Hub) Close() { f.HubServer.Close(); f.CDN.Close() }

// GGUFBytes is a fake GGUF file of n bytes: the magic, then noise.
func GGUFBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "GGUF")
	return b
}

// Add puts a file into the repository.
func (f *Hub) Add(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = data
	f.order = append(f.order, path)
}

// SHA is the SHA-256 the hub publishes for path (BadSHA's when set).
func (f *Hub) SHA(path string) string {
	if s, ok := f.BadSHA[path]; ok {
		return s
	}
	h := sha256.Sum256(f.files[path])
	return hex.EncodeToString(h[:])
}

// Stats is the bytes of file bodies served and the body GETs so far.
func (f *Hub) Stats() (served int64, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served, f.gets
}

func (f *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
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
				e["lfs"] = map[string]any{"oid": f.SHA(p), "size": len(f.files[p]), "pointerSize": 134}
			}
			list = append(list, e)
		}
		list = append(list, f.Extra...)
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
	if f.SizeHeader != "" {
		size = f.SizeHeader
	}
	w.Header().Set("X-Linked-Etag", `"`+f.SHA(p)+`"`)
	w.Header().Set("X-Linked-Size", size)
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef01234567"`)
	w.Header().Set("X-Repo-Commit", "4d2b5c1f0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c")
	// A redirect to the CDN with a link signed for GET (the CDN refuses
	// HEAD on it).
	http.Redirect(w, r, f.CDN.URL+"/xet/"+p+"?X-Amz-Signature=abc", http.StatusFound)
}

func (f *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	locked := true
	defer func() {
		if locked {
			f.mu.Unlock()
		}
	}()
	f.auth["cdn"] = r.Header.Get("Authorization")
	p, signed := strings.CutPrefix(r.URL.Path, "/xet/")
	if signed && r.Method != http.MethodGet {
		// Like a link signed for GET: anything else is refused.
		http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/plain/"); ok {
		p = rest // a plain web server: ETag is the SHA-256, no redirects
		w.Header().Set("ETag", `"`+f.SHA(p)+`"`)
	}
	data, found := f.files[p]
	if !found {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Range") != "" && f.FailRange > 0 && r.Method == http.MethodGet {
		http.Error(w, "Request has expired", f.FailRange)
		f.FailRange = 0
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" && !f.IgnoreRange {
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
	if f.DropAfter > 0 && f.DropAfter < len(body) {
		body = body[:f.DropAfter]
		f.DropAfter = 0
		w.Write(body)
		f.served += int64(len(body))
		w.(http.Flusher).Flush()
		if f.Stall {
			// Send nothing more until the client gives up.
			f.Stall = false
			f.mu.Unlock()
			locked = false
			<-r.Context().Done()
			return
		}
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
