package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/sample"
)

// Generating the choices of one request.
//
// With n = 1 the request's one sequence simply generates from the
// prompt. With n > 1 the prompt is evaluated once and the sequence is
// forked: every fork shares the prompt's KV blocks (copy on write) and
// generates its own answer from there. For a 500-token prompt and n = 4
// that is 500 prompt tokens evaluated, not 2000.
//
// Each choice runs on a goroutine of its own and turns its tokens into
// deltas: text pieces that never split a UTF-8 character, never show a
// stop string (nor the start of one, held back until the next token
// shows whether it is one), with thoughts apart from the answer when the
// request splits them. The deltas go to the request's handler, which
// streams them or gathers them.

// job is one request's generation, whatever the endpoint.
type job struct {
	prompt       []int32
	n            int
	maxTokens    int
	params       sample.Params
	stops        []string
	logprobs     bool                  // report each token's log-probability
	topLogprobs  int                   // and that many alternatives
	split        bool                  // thoughts go to reasoning_content
	tools        bool                  // the request offers tools: parse tool calls (toolcalls.go)
	opensThought bool                  // the prompt itself opened a thought (DeepSeek-R1)
	grammar      *grammar.Grammar      // response_format's constraint (format.go), or nil
	trigger      *gollm.GrammarTrigger // with grammar: a lazy one, for tool calls (format.go)
}

// delta is a piece of one choice's answer.
type delta struct {
	choice   int
	thought  string
	content  string
	call     *toolCall      // a tool call (toolcalls.go)
	callNum  int            // its index among the choice's calls
	logprobs []tokenLogprob // of the tokens whose text this delta completes
	finish   string         // the OpenAI finish reason, on a choice's last delta
}

// tokenLogprob is one generated token's log-probability.
type tokenLogprob struct {
	token   string
	bytes   []byte
	logprob float64
	top     []altLogprob // the most likely tokens at that step
}

type altLogprob struct {
	token   string
	bytes   []byte
	logprob float64
}

// result is a request's outcome once every choice has finished.
type result struct {
	prompt, cached, generated int
	firstToken                time.Time // zero when no token was generated
	finish                    []string  // per choice
	err                       *apiError // nil when every choice finished
}

// generate runs the job's choices on the lease's sequences, sending their
// deltas to out (which it closes at the end). It returns when every
// choice has ended; the forks are closed by then.
func (s *Server) generate(ctx context.Context, l *lease, j *job, out chan<- delta) result {
	defer close(out)
	res := result{prompt: len(j.prompt), finish: make([]string, j.n)}
	seqs := []*gollm.Sequence{l.seq}
	defer func() {
		for _, q := range seqs[1:] {
			q.Close()
		}
	}()
	if j.n > 1 && len(j.prompt) > 1 {
		// Evaluate all of the prompt but its last token once. (A
		// one-token generation, whose token is dropped, rather than
		// Sequence.Evaluate, because its Generation says how much of
		// the prompt the prefix cache held.) Each choice then
		// evaluates only that last token, whose logits it samples.
		greedy := sample.GreedyParams()
		g, err := l.seq.Generate(ctx, j.prompt[:len(j.prompt)-1], gollm.GenerateOptions{MaxTokens: 1, Sampling: &greedy})
		if err != nil {
			res.err = s.genError(ctx, err)
			return res
		}
		res.cached = g.CachedTokens
	}
	for range j.n - 1 {
		f, err := l.seq.Fork()
		if err != nil {
			res.err = errorf(http.StatusInternalServerError, "", "", "cannot fork the prompt's sequence: %v", err)
			return res
		}
		seqs = append(seqs, f)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first atomic.Int64 // UnixNano of the first token of any choice
	)
	for i, seq := range seqs {
		wg.Go(func() {
			p := j.params
			p.Seed += uint64(i)
			c := &choice{s: s, ctx: ctx, j: j, index: i, out: out, first: &first}
			g, err := c.run(seq, p)
			mu.Lock()
			defer mu.Unlock()
			res.generated += len(g.Tokens)
			if j.n == 1 {
				res.cached = g.CachedTokens
			}
			if err != nil {
				if res.err == nil {
					res.err = err
				}
				return
			}
			res.finish[i] = c.finish
		})
	}
	wg.Wait()
	if t := first.Load(); t != 0 {
		res.firstToken = time.Unix(0, t)
	}
	return res
}

// genError turns a generation's error into the client's.
func (s *Server) genError(ctx context.Context, err error) *apiError {
	if ctx.Err() != nil {
		return s.ctxError(ctx)
	}
	if errors.Is(err, gollm.ErrClosed) {
		return errorf(http.StatusServiceUnavailable, "", "closed", "the server is shutting down")
	}
	return errorf(http.StatusInternalServerError, "", "", "generation failed: %v", err)
}

// choice is one answer being generated.
type choice struct {
	s      *Server
	ctx    context.Context
	j      *job
	index  int
	out    chan<- delta
	first  *atomic.Int64
	finish string

	held     string // text held back: it may begin a stop string
	stopped  bool
	reason   *chat.ReasoningParser
	thinking bool // a thought segment was seen (its trailing blank lines are dropped from the answer's start)
	answered bool // answer text was sent
	thought  bool // thought text was sent
	row      []float32
	pending  []tokenLogprob
	tools    *toolParser // nil when the request offers no tools
	calls    int         // tool calls sent
}

// run generates the choice on seq, sending its deltas.
func (c *choice) run(seq *gollm.Sequence, p sample.Params) (gollm.Generation, *apiError) {
	tok := c.s.model.Tokenizer()
	dec := tok.NewStreamDecoder()
	if c.j.split {
		c.reason = chat.NewReasoningParser(c.j.opensThought)
	}
	if c.j.tools {
		c.tools = &toolParser{}
	}
	o := gollm.GenerateOptions{MaxTokens: c.j.maxTokens, Sampling: &p, Grammar: c.j.grammar, Trigger: c.j.trigger}
	if c.j.logprobs {
		o.OnLogits = func(row []float32) { c.row = row }
	}
	o.OnToken = func(id int32) bool {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
		if c.s.hooks.onToken != nil {
			c.s.hooks.onToken()
		}
		if c.j.logprobs {
			c.pending = append(c.pending, c.logprob(id))
		}
		c.held += dec.Add(id)
		if cut, hold := scanStops(c.held, c.j.stops); cut >= 0 {
			c.text(c.held[:cut])
			c.held, c.stopped = "", true
			return true
		} else {
			c.text(c.held[:len(c.held)-hold])
			c.held = c.held[len(c.held)-hold:]
		}
		return false
	}
	g, err := seq.Generate(c.ctx, c.j.prompt, o)
	if err != nil && g.FinishReason != gollm.FinishContext {
		return g, c.s.genError(c.ctx, err)
	}
	if !c.stopped {
		rest := c.held + dec.Flush()
		if cut, _ := scanStops(rest, c.j.stops); cut >= 0 {
			rest = rest[:cut]
		}
		c.text(rest)
	}
	if c.reason != nil {
		for _, seg := range c.reason.Flush() {
			c.segment(seg)
		}
	}
	if c.tools != nil {
		c.pieces(c.tools.flush())
	}
	// EOG and stop strings end with "stop" ("tool_calls" after a tool
	// call); MaxTokens and a full context (the cap of max_tokens) with
	// "length".
	c.finish = "stop"
	switch {
	case g.FinishReason == gollm.FinishLength || g.FinishReason == gollm.FinishContext || errors.Is(err, kvcache.ErrKVFull):
		c.finish = "length"
	case c.calls > 0:
		c.finish = "tool_calls"
	}
	c.send(delta{finish: c.finish, logprobs: c.pending})
	return g, nil
}

// text passes generated text on, through the thought/answer split.
func (c *choice) text(s string) {
	if s == "" {
		return
	}
	if c.reason == nil {
		c.answer(s)
		return
	}
	for _, seg := range c.reason.Feed(s) {
		c.segment(seg)
	}
}

// segment sends a thought or answer piece. The white space that opens a
// thought, and the blank lines between a thought and the answer
// ("</think>\n\n"), are dropped, in streams and whole answers alike, so
// that the streamed deltas always add up to the whole answer.
func (c *choice) segment(seg chat.Segment) {
	if seg.Kind == chat.Thought {
		c.thinking = true
		text := seg.Text
		if !c.thought {
			text = strings.TrimLeft(text, " \n")
		}
		if text != "" {
			c.thought = true
			c.send(delta{thought: text})
		}
		return
	}
	text := seg.Text
	if !c.answered && c.thinking {
		text = strings.TrimLeft(text, " \n")
	}
	if text != "" {
		c.answered = true
		c.answer(text)
	}
}

// answer sends answer text, through the tool-call parser when the
// request offers tools.
func (c *choice) answer(text string) {
	if c.tools == nil {
		c.send(delta{content: text})
		return
	}
	c.pieces(c.tools.feed(text))
}

func (c *choice) pieces(ps []toolPiece) {
	for _, p := range ps {
		if p.call != nil {
			c.send(delta{call: p.call, callNum: c.calls})
			c.calls++
		} else {
			c.send(delta{content: p.text})
		}
	}
}

// send hands a delta to the handler, with the log-probabilities of the
// tokens read since the last one. When the request has ended (the client
// went away) it drops it.
func (c *choice) send(d delta) {
	d.choice = c.index
	if d.finish == "" {
		d.logprobs, c.pending = c.pending, nil
	}
	select {
	case c.out <- d:
	case <-c.ctx.Done():
	}
}

// logprob is token id's log-probability in the logits row it was
// sampled from, the log-softmax of the model's logits (before the
// request's temperature, penalties and bias, as OpenAI reports them),
// with the top alternatives.
func (c *choice) logprob(id int32) tokenLogprob {
	tok := c.s.model.Tokenizer()
	row := c.row
	piece := tok.TokenPiece(id)
	t := tokenLogprob{token: string(piece), bytes: slices.Clone(piece)}
	if row == nil || int(id) >= len(row) {
		return t
	}
	// log softmax: x - (max + log Σ exp(x - max)), summed in float64.
	mx := math.Inf(-1)
	for _, x := range row {
		mx = max(mx, float64(x))
	}
	sum := 0.0
	for _, x := range row {
		sum += math.Exp(float64(x) - mx)
	}
	lse := mx + math.Log(sum)
	t.logprob = float64(row[id]) - lse
	if k := c.j.topLogprobs; k > 0 {
		for _, i := range topK(row, k) {
			p := tok.TokenPiece(i)
			t.top = append(t.top, altLogprob{token: string(p), bytes: slices.Clone(p), logprob: float64(row[i]) - lse})
		}
	}
	return t
}

// topK returns the ids of the k largest values of row, largest first
// (ties: the lower id first). k is small (at most 20), so one pass with
// an insertion into a sorted list of k is quicker than sorting the row.
func topK(row []float32, k int) []int32 {
	k = min(k, len(row))
	best := make([]int32, 0, k+1)
	for i, x := range row {
		if len(best) == k && x <= row[best[k-1]] {
			continue
		}
		j := len(best)
		for j > 0 && x > row[best[j-1]] {
			j--
		}
		best = slices.Insert(best, j, int32(i))
		if len(best) > k {
			best = best[:k]
		}
	}
	return best
}

// scanStops looks for the earliest stop string in s. It returns the cut
// position (-1 if none) and, when there is none, how many trailing bytes
// of s could still be the beginning of one. (The same rule as the root
// package's ChatSession.)
func scanStops(s string, stops []string) (cut, hold int) {
	cut = -1
	for _, st := range stops {
		if i := strings.Index(s, st); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
		for k := min(len(st)-1, len(s)); k > hold; k-- {
			if strings.HasSuffix(s, st[:k]) {
				hold = k
				break
			}
		}
	}
	return cut, hold
}
