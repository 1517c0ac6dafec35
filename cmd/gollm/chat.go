package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/grammar"
	"github.com/gollm/gollm/internal/demo"
	"github.com/gollm/gollm/sample"
)

func init() {
	register(command{name: "chat", summary: "talk with a model, turn after turn, in the terminal", run: runChat})
}

const chatHelp = `Usage: gollm chat [--model FILE|hf:REPO:QUANT] [--system TEXT] [--think show|hide] [flags]

An interactive conversation with one model, kept in its KV cache from
turn to turn (only the new text of each turn is evaluated). Type a
message and Enter. In a terminal the line can be edited (arrows, Home,
End, Ctrl-U) and earlier lines come back with Up; the model's thinking
is shown dimmed (--think hide hides it).

  Ctrl-C   stops the answer being written; the conversation goes on
  Ctrl-D   (on an empty line) ends the chat

Commands:
  /reset          forget the conversation (the system prompt stays)
  /system TEXT    set the system prompt (/system alone clears it)
  /think show|hide
  /save FILE      write the conversation as JSON ({"messages": [...]}, the
                  shape gollm template and the OpenAI API read)
  /load FILE      continue a saved conversation
  /stats          tokens held, KV blocks, prefix-cache hits, last speed
  /help           this list
  /exit           end the chat (as Ctrl-D)

Structured output as in gollm run: --json-schema FILE, --grammar FILE
(GBNF) or --json-object constrains every answer.

Without --model it talks to the built-in demo model (random weights: it
answers noise, but everything else is real). Standard input need not be a
terminal: piped lines are read as typed ones.

Example:
  gollm chat --model Qwen3-8B-Q6_K.gguf --system "Answer briefly."

Flags:
`

// chatFlags are gollm chat's flags.
type chatFlags struct {
	model, system, think, kvType string
	ctxSize, maxTokens, threads  int
	sampling                     samplingFlags
	seed                         int64
	gpu                          gpuFlags
	constraint                   constraintFlags
}

func runChat(args []string, stdout, stderr io.Writer) error {
	var f chatFlags
	fs := newFlags("chat", stderr)
	fs.Usage = func() { printHelp(fs, chatHelp) }
	fs.StringVar(&f.model, "model", "", "GGUF model file, or hf:REPO:QUANT (default: the built-in demo model)")
	fs.StringVar(&f.system, "system", "", "system prompt")
	fs.StringVar(&f.think, "think", "show", "show or hide the model's thinking")
	fs.IntVar(&f.ctxSize, "ctx", 0, "tokens the conversation may hold (default: the model's context, at most 4096)")
	fs.IntVar(&f.maxTokens, "max-tokens", 0, "most tokens per answer (default: until the model stops or the context is full)")
	threads := threadsFlag(fs)
	f.sampling.register(fs)
	fs.Int64Var(&f.seed, "seed", -1, "random seed (-1: a new one)")
	fs.StringVar(&f.kvType, "kv-type", "f16", "KV cache element type: f16 or f32")
	f.gpu.register(fs)
	f.constraint.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	f.threads = *threads
	if err := f.check(); err != nil {
		return err
	}
	if err := f.constraint.read(); err != nil {
		return err
	}
	params, err := f.sampling.params()
	if err != nil {
		return err
	}
	if f.seed < 0 {
		f.seed = int64(rand.Uint32())
	}
	params.Seed = uint64(f.seed)
	mo := gollm.ModelOptions{Threads: f.threads}
	if err := f.gpu.apply(&mo, stderr); err != nil {
		return err
	}

	// SIGINT is caught for the whole chat: during an answer it stops the
	// answer (see answer), at the prompt it never arrives in a terminal
	// (the line editor reads Ctrl-C as a key).
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	loadCtx, cancelLoad := context.WithCancel(context.Background())
	defer cancelLoad()
	go func() {
		select {
		case <-interrupts:
			cancelLoad()
		case <-loadCtx.Done():
		}
	}()

	path, err := modelPath(f.model)
	if err != nil {
		return err
	}
	if path == "" {
		fmt.Fprintln(stderr, "gollm: no --model given: this is the built-in demo model (random weights, its answers are noise)")
		if path, _, err = demo.PathContext(loadCtx); err != nil {
			return fmt.Errorf("making the demo model: %w", err)
		}
	}
	m, err := gollm.LoadModelContext(loadCtx, path, mo)
	cancelLoad() // the load is over: interrupts now belong to the answers
	if err != nil {
		return err
	}
	defer m.Close()
	if f.ctxSize == 0 {
		f.ctxSize, _ = defaultContext(m.Config(), 1, f.kvType)
	}
	c, err := m.NewContext(gollm.ContextOptions{Sequences: 1, ContextSize: f.ctxSize, KVType: f.kvType})
	if err != nil {
		return err
	}
	defer c.Close()
	seq, err := c.Sequence()
	if err != nil {
		return err
	}
	s := &chatLoop{
		cs:         gollm.NewChatSession(seq, gollm.ChatOptions{SystemPrompt: f.system}),
		ctx:        c,
		params:     params,
		maxTokens:  f.maxTokens,
		grammar:    f.constraint.grammar,
		showThink:  f.think == "show",
		out:        stdout,
		interrupts: interrupts,
	}
	in := os.Stdin
	if fd := int(in.Fd()); term.IsTerminal(fd) && isTerminal(stdout) {
		s.color = true
		return s.run(newTermReader(fd, in, stdout))
	}
	return s.run(newPipeReader(in))
}

func (f *chatFlags) check() error {
	if err := checkModelRef(f.model); err != nil {
		return err
	}
	if err := checkGeneration(f.ctxSize, f.maxTokens, f.seed, f.threads, f.kvType, f.think); err != nil {
		return err
	}
	return nil
}

// lineReader reads the user's lines: io.EOF ends the chat.
type lineReader interface {
	ReadLine() (string, error)
}

// pipeReader reads lines from a pipe or file (no editing, no echo).
type pipeReader struct{ sc *bufio.Scanner }

func newPipeReader(r io.Reader) *pipeReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxInputBytes)
	return &pipeReader{sc}
}

func (p *pipeReader) ReadLine() (string, error) {
	if p.sc.Scan() {
		return p.sc.Text(), nil
	}
	if err := p.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// termReader edits lines with golang.org/x/term's line editor. The
// terminal is in raw mode only while a line is being typed: during an
// answer it is back in its normal mode, so that Ctrl-C sends SIGINT
// (which stops the answer) and the answer's newlines print as usual.
type termReader struct {
	fd int
	t  *term.Terminal
}

func newTermReader(fd int, in io.Reader, out io.Writer) *termReader {
	rw := struct {
		io.Reader
		io.Writer
	}{ctrlCClears{in}, out}
	return &termReader{fd: fd, t: term.NewTerminal(rw, "> ")}
}

func (r *termReader) ReadLine() (string, error) {
	old, err := term.MakeRaw(r.fd)
	if err != nil {
		return "", err
	}
	defer term.Restore(r.fd, old)
	return r.t.ReadLine()
}

// ctrlCClears turns Ctrl-C at the prompt into Ctrl-U (clear the line):
// x/term's editor would end the input on Ctrl-C as on Ctrl-D, and Ctrl-C
// should never end the chat.
type ctrlCClears struct{ r io.Reader }

func (c ctrlCClears) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := range n {
		if p[i] == 3 {
			p[i] = 21
		}
	}
	return n, err
}

// chatLoop is one interactive conversation.
type chatLoop struct {
	cs         *gollm.ChatSession
	ctx        *gollm.Context
	params     sample.Params
	maxTokens  int
	grammar    *grammar.Grammar // --json-schema, --grammar, --json-object: every answer constrained
	showThink  bool
	color      bool // a terminal: thoughts dimmed
	out        io.Writer
	interrupts chan os.Signal
	last       gollm.Response // the last answer, for /stats
	lastWall   time.Duration
	turns      int
}

func (s *chatLoop) run(in lineReader) error {
	for {
		line, err := in.ReadLine()
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(s.out)
			return nil
		}
		if err != nil {
			return err
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "/"):
			if done, err := s.command(line); done || err != nil {
				return err
			}
		default:
			if err := s.answer(line); err != nil {
				return err
			}
		}
	}
}

// answer asks the model and streams the answer. Ctrl-C (SIGINT) stops it:
// what was written so far is kept on the screen, the turn is not added to
// the conversation, and the chat goes on.
func (s *chatLoop) answer(text string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for len(s.interrupts) > 0 { // an interrupt from before this answer
		<-s.interrupts
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-s.interrupts:
			cancel()
		case <-ctx.Done():
		}
		close(stopped)
	}()
	thinking := false
	onChunk := func(ch gollm.Chunk) {
		isThought := ch.Kind == chat.Thought
		if isThought && !s.showThink {
			return
		}
		if isThought != thinking {
			switch {
			case isThought && s.color:
				fmt.Fprint(s.out, "\x1b[2m")
			case isThought:
				fmt.Fprint(s.out, "<think>")
			case s.color:
				fmt.Fprint(s.out, "\x1b[0m")
			default:
				fmt.Fprint(s.out, "</think>")
			}
			thinking = isThought
		}
		fmt.Fprint(s.out, visible(ch.Text, true))
	}
	params := s.params
	params.Seed += uint64(s.turns)
	s.turns++
	start := time.Now()
	res, err := s.cs.PromptWithMeta(ctx, text, gollm.PromptOptions{MaxTokens: s.maxTokens, Sampling: &params, OnChunk: onChunk, Grammar: s.grammar})
	wall := time.Since(start)
	if thinking && s.color {
		fmt.Fprint(s.out, "\x1b[0m")
	}
	cancel()
	<-stopped
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(s.out, " [stopped]")
		return nil
	case err != nil:
		// A failed turn (a prompt too long for the context, say) is
		// reported and the chat goes on.
		fmt.Fprintf(s.out, "\n[error: %v]\n", err)
		return nil
	}
	s.last, s.lastWall = res, wall
	switch res.FinishReason {
	case gollm.FinishLength, gollm.FinishContext:
		fmt.Fprintf(s.out, " [%s]\n", res.FinishReason)
	default:
		fmt.Fprintln(s.out)
	}
	return nil
}

// command runs a /command; done ends the chat.
func (s *chatLoop) command(line string) (done bool, err error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	say := func(format string, args ...any) { fmt.Fprintf(s.out, "("+format+")\n", args...) }
	switch name {
	case "/exit", "/quit", "/bye":
		return true, nil
	case "/help", "/?":
		fmt.Fprint(s.out, chatCommands)
	case "/reset":
		s.cs.Reset()
		say("conversation cleared")
	case "/system":
		s.cs.SetSystemPrompt(arg)
		if arg == "" {
			say("system prompt cleared")
		} else {
			say("system prompt set")
		}
	case "/think":
		switch arg {
		case "show", "hide":
			s.showThink = arg == "show"
			say("thinking: %s", arg)
		default:
			say("/think show or /think hide")
		}
	case "/save":
		if arg == "" {
			say("/save FILE")
			return false, nil
		}
		if err := saveConversation(arg, s.cs.History()); err != nil {
			say("%v", err)
			return false, nil
		}
		say("saved %d messages to %s", len(s.cs.History()), arg)
	case "/load":
		if arg == "" {
			say("/load FILE")
			return false, nil
		}
		msgs, err := loadConversation(arg)
		if err == nil {
			err = s.cs.SetHistory(msgs)
		}
		if err != nil {
			say("%v", err)
			return false, nil
		}
		say("loaded %d messages from %s", len(msgs), arg)
	case "/stats":
		s.stats()
	default:
		say("unknown command %s; /help lists them", quote(name))
	}
	return false, nil
}

const chatCommands = `/reset          forget the conversation (the system prompt stays)
/system TEXT    set the system prompt (/system alone clears it)
/think show|hide
/save FILE      write the conversation as JSON
/load FILE      continue a saved conversation
/stats          tokens held, KV blocks, prefix-cache hits, last speed
/exit           end the chat (or Ctrl-D)
`

func (s *chatLoop) stats() {
	st := s.ctx.Stats()
	held := len(s.cs.Sequence().Tokens())
	fmt.Fprintf(s.out, "(conversation: %d messages, %d tokens in the KV cache of %d\n", len(s.cs.History()), held, s.ctx.Options().ContextSize)
	fmt.Fprintf(s.out, " KV blocks: %d of %d in use (%d tokens each); prefix cache: %d of %d tokens looked up were found\n",
		st.KV.Blocks-st.KV.FreeBlocks, st.KV.Blocks, st.KV.BlockSize, st.KV.PrefixHits, st.KV.PrefixQueried)
	if g := s.last.Generation; len(s.last.GeneratedIDs) > 0 {
		fmt.Fprintf(s.out, " last answer: %d tokens (%d of the prompt reused from the cache, %d evaluated) in %.2fs",
			len(s.last.GeneratedIDs), g.ReusedTokens, g.PromptTokens-g.ReusedTokens, s.lastWall.Seconds())
		if g.GenTime > 0 && len(s.last.GeneratedIDs) > 1 {
			fmt.Fprintf(s.out, ", %.1f tokens/s", float64(len(s.last.GeneratedIDs)-1)/g.GenTime.Seconds())
		}
		fmt.Fprintln(s.out)
	}
	fmt.Fprintf(s.out, " forward steps so far: %d)\n", st.Steps)
}

// savedMessage is a message in a saved conversation: OpenAI's shape.
type savedMessage struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

func saveConversation(path string, msgs []chat.Message) error {
	out := struct {
		Messages []savedMessage `json:"messages"`
	}{Messages: []savedMessage{}}
	for _, m := range msgs {
		out.Messages = append(out.Messages, savedMessage{m.Role, m.Content, m.ReasoningContent})
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

func loadConversation(path string) ([]chat.Message, error) {
	data, err := readInput("/load", path)
	if err != nil {
		return nil, err
	}
	req, err := chat.ParseRequest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return req.Messages, nil
}
