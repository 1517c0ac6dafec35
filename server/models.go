package server

import (
	"net/http"
)

// GET /v1/models, GET /v1/models/{id}, and llama-server's POST /tokenize
// and POST /detokenize.

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.name, Object: "model", Created: s.created, OwnedBy: "gollm"}
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id != s.name {
		writeError(w, errorf(http.StatusNotFound, "model", "model_not_found",
			"the model %q does not exist: this server serves %q", shorten(id, 100), s.name))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}

// tokenizeRequest is llama-server's: {"content": "Hello", "add_special":
// false, "parse_special": true, "with_pieces": false}.
type tokenizeRequest struct {
	Content      *string `json:"content"`
	AddSpecial   bool    `json:"add_special"`
	ParseSpecial *bool   `json:"parse_special"`
	WithPieces   bool    `json:"with_pieces"`
}

type tokenPiece struct {
	ID    int32  `json:"id"`
	Piece string `json:"piece"`
}

func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var req tokenizeRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if req.Content == nil {
		writeError(w, badRequest("content", "content is required: the text to tokenize"))
		return
	}
	parse := req.ParseSpecial == nil || *req.ParseSpecial
	tok := s.model.Tokenizer()
	ids := tok.Tokenize(*req.Content, req.AddSpecial, parse)
	if !req.WithPieces {
		if ids == nil {
			ids = []int32{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": ids})
		return
	}
	pieces := make([]tokenPiece, len(ids))
	for i, id := range ids {
		pieces[i] = tokenPiece{ID: id, Piece: string(tok.TokenPiece(id))}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": pieces})
}

type detokenizeRequest struct {
	Tokens []int64 `json:"tokens"`
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	var req detokenizeRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	if len(req.Tokens) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"content": ""})
		return
	}
	ids, e := s.checkIDs(req.Tokens, "tokens")
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"content": s.model.Tokenizer().Decode(ids)})
}
