package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// API keys. A request must send one of the keys as
//
//	Authorization: Bearer KEY
//
// A key anywhere else (an "api-key" header, the query string, another
// scheme) does not count. The comparison takes the same time whatever
// the key sent: both sides are hashed with SHA-256 first, so that even
// their lengths are compared in constant time (subtle.ConstantTimeCompare
// returns at once on a length mismatch), and every key is compared,
// without stopping at the first match.

// keyring holds the SHA-256 digests of the accepted keys.
type keyring struct {
	digests [][32]byte
}

func newKeyring(keys []string) (*keyring, error) {
	k := &keyring{}
	for _, key := range keys {
		if key == "" || strings.TrimSpace(key) != key {
			return nil, errors.New("server: an API key is empty or has spaces around it")
		}
		k.digests = append(k.digests, sha256.Sum256([]byte(key)))
	}
	return k, nil
}

// allows reports whether the request carries an accepted key (always
// true without keys).
func (k *keyring) allows(r *http.Request) bool {
	if len(k.digests) == 0 {
		return true
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, d := range k.digests {
		match |= subtle.ConstantTimeCompare(got[:], d[:])
	}
	return match == 1
}

// authorized wraps an endpoint that needs a key.
func (s *Server) authorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.keys.allows(r) {
			writeError(w, errorf(http.StatusUnauthorized, "", "invalid_api_key",
				"missing or incorrect API key: send it as \"Authorization: Bearer KEY\""))
			return
		}
		h.ServeHTTP(w, r)
	})
}
