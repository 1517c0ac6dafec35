// Package hub gets GGUF models from the Hugging Face Hub (or any HTTP
// URL) into gollm's cache: the client behind `gollm pull`, `gollm ls`,
// `gollm rm` and `--model hf:REPO:QUANT`.
//
// # The protocol
//
// Three requests, all plain HTTPS against the hub's endpoint
// (https://huggingface.co, or $GOLLM_HF_ENDPOINT, like huggingface_hub's
// $HF_ENDPOINT). With $HF_TOKEN set, each request to the endpoint's own
// host carries "Authorization: Bearer <token>" (needed for gated and
// private repositories); the token is never sent to another host, such
// as the CDN the hub redirects to.
//
//  1. List the repository's files:
//
//     GET /api/models/{owner}/{name}/tree/main?recursive=true
//
//     The answer is a JSON array with one object per file or folder:
//     {"type": "file", "path": "Qwen3-8B-Q4_K_M.gguf", "size": 5027783488,
//     "lfs": {"oid": "<sha256 hex>", "size": 5027783488}}. Large files are
//     stored with Git LFS, and their "lfs.oid" is the SHA-256 of the
//     content. A quantization name picks the .gguf file whose name
//     contains it, ignoring case (Q4_K_M picks Qwen3-8B-Q4_K_M.gguf).
//
//  2. Ask for the file's metadata without downloading it:
//
//     HEAD /{owner}/{name}/resolve/main/{path}
//
//     with redirects not followed. For an LFS file the hub answers 302
//     Found with a Location on its CDN, and two headers that describe the
//     content, not the redirect: X-Linked-Etag, the quoted SHA-256 (the
//     plain ETag of a small, non-LFS file is its Git blob hash instead,
//     which says nothing about the bytes' SHA-256) and X-Linked-Size,
//     the size in bytes. Redirects are followed by hand, up to 10,
//     keeping the first X-Linked-* headers seen: a relative one (the hub
//     redirecting to itself, as for a renamed repository) is asked
//     again; one to another host, once X-Linked-Size is known, is where
//     the bytes are, and is not asked (the CDN's link is signed for GET
//     alone, and a HEAD there may be refused; huggingface_hub does the
//     same). A URL that is not on the hub has no X-Linked-* headers: its
//     redirects are followed to the 200 OK whose Content-Length (and an
//     ETag that is a SHA-256, if any) describe the file.
//
//  3. Download it, resuming what an earlier try left:
//
//     GET <final URL>
//     Range: bytes=<bytes already on disk>-
//
//     A server that supports ranges answers 206 Partial Content with
//     "Content-Range: bytes <first>-<last>/<size>", and only the missing
//     bytes travel; one that ignores Range answers 200 with the whole
//     file, and the download starts over. The partial file has a name
//     derived from the expected SHA-256 and size, so a partial download
//     of another version of the file is never continued.
//
// When the last byte is in, the SHA-256 of the whole file is compared
// with the one the hub published (step 2, or the listing's lfs.oid when
// the headers lack it; when both are given they must agree). On a
// mismatch the partial file is deleted and nothing is kept. On a match
// the partial file is renamed into place (an atomic step: a reader sees
// either no model or the whole one). A file already in place is never
// overwritten: the same file is "already there", a different one an
// error.
//
// Everything the hub says is treated as hostile: the listing is read up
// to 16 MiB, file names with "..", absolute paths or backslashes are
// refused, sizes above Client.MaxSize are refused before a byte is
// written, a body longer than announced is an error, and a file that
// does not start with the GGUF magic is refused after its first 4 bytes.
//
// # A worked example
//
// `gollm pull Qwen/Qwen3-8B-GGUF:Q4_K_M` does:
//
//	GET  https://huggingface.co/api/models/Qwen/Qwen3-8B-GGUF/tree/main?recursive=true
//	     → 200, [..., {"type":"file","path":"Qwen3-8B-Q4_K_M.gguf","size":5027783488,
//	                   "lfs":{"oid":"d98c…","size":5027783488}}, ...]
//	HEAD https://huggingface.co/Qwen/Qwen3-8B-GGUF/resolve/main/Qwen3-8B-Q4_K_M.gguf
//	     → 302, Location: https://cas-bridge.xethub.hf.co/…,
//	       X-Linked-Etag: "d98c…", X-Linked-Size: 5027783488
//	GET  https://cas-bridge.xethub.hf.co/…  → 200, the bytes; the connection drops at 3 GB
//	GET  https://cas-bridge.xethub.hf.co/…  with Range: bytes=3000000000-
//	     → 206, Content-Range: bytes 3000000000-5027783487/5027783488
//
// and leaves ~/.cache/gollm/models/hf/Qwen/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf,
// which `gollm run -m hf:Qwen/Qwen3-8B-GGUF:Q4_K_M` then loads with no
// network at all.
package hub
