package server

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/gollm/gollm/sample"
)

// Reading a request body. Every field is checked before anything is
// allocated for it, and a bad one is a 400 naming the field and the
// numbers. Fields this server does not know are ignored, as OpenAI does
// (clients send "user", "metadata", "store" …).
//
// The sampling fields take llama-server's defaults when absent
// (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, the penalties off),
// and accept its extensions top_k, min_p and repeat_penalty beside
// OpenAI's temperature, top_p, seed, presence_penalty, frequency_penalty
// and logit_bias. Without a seed each request draws one, so that two
// identical requests may answer differently, as OpenAI's do; choice i of
// a request uses seed+i.

// decodeBody reads the JSON body into v, through the size cap.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	limit := s.opts.Limits.MaxBodyBytes
	if r.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, "", "request_too_large",
			"the request body is %d bytes, more than the server's limit of %d", r.ContentLength, limit)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	err := dec.Decode(v)
	if err == nil {
		// One JSON value, then only white space.
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("more data after the JSON object")
			if e != nil && !errors.Is(e, io.ErrUnexpectedEOF) {
				err = e
			}
		}
	}
	if err == nil {
		return nil
	}
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, "", "request_too_large",
			"the request body is more than the server's limit of %d bytes", limit)
	case errors.Is(err, io.EOF):
		return badRequest("", "the request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the request body is not valid JSON: it ends in the middle of a value")
	case errors.As(err, &syntax):
		return badRequest("", "the request body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("", "the request body must be a JSON object, not %s", typeErr.Value)
		}
		field := strings.TrimPrefix(strings.TrimPrefix(typeErr.Field, "samplingFields."), "constraintFields.") // the embedded structs' names are no fields
		return badRequest(field, "%s must be %s, not %s", field, typeName(typeErr.Type.String()), typeErr.Value)
	}
	return badRequest("", "the request body cannot be read: %s", shorten(err.Error(), 200))
}

// typeName says a Go type the way the API documentation does.
func typeName(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "struct"), strings.Contains(t, "."):
		return "an object"
	}
	return t
}

// samplingFields are the sampling parameters both endpoints accept.
type samplingFields struct {
	Temperature      *float64           `json:"temperature"`
	TopP             *float64           `json:"top_p"`
	TopK             *int64             `json:"top_k"`
	MinP             *float64           `json:"min_p"`
	RepeatPenalty    *float64           `json:"repeat_penalty"`
	RepeatLastN      *int64             `json:"repeat_last_n"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	Seed             *int64             `json:"seed"`
	LogitBias        map[string]float64 `json:"logit_bias"`
}

// params checks the fields and makes the sampler's parameters; vocab and
// ctx (the context size) bound top_k and repeat_last_n.
func (f *samplingFields) params(vocab, ctx int) (sample.Params, *apiError) {
	p := sample.DefaultParams()
	in := func(name string, v *float64, lo, hi float64, loOpen bool, set func(float32)) *apiError {
		if v == nil {
			return nil
		}
		x := *v
		if !(x >= lo && x <= hi) || (loOpen && x == lo) {
			open := "["
			if loOpen {
				open = "("
			}
			return badRequest(name, "%s must be in %s%g, %g], not %g", name, open, lo, hi, x)
		}
		set(float32(x))
		return nil
	}
	for _, e := range []*apiError{
		in("temperature", f.Temperature, 0, 2, false, func(x float32) { p.Temperature = x }),
		in("top_p", f.TopP, 0, 1, true, func(x float32) { p.TopP = x }),
		in("min_p", f.MinP, 0, 1, false, func(x float32) { p.MinP = x }),
		in("repeat_penalty", f.RepeatPenalty, 0, 100, true, func(x float32) { p.RepeatPenalty = x }),
		in("presence_penalty", f.PresencePenalty, -2, 2, false, func(x float32) { p.PresencePenalty = x }),
		in("frequency_penalty", f.FrequencyPenalty, -2, 2, false, func(x float32) { p.FrequencyPenalty = x }),
	} {
		if e != nil {
			return p, e
		}
	}
	if f.TopK != nil {
		if *f.TopK < 0 {
			return p, badRequest("top_k", "top_k must be 0 (off) or more, not %d", *f.TopK)
		}
		p.TopK = int(min(*f.TopK, int64(vocab)))
	}
	if f.RepeatLastN != nil {
		if *f.RepeatLastN < -1 {
			return p, badRequest("repeat_last_n", "repeat_last_n must be -1 (everything), 0 (off) or more, not %d", *f.RepeatLastN)
		}
		p.PenaltyLastN = int(min(*f.RepeatLastN, int64(ctx))) // no sequence holds more
	}
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if len(f.LogitBias) > 0 {
		if len(f.LogitBias) > vocab {
			return p, badRequest("logit_bias", "logit_bias has %d entries, the vocabulary only %d tokens", len(f.LogitBias), vocab)
		}
		p.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, b := range f.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 || id >= int64(vocab) {
				return p, badRequest("logit_bias", "logit_bias key %q is not a token id (0 to %d)", shorten(k, 40), vocab-1)
			}
			if !(b >= -100 && b <= 100) {
				return p, badRequest("logit_bias", "logit_bias for token %d must be in [-100, 100], not %g", id, b)
			}
			p.LogitBias[int32(id)] = float32(b)
		}
	}
	if err := p.Validate(); err != nil { // the checks above should have caught it
		return p, badRequest("", "%v", err)
	}
	return p, nil
}

// parseStop reads "stop": null, a string, or an array of strings.
func (s *Server) parseStop(raw json.RawMessage) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	var list []string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("stop", "stop must be a string or an array of strings")
	}
	l := s.opts.Limits
	if len(list) > l.MaxStops {
		return nil, badRequest("stop", "stop has %d strings, at most %d are allowed", len(list), l.MaxStops)
	}
	out := list[:0]
	for i, st := range list {
		if len(st) > l.MaxStopBytes {
			return nil, badRequest("stop", "stop string %d is %d bytes, at most %d are allowed", i, len(st), l.MaxStopBytes)
		}
		if st != "" { // an empty stop string would stop nothing
			out = append(out, st)
		}
	}
	return out, nil
}

// checkModel answers 404 for a model this server does not serve. An
// absent or empty "model" means the served one (llama-server's habit,
// handy with curl).
func (s *Server) checkModel(model *string) *apiError {
	if model == nil || *model == "" || *model == s.name {
		return nil
	}
	return errorf(http.StatusNotFound, "model", "model_not_found",
		"the model %q does not exist: this server serves %q", shorten(*model, 100), s.name)
}

// maxTokens checks max_tokens (or max_completion_tokens, which wins, as
// at OpenAI) against the context: a value no request could ever get is a
// 400; otherwise the answer is capped by the room the prompt leaves, and
// hitting the cap is finish_reason "length". Absent: until the context
// is full.
func (s *Server) maxTokens(maxTokens, maxCompletion *int64, prompt int) (int, *apiError) {
	ctx := s.ctx.Options().ContextSize
	name, v := "max_tokens", maxTokens
	if maxCompletion != nil {
		name, v = "max_completion_tokens", maxCompletion
	}
	room := ctx - prompt
	if room < 1 {
		return 0, errorf(http.StatusBadRequest, "messages", "context_length_exceeded",
			"the prompt is %d tokens, and the context size is %d: no room is left for an answer", prompt, ctx)
	}
	if v == nil {
		return room, nil
	}
	switch {
	case *v < 1:
		return 0, badRequest(name, "%s must be at least 1, not %d", name, *v)
	case *v > int64(ctx):
		return 0, badRequest(name, "%s is %d, more than the context size of %d tokens", name, *v, ctx)
	}
	return min(int(*v), room), nil
}

// checkN reads "n", the number of choices.
func (s *Server) checkN(n *int64) (int, *apiError) {
	if n == nil {
		return 1, nil
	}
	if max := s.opts.Limits.MaxN; *n < 1 || *n > int64(max) {
		return 0, badRequest("n", "n must be between 1 and %d (this server answers %d sequences at once), not %d",
			max, s.opts.Parallel, *n)
	}
	return int(*n), nil
}

// finite64 is false for NaN and infinities (which JSON cannot carry,
// but a bug could make).
func finite64(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
