package hub

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/internal/hub/hubtest"
)

const testRepo = "Qwen/Qwen3-Test-GGUF"

// setup is a fake hub with a README and two quantizations, a store in a
// temporary directory and a client pointed at the hub.
func setup(t *testing.T) (*hubtest.Hub, *Store, *Client, map[string][]byte) {
	t.Helper()
	f := hubtest.New(t, testRepo)
	files := map[string][]byte{
		"Qwen3-Test-Q4_K_M.gguf": hubtest.GGUFBytes(300_000, 1),
		"Qwen3-Test-Q8_0.gguf":   hubtest.GGUFBytes(500_000, 2),
	}
	f.Add("README.md", []byte("# a model\n"))
	f.Add("Qwen3-Test-Q4_K_M.gguf", files["Qwen3-Test-Q4_K_M.gguf"])
	f.Add("Qwen3-Test-Q8_0.gguf", files["Qwen3-Test-Q8_0.gguf"])
	dir := t.TempDir()
	st := &Store{Dir: dir}
	return f, st, &Client{Endpoint: f.HubServer.URL, Token: "hf_secret"}, files
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dirFiles lists every file under dir (relative paths), partial ones too.
func dirFiles(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestPullFresh: a fresh pull lists the repository, follows the redirect
// to the CDN, downloads the file once, verifies it and puts it in the
// store with mode 0600; the token goes to the hub and not to the CDN. A
// second pull downloads nothing.
func TestPullFresh(t *testing.T) {
	f, st, c, files := setup(t)
	var last, total int64
	c.Progress = func(done, n int64) { last, total = done, n }
	res, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:q4_k_m"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := files["Qwen3-Test-Q4_K_M.gguf"]
	if res.Path != filepath.Join(st.Dir, "hf", "Qwen", "Qwen3-Test-GGUF", "Qwen3-Test-Q4_K_M.gguf") {
		t.Errorf("path %s", res.Path)
	}
	got, _ := os.ReadFile(res.Path)
	if !bytes.Equal(got, want) {
		t.Fatalf("downloaded %d bytes, not the file's %d", len(got), len(want))
	}
	if fi, _ := os.Stat(res.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if served, gets := f.Stats(); served != int64(len(want)) || gets != 1 {
		t.Errorf("served %d bytes in %d GETs, want %d in 1", served, gets, len(want))
	}
	if last != int64(len(want)) || total != int64(len(want)) {
		t.Errorf("progress ended at %d/%d", last, total)
	}
	if res.SHA256 != f.SHA("Qwen3-Test-Q4_K_M.gguf") || res.Ref.Quant != "q4_k_m" {
		t.Errorf("result %+v", res)
	}
	if f.Auth("hub") != "Bearer hf_secret" || f.Auth("cdn") != "" {
		t.Errorf("Authorization: hub %q, CDN %q (the token must not leave the hub)", f.Auth("hub"), f.Auth("cdn"))
	}
	if files := dirFiles(t, st.Dir); len(files) != 1 {
		t.Errorf("store holds %v", files)
	}

	res, err = c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q4_K_M"), "")
	if err != nil || !res.Already {
		t.Fatalf("second pull: %+v, %v", res, err)
	}
	if served, _ := f.Stats(); served != int64(len(want)) {
		t.Errorf("second pull served %d more bytes", served-int64(len(want)))
	}
}

// TestPullResume: a connection dropped in the middle leaves a partial
// file; the next pull asks for the rest with Range, and the bytes served
// in all are the file's size (no second full download). With Retries the
// same happens within one pull.
func TestPullResume(t *testing.T) {
	f, st, c, files := setup(t)
	want := files["Qwen3-Test-Q8_0.gguf"]
	ref := mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0")
	f.DropAfter = 123_456
	_, err := c.Pull(context.Background(), st, ref, "")
	if err == nil || !strings.Contains(err.Error(), "pull again to resume") {
		t.Fatalf("dropped connection: %v", err)
	}
	parts := dirFiles(t, st.Dir)
	if len(parts) != 1 || !strings.HasSuffix(parts[0], ".part") {
		t.Fatalf("after the drop the store holds %v, want one partial file", parts)
	}
	res, err := c.Pull(context.Background(), st, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(res.Path)
	if !bytes.Equal(got, want) {
		t.Fatal("resumed file differs")
	}
	if served, gets := f.Stats(); served != int64(len(want)) || gets != 2 || res.Resumed != 123_456 {
		t.Errorf("served %d bytes in %d GETs (resumed from %d), want %d in 2 from 123456", served, gets, res.Resumed, len(want))
	}
	if files := dirFiles(t, st.Dir); len(files) != 1 {
		t.Errorf("store holds %v", files)
	}

	// Within one pull.
	f2, st2, c2, _ := setup(t)
	c2.Retries = 2
	f2.DropAfter = 1000
	res, err = c2.Pull(context.Background(), st2, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, want) {
		t.Fatal("retried file differs")
	}
	if served, gets := f2.Stats(); served != int64(len(want)) || gets != 2 {
		t.Errorf("served %d bytes in %d GETs, want %d in 2", served, gets, len(want))
	}
}

// TestPullStalled: a connection that goes silent is given up after
// IdleTimeout and resumed like a dropped one.
func TestPullStalled(t *testing.T) {
	f, st, c, files := setup(t)
	f.DropAfter, f.Stall = 777, true
	c.Retries, c.IdleTimeout = 1, 50*time.Millisecond
	res, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, files["Qwen3-Test-Q8_0.gguf"]) {
		t.Fatal("file differs")
	}
	if served, gets := f.Stats(); served != 500_000 || gets != 2 {
		t.Errorf("served %d bytes in %d GETs", served, gets)
	}
	// Without retries the error says what happened.
	f.DropAfter, f.Stall = 777, true
	c.Retries = 0
	os.Remove(res.Path)
	if _, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), ""); err == nil || !strings.Contains(err.Error(), "nothing received for 50ms") {
		t.Fatalf("err %v", err)
	}
}

// TestPullExpiredLink: an error status while resuming (an expired CDN
// link) keeps what was downloaded; the next pull gets a fresh link and
// the rest of the file.
func TestPullExpiredLink(t *testing.T) {
	f, st, c, files := setup(t)
	f.DropAfter, f.FailRange = 1000, http.StatusForbidden
	c.Retries = 3
	ref := mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0")
	if _, err := c.Pull(context.Background(), st, ref, ""); err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "1000 of 500000 bytes kept") {
		t.Fatalf("err %v", err)
	}
	res, err := c.Pull(context.Background(), st, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, files["Qwen3-Test-Q8_0.gguf"]) || res.Resumed != 1000 {
		t.Fatalf("file differs, or resumed from %d", res.Resumed)
	}
	if served, _ := f.Stats(); served != 500_000 {
		t.Errorf("served %d bytes", served)
	}
}

// TestPullIgnoredRange: a server that ignores Range (200 with the whole
// file) makes the download start over, and the result is still right.
func TestPullIgnoredRange(t *testing.T) {
	f, st, c, files := setup(t)
	f.DropAfter, f.IgnoreRange = 5000, true
	c.Retries = 1
	res, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, files["Qwen3-Test-Q8_0.gguf"]) {
		t.Fatal("file differs")
	}
}

// TestPullChecksumMismatch: bytes whose SHA-256 is not the published one
// are an error, and nothing is kept.
func TestPullChecksumMismatch(t *testing.T) {
	f, st, c, _ := setup(t)
	f.BadSHA["Qwen3-Test-Q8_0.gguf"] = strings.Repeat("ab", 32)
	_, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), "")
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), strings.Repeat("ab", 32)) {
		t.Fatalf("err %v", err)
	}
	if files := dirFiles(t, st.Dir); len(files) != 0 {
		t.Errorf("store holds %v after a mismatch", files)
	}
}

// TestPullUnknownQuant: a quantization the repository lacks is an error
// listing the ones it has.
func TestPullUnknownQuant(t *testing.T) {
	f, st, c, _ := setup(t)
	_, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q5_K_S"), "")
	if err == nil || !strings.Contains(err.Error(), "available: Q4_K_M, Q8_0") {
		t.Fatalf("err %v", err)
	}
	if served, _ := f.Stats(); served != 0 {
		t.Errorf("served %d bytes", served)
	}
}

// TestLookupOffline: a pulled model is found with the hub closed; one
// that was not pulled is an error naming gollm pull.
func TestLookupOffline(t *testing.T) {
	f, st, c, _ := setup(t)
	res, err := c.Pull(context.Background(), st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q4_K_M"), "")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	p, err := st.Lookup(mustRef(t, "hf:Qwen/Qwen3-Test-GGUF:Q4_K_M"))
	if err != nil || p != res.Path {
		t.Fatalf("lookup: %q, %v", p, err)
	}
	if p, err := st.Lookup(mustRef(t, "hf:Qwen/Qwen3-Test-GGUF")); err != nil || p != res.Path {
		t.Fatalf("lookup without a quantization: %q, %v", p, err)
	}
	_, err = st.Lookup(mustRef(t, "hf:Qwen/Qwen3-Test-GGUF:Q8_0"))
	if err == nil || !strings.Contains(err.Error(), "gollm pull Qwen/Qwen3-Test-GGUF:Q8_0") {
		t.Fatalf("uncached quantization: %v", err)
	}
	_, err = st.Lookup(mustRef(t, "hf:other/repo:Q8_0"))
	if err == nil || !strings.Contains(err.Error(), "gollm pull other/repo:Q8_0") {
		t.Fatalf("uncached repository: %v", err)
	}
}

// TestPullURL: a URL of a plain web server whose ETag is the SHA-256;
// --sha256 that disagrees is refused.
func TestPullURL(t *testing.T) {
	f, st, c, files := setup(t)
	u := f.CDN.URL + "/plain/Qwen3-Test-Q8_0.gguf"
	if _, err := c.Pull(context.Background(), st, mustRef(t, u), strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("wrong --sha256: %v", err)
	}
	res, err := c.Pull(context.Background(), st, mustRef(t, u), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(res.Path); !bytes.Equal(got, files["Qwen3-Test-Q8_0.gguf"]) || res.SHA256 == "" {
		t.Fatalf("file differs or unverified (%+v)", res)
	}
	if f.Auth("cdn") != "" {
		t.Errorf("token sent to another host")
	}
	if p, err := st.Lookup(mustRef(t, u)); err != nil || p != res.Path {
		t.Fatalf("lookup: %q, %v", p, err)
	}
}

// TestListRemove: ls shows each cached model with its quantization and
// size; rm removes one (by the ref ls shows) and leaves the other.
func TestListRemove(t *testing.T) {
	f, st, c, files := setup(t)
	for _, r := range []string{"Qwen/Qwen3-Test-GGUF:Q4_K_M", "Qwen/Qwen3-Test-GGUF:Q8_0", f.CDN.URL + "/plain/Qwen3-Test-Q8_0.gguf"} {
		if _, err := c.Pull(context.Background(), st, mustRef(t, r), ""); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := st.List()
	if err != nil || len(ents) != 3 {
		t.Fatalf("list: %+v, %v", ents, err)
	}
	if e := ents[0]; e.Ref != "hf:Qwen/Qwen3-Test-GGUF:Q4_K_M" || e.Quant != "Q4_K_M" || e.Size != int64(len(files[e.File])) {
		t.Errorf("entry %+v", e)
	}
	if !strings.HasPrefix(ents[2].Ref, "url:127.0.0.1_") || !strings.HasSuffix(ents[2].Ref, "/Qwen3-Test-Q8_0.gguf") {
		t.Errorf("url entry %+v", ents[2])
	}
	if _, err := st.Remove("Qwen/Qwen3-Test-GGUF"); err == nil || !strings.Contains(err.Error(), "holds 2 models (Q4_K_M, Q8_0)") {
		t.Errorf("rm without a quantization: %v", err)
	}
	for _, ref := range []string{"hf:Qwen/Qwen3-Test-GGUF:Q8_0", ents[2].Ref} {
		if _, err := st.Remove(ref); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := st.List(); len(ents) != 1 || ents[0].Quant != "Q4_K_M" {
		t.Errorf("after rm: %+v", ents)
	}
	if _, err := st.Remove("hf:Qwen/Qwen3-Test-GGUF:Q8_0"); err == nil {
		t.Error("removing twice succeeded")
	}
	for _, bad := range []string{"url:../x.gguf", "url:h/../../x.gguf", "hf:../x", "a/b/c"} {
		if _, err := st.Remove(bad); err == nil {
			t.Errorf("rm %q succeeded", bad)
		}
	}
}

// TestPullHostile: what a hostile hub or URL can send is refused with a
// clear error and leaves nothing in the store.
func TestPullHostile(t *testing.T) {
	ctx := context.Background()
	t.Run("traversal", func(t *testing.T) {
		f, st, c, _ := setup(t)
		f.Extra = append(f.Extra, map[string]any{"type": "file", "path": "../../x-Q2_K.gguf", "size": 10})
		_, err := c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q2_K"), "")
		if err == nil || !strings.Contains(err.Error(), `unsafe path "../../x-Q2_K.gguf"`) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("too big", func(t *testing.T) {
		_, st, c, _ := setup(t)
		c.MaxSize = 100_000
		_, err := c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), "")
		if err == nil || !strings.Contains(err.Error(), "500000 bytes, more than the 100000-byte limit") {
			t.Fatalf("err %v", err)
		}
		if files := dirFiles(t, st.Dir); len(files) != 0 {
			t.Errorf("store holds %v", files)
		}
	})
	t.Run("size header", func(t *testing.T) {
		f, st, c, _ := setup(t)
		f.SizeHeader = "99999999999999999999999"
		if _, err := c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), ""); err == nil || !strings.Contains(err.Error(), "X-Linked-Size") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not gguf", func(t *testing.T) {
		f, st, c, _ := setup(t)
		f.Add("evil-Q3_K.gguf", []byte("<html>this is not a model</html>"))
		_, err := c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q3_K"), "")
		if err == nil || !strings.Contains(err.Error(), "is not a GGUF file") {
			t.Fatalf("err %v", err)
		}
		if files := dirFiles(t, st.Dir); len(files) != 0 {
			t.Errorf("store holds %v", files)
		}
	})
	t.Run("bad listing", func(t *testing.T) {
		f, st, c, _ := setup(t)
		f.Extra = append(f.Extra, map[string]any{"type": "file", "path": "y.gguf", "size": 1, "lfs": map[string]any{"oid": "zz", "size": 1}})
		if _, err := c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), ""); err == nil || !strings.Contains(err.Error(), "not a SHA-256") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("different file in place", func(t *testing.T) {
		_, st, c, _ := setup(t)
		p, err := st.hfPath(testRepo, "Qwen3-Test-Q8_0.gguf", true)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte("GGUF mine"), 0o600)
		_, err = c.Pull(ctx, st, mustRef(t, "Qwen/Qwen3-Test-GGUF:Q8_0"), "")
		if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
			t.Fatalf("err %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "GGUF mine" {
			t.Error("the file was overwritten")
		}
	})
	t.Run("no repository", func(t *testing.T) {
		_, st, c, _ := setup(t)
		_, err := c.Pull(ctx, st, mustRef(t, "nobody/nothing:Q8_0"), "")
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestParseRef(t *testing.T) {
	good := map[string]Ref{
		"Qwen/Qwen3-8B-GGUF:Q4_K_M":          {Repo: "Qwen/Qwen3-8B-GGUF", Quant: "Q4_K_M"},
		"hf:Qwen/Qwen3-8B-GGUF:Q4_K_M":       {Repo: "Qwen/Qwen3-8B-GGUF", Quant: "Q4_K_M"},
		"hf:unsloth/gemma-3-1b-it-GGUF":      {Repo: "unsloth/gemma-3-1b-it-GGUF"},
		"bartowski/Llama-3.2-1B-GGUF:IQ4_XS": {Repo: "bartowski/Llama-3.2-1B-GGUF", Quant: "IQ4_XS"},
		"https://example.com/m/x-Q8_0.gguf":  {URL: "https://example.com/m/x-Q8_0.gguf"},
	}
	for s, want := range good {
		if got, err := ParseRef(s); err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "hf:", "Qwen", "Qwen/", "/x", "a/b/c", "../x", "a/..", "a/b..c", ".a/b", "a/b:", "a/b:../x", "a/b:Q4 K",
		"a/b:Q4:K", "a\x00/b", "a/" + strings.Repeat("b", 97), "https://", "https://h/", "https://h/x.bin",
		"https://u:p@h/x.gguf", "https://h/.x.gguf", "http://h/%2e%2e", "hf:a/b:" + strings.Repeat("q", 200),
	} {
		if r, err := ParseRef(s); err == nil {
			t.Errorf("ParseRef(%q) = %+v, want an error", s, r)
		} else if len(err.Error()) > 400 {
			t.Errorf("ParseRef(%q): error of %d bytes", s, len(err.Error()))
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen3-8B-GGUF:Q4_K_M", "hf:a/b", "https://h/x.gguf", "a/../b:..", "url:h/x.gguf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if r.URL == "" {
			// A parsed repository ref makes a path inside the store.
			st := &Store{Dir: "/cache"}
			owner, name, _ := strings.Cut(r.Repo, "/")
			p := filepath.Join(st.Dir, "hf", owner, name)
			if !strings.HasPrefix(p, "/cache/hf/") || owner == ".." || name == ".." || strings.Count(p, "/") != 4 {
				t.Fatalf("%q: repository %q escapes the store (%s)", s, r.Repo, p)
			}
			if r2, err := ParseRef(r.String()); err != nil || r2 != r {
				t.Fatalf("%q: String %q does not parse back (%+v, %v)", s, r.String(), r2, err)
			}
		}
	})
}

func TestPick(t *testing.T) {
	repo := []string{"README.md", "x-Q4_K.gguf", "x-Q4_K_M.gguf", "x-Q4_K_S.gguf", "x-Q8_0.gguf", "mmproj-x-f16.gguf",
		"big/x-Q6_K-00001-of-00002.gguf", "big/x-Q6_K-00002-of-00002.gguf"}
	for _, c := range []struct{ quant, want, err string }{
		{"Q8_0", "x-Q8_0.gguf", ""},
		{"q4_k_m", "x-Q4_K_M.gguf", ""},
		{"Q4_K", "x-Q4_K.gguf", ""},
		{"", "x-Q4_K_M.gguf", ""},
		{"f16", "mmproj-x-f16.gguf", ""},
		{"Q4", "", "3 GGUF files match"},
		{"Q6_K", "", "only split GGUF files match \"Q6_K\" (big/x-Q6_K-00001-of-00002.gguf, …), which gollm cannot load yet (available: f16, Q4_K, Q4_K_M, Q4_K_S, Q8_0)"},
		{"Q2_K", "", "no GGUF file matches \"Q2_K\""},
	} {
		got, err := Pick(repo, c.quant)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Pick(%q) = %q, %v; want an error with %q", c.quant, got, err, c.err)
			}
		} else if got != c.want || err != nil {
			t.Errorf("Pick(%q) = %q, %v; want %q", c.quant, got, err, c.want)
		}
	}
	if _, err := Pick([]string{"a-00001-of-00002.gguf"}, ""); err == nil || !strings.Contains(err.Error(), "split") {
		t.Errorf("split only: %v", err)
	}
	if _, err := Pick([]string{"a-Q4_0.gguf", "b-Q5_0.gguf"}, ""); err == nil || !strings.Contains(err.Error(), "available: Q4_0, Q5_0") {
		t.Errorf("no default: %v", err)
	}
}

// TestStoreRefusesPlanted: the store applies the cache's ownership rules
// (internal/cachedir): a symlink where a model would be, or a directory
// others may write to, is refused by a lookup, not loaded.
func TestStoreRefusesPlanted(t *testing.T) {
	st := &Store{Dir: t.TempDir()}
	p, err := st.hfPath(testRepo, "x-Q4_K_M.gguf", true)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere.gguf")
	os.WriteFile(target, []byte("GGUF"), 0o600)
	if err := os.Symlink(target, p); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := st.Lookup(mustRef(t, "hf:"+testRepo+":Q4_K_M")); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked model: %v", err)
	}
	os.Remove(p)
	os.WriteFile(p, []byte("GGUF"), 0o600)
	dir := filepath.Dir(p)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no owner or mode bits to check (see internal/cachedir)")
	}
	if _, err := st.Lookup(mustRef(t, "hf:"+testRepo+":Q4_K_M")); err == nil || !strings.Contains(err.Error(), "others may write") {
		t.Errorf("world-writable directory: %v", err)
	}
}

// FuzzList: any listing body gives an error or files whose paths are
// safe to join under the store and whose sizes are not negative.
func FuzzList(f *testing.F) {
	f.Add([]byte(`[{"type":"file","path":"a-Q4_K_M.gguf","size":5,"lfs":{"oid":"` + strings.Repeat("a", 64) + `","size":5}}]`))
	f.Add([]byte(`[{"type":"file","path":"../../x.gguf","size":1}]`))
	f.Add([]byte(`{"error":"Repository not found"}`))
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL}
	f.Fuzz(func(t *testing.T, b []byte) {
		body = b
		files, err := c.List(context.Background(), "a/b")
		if err != nil {
			return
		}
		for _, file := range files {
			if safeRepoPath(file.Path) != nil || file.Size < 0 || (file.SHA256 != "" && !sha256Hex(file.SHA256)) {
				t.Fatalf("unsafe entry %+v", file)
			}
			if p := filepath.Join("/store", filepath.FromSlash(file.Path)); !strings.HasPrefix(p, string(filepath.Separator)+"store"+string(filepath.Separator)) {
				t.Fatalf("%q escapes: %s", file.Path, p)
			}
		}
	})
}
