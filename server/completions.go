package server

import (
	"encoding/json"
	"net/http"
)

// POST /v1/completions: a prompt given as text or as token ids, with no
// chat template. Text is tokenized with special-token text matched (as
// llama-server does): whoever writes a raw prompt writes its markup too.
// One prompt per request; OpenAI's batch of prompts (an array of several)
// is a 400.

type completionRequest struct {
	Model               *string         `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	N                   *int64          `json:"n"`
	Stop                json.RawMessage `json:"stop"`
	Logprobs            *int64          `json:"logprobs"`
	Echo                bool            `json:"echo"`
	Suffix              *string         `json:"suffix"`
	BestOf              *int64          `json:"best_of"`
	samplingFields
	constraintFields
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := s.decodeBody(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	j, e := s.completionJob(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.answer(w, r, j, answerOptions{endpoint: "completions", stream: req.Stream,
		usage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage})
}

func (s *Server) completionJob(req *completionRequest) (*job, *apiError) {
	if e := s.checkModel(req.Model); e != nil {
		return nil, e
	}
	switch {
	case req.StreamOptions != nil && !req.Stream:
		return nil, badRequest("stream_options", "stream_options is only allowed with stream: true")
	case req.Echo:
		return nil, badRequest("echo", "echo is not supported by this server")
	case req.Suffix != nil && *req.Suffix != "":
		return nil, badRequest("suffix", "suffix is not supported by this server")
	case req.BestOf != nil && *req.BestOf != 1:
		return nil, badRequest("best_of", "best_of is not supported by this server (use n)")
	}
	prompt, e := s.promptTokens(req.Prompt)
	if e != nil {
		return nil, e
	}
	j := &job{prompt: prompt}
	if j.grammar, e = req.constraintFields.grammar(); e != nil {
		return nil, e
	}
	if e := s.fillJob(j, &req.samplingFields, req.MaxTokens, req.MaxCompletionTokens, req.N, req.Stop); e != nil {
		return nil, e
	}
	if lp := req.Logprobs; lp != nil {
		if *lp < 0 || *lp > 5 {
			return nil, badRequest("logprobs", "logprobs must be between 0 and 5, not %d", *lp)
		}
		j.logprobs, j.topLogprobs = true, int(*lp)
	}
	return j, nil
}

// promptTokens reads "prompt": a string, an array of token ids, or an
// array holding one of those.
func (s *Server) promptTokens(raw json.RawMessage) ([]int32, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("prompt", "prompt is required: a string or an array of token ids")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if text == "" {
			return nil, badRequest("prompt", "prompt is empty")
		}
		return s.model.Tokenizer().Tokenize(text, true, true), nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		return s.checkIDs(ids, "prompt")
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		return s.promptTokens(list[0])
	}
	if len(list) > 1 {
		return nil, badRequest("prompt", "prompt has %d prompts: this server takes one per request", len(list))
	}
	return nil, badRequest("prompt", "prompt must be a string or an array of token ids")
}

// checkIDs checks token ids against the vocabulary.
func (s *Server) checkIDs(ids []int64, param string) ([]int32, *apiError) {
	if len(ids) == 0 {
		return nil, badRequest(param, "%s is empty", param)
	}
	vocab := s.model.Config().Vocab
	out := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(vocab) {
			return nil, badRequest(param, "%s[%d] is %d, not a token id (0 to %d)", param, i, id, vocab-1)
		}
		out[i] = int32(id)
	}
	return out, nil
}
