package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"golang.org/x/term"
	"golang.org/x/text/width"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/internal/hub"
	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/model"
	"github.com/gollm/gollm/sample"
)

// yarnFlags are llama.cpp's rope-scaling flags, shared by run and logits.
type yarnFlags struct {
	kind    string
	factor  float64
	origCtx int
}

func (y *yarnFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&y.kind, "rope-scaling", "", "override the file's rope scaling: none, linear or yarn (like llama.cpp)")
	fs.Float64Var(&y.factor, "rope-scale", 0, "rope scaling factor (default 4 with --rope-scaling yarn)")
	fs.IntVar(&y.origCtx, "yarn-orig-ctx", 0, "YaRN: the original context length the model was trained for")
}

// scaling returns the override, or nil when no flag was given.
func (y *yarnFlags) scaling() (*model.RopeScaling, error) {
	if !(y.factor == 0 || y.factor >= 1 && y.factor <= 1024) { // also NaN
		return nil, fmt.Errorf("%w: --rope-scale must be between 1 and 1024 (0: the default), not %g", errUsage, y.factor)
	}
	if err := checkRange("yarn-orig-ctx", int64(y.origCtx), 0, maxTokensFlag); err != nil {
		return nil, err
	}
	if y.kind == "" {
		if y.factor != 0 || y.origCtx != 0 {
			return nil, fmt.Errorf("%w: --rope-scale and --yarn-orig-ctx need --rope-scaling", errUsage)
		}
		return nil, nil
	}
	s := &model.RopeScaling{Type: y.kind, Factor: y.factor, OrigContext: y.origCtx}
	switch y.kind {
	case "none":
		s.Factor = 1
	case "yarn", "linear":
		if s.Factor == 0 {
			s.Factor = 4
		}
	default:
		return nil, fmt.Errorf("%w: --rope-scaling is none, linear or yarn, not %s", errUsage, quote(y.kind))
	}
	return s, nil
}

// gpuFlags are the flags of loading a model, shared by run, bench, logits
// and serve: --gpu, --gpu-layers and -v/--verbose.
//
// When the CPU-fallback notice shows. A CPU-only run prints nothing about
// GPUs by default: on a machine without one, "no GPU used (cuda: no CUDA
// driver: …)" on every run is noise. The notice appears when the user
// asked for a GPU: --gpu auto given explicitly (the library logs the
// fallback at Info then, see gollm.ModelOptions.Logger), or with -v (which
// shows the Debug level, where the fallback under the default goes).
// --gpu cuda without a usable GPU is an error saying why; --gpu none never
// tries.
type gpuFlags struct {
	mode    gpuMode
	layers  int
	verbose bool
	quiet   bool // no progress bar
}

// gpuMode is --gpu's value, remembering whether it was given: the default
// is "auto" but goes to the library as "" (see gpuFlags).
type gpuMode struct {
	v   string
	set bool
}

func (m *gpuMode) String() string     { return m.v }
func (m *gpuMode) Set(s string) error { m.v, m.set = s, true; return nil }
func (m *gpuMode) Type() string       { return "mode" }

// library is the mode for gollm.ModelOptions.GPU: "" when --gpu was not
// given, so that the fallback to the CPU is only a Debug notice.
func (m *gpuMode) library() string {
	if !m.set {
		return ""
	}
	return m.v
}

func (g *gpuFlags) register(fs *pflag.FlagSet) {
	g.mode.v = gollm.GPUAuto // the default the help shows
	fs.Var(&g.mode, "gpu", "`device`: auto (a CUDA GPU when usable, else the CPU; given explicitly, says why no GPU was used), cuda (a GPU or an error) or none")
	fs.IntVar(&g.layers, "gpu-layers", 0, "with a GPU: run only the last N layers on it (0: as many as fit)")
	fs.BoolVar(&g.verbose, "verbose", false, "also print routine notices (why no GPU is used, the model loaded)")
	fs.BoolVarP(&g.quiet, "quiet", "q", false, "no progress bar (there is none when stderr is not a terminal)")
}

// apply sets the model options. The library's notices go to stderr as
// "gollm: " lines: those at Info and above, and with -v those at Debug.
func (g *gpuFlags) apply(o *gollm.ModelOptions, stderr io.Writer) error {
	switch g.mode.v {
	case gollm.GPUAuto, gollm.GPUCUDA, gollm.GPUNone:
	default:
		return fmt.Errorf("%w: --gpu is auto, cuda or none, not %s", errUsage, quote(g.mode.v))
	}
	if err := checkRange("gpu-layers", int64(g.layers), 0, 1<<16); err != nil {
		return err
	}
	o.GPU, o.GPULayers = g.mode.library(), g.layers
	o.Logger = slog.New(newLineHandler(stderr, g.level()))
	// Loading reads every page of the weights once (the finite check):
	// seconds for a large model from a cold disk, so a terminal shows it.
	if bar := newProgress(stderr, "loading", g.quiet); bar != nil {
		o.OnProgress = bar.update
	}
	return nil
}

// level is the lowest level of the library's notices shown.
func (g *gpuFlags) level() slog.Level {
	if g.verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// lineHandler is a slog.Handler for a command line: one line per record,
// "gollm: message (key: value, key: value)", no time and no level, as the
// command's other messages look:
//
//	gollm: no GPU used; running on the CPU (reason: cuda: no CUDA driver: libcuda.so.1 not found)
type lineHandler struct {
	w     io.Writer
	level slog.Leveler
	mu    *sync.Mutex // one line at a time, shared by WithAttrs copies
	attrs []slog.Attr
}

func newLineHandler(w io.Writer, level slog.Leveler) *lineHandler {
	return &lineHandler{w: w, level: level, mu: new(sync.Mutex)}
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}

// WithGroup is not needed by the library's notices: groups are flattened.
func (h *lineHandler) WithGroup(string) slog.Handler { return h }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("gollm: ")
	b.WriteString(r.Message)
	n := 0
	add := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		if n == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString(", ")
		}
		n++
		fmt.Fprintf(&b, "%s: %s", a.Key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if n > 0 {
		b.WriteString(")")
	}
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// isTerminal reports whether w is a terminal that understands the live
// view's ANSI escapes (on Windows, a console where virtual terminal
// processing could be turned on; an older console gets plain output).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && enableEscapes(f)
}

// liveView redraws, in a terminal, one line per sequence with the tail of
// what it is writing, so all sequences can be watched at once.
type liveView struct {
	w        io.Writer
	thoughts bool
	mu       sync.Mutex
	text     []string // (seq) text so far
	thinking []bool
	status   []string
	drawn    int // lines drawn last time
	last     time.Time
	width    int
}

func newLiveView(w io.Writer, seqs int, thoughts bool) *liveView {
	width := 100
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			width = cols
		}
	}
	return &liveView{w: w, thoughts: thoughts, text: make([]string, seqs), thinking: make([]bool, seqs),
		status: make([]string, seqs), width: width}
}

func (v *liveView) add(seq int, ch gollm.Chunk) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ch.Kind == chat.Thought && !v.thoughts {
		return
	}
	if ch.Kind == chat.Thought != v.thinking[seq] {
		v.thinking[seq] = ch.Kind == chat.Thought
		if !v.thinking[seq] {
			v.text[seq] = "" // the answer starts: show it instead of the thoughts
		}
	}
	v.text[seq] += ch.Text
	v.status[seq] = ""
	if time.Since(v.last) > 50*time.Millisecond {
		v.draw()
	}
}

// done shows a sequence's status after its answer (its finish reason).
func (v *liveView) done(seq int, status string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.status[seq] = status
	v.draw()
}

// draw moves the cursor up over the previous drawing and writes one line
// per sequence: its label and the last characters of its text.
func (v *liveView) draw() {
	v.last = time.Now()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for i, t := range v.text {
		label := fmt.Sprintf("seq %d ", i+1)
		if v.thinking[i] {
			label += "(thinking) "
		}
		if v.status[i] != "" {
			label += "[" + v.status[i] + "] "
		}
		room := v.width - displayWidth(label) - 2
		flat := visible(strings.NewReplacer("\n", " ⏎ ", "\r", " ", "\t", " ").Replace(t), false)
		flat = tailFitting(flat, room)
		style := ""
		if v.thinking[i] {
			style = "\x1b[2m"
		}
		fmt.Fprintf(&b, "\r\x1b[2K\x1b[1m%s\x1b[0m%s%s\x1b[0m\n", label, style, flat)
	}
	v.drawn = len(v.text)
	io.WriteString(v.w, b.String())
}

func (v *liveView) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.draw()
	io.WriteString(v.w, "\n")
}

// displayWidth is the number of terminal columns s takes: wide (CJK,
// fullwidth) characters take two, control characters none.
func displayWidth(s string) int {
	w := 0
	for _, r := range s {
		w += runeWidth(r)
	}
	return w
}

func runeWidth(r rune) int {
	if r < 0x20 || (r >= 0x7f && r < 0xa0) {
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// tailFitting returns the end of s that fits in cols columns, with a
// leading "…" when something was cut.
func tailFitting(s string, cols int) string {
	if cols <= 1 || displayWidth(s) <= cols {
		return s
	}
	r := []rune(s)
	w, i := 1, len(r) // 1 column for the ellipsis
	for i > 0 && w+runeWidth(r[i-1]) <= cols {
		i--
		w += runeWidth(r[i])
	}
	return "…" + string(r[i:])
}

// Limits of the command line's inputs. Each is checked before anything is
// allocated, so a wrong value is a usage error (exit code 2), not an
// out-of-memory crash; values within them that the machine cannot hold
// are then refused by the library (exit code 1) with the numbers.
const (
	// maxInputBytes bounds every text file the commands read (--file,
	// --input, --prompts-file). A FIFO or device (/dev/stdin, a process
	// substitution) is read through a limit too, so /dev/zero is an
	// error after 64 MiB instead of filling the memory.
	maxInputBytes = 64 << 20
	// maxTokensFlag bounds flags counted in tokens (--ctx, --batch-size,
	// --pp, …): 64 Mi tokens is far above any model's context, and keeps
	// every product of them well inside an int.
	maxTokensFlag = 1 << 26
	// maxQuote is how many characters of an input an error quotes.
	maxQuote = 80
)

// maxThreads is the most --threads accepted: four per CPU this process
// may use (kernels.DefaultThreads, GOMAXPROCS: in a container limited to
// 2 CPUs that is 8, however many cores the machine has); more workers
// than that only take turns on the same CPUs.
func maxThreads() int { return 4 * kernels.DefaultThreads() }

// parseArgs parses a command's arguments. Errors are one line wrapping
// errUsage and naming the help flag (pflag's own message and flag list
// are not printed); -h/--help prints the command's help to stderr and
// returns pflag.ErrHelp. No positional arguments are accepted.
func parseArgs(fs *pflag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(expandArgs(fs, args))
	fs.SetOutput(out)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return fmt.Errorf("%w: %s (see %s -h)", errUsage, flagErrorText(err), fs.Name())
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %s (see %s -h)", errUsage, quote(fs.Arg(0)), fs.Name())
	}
	return nil
}

// flagErrorText is pflag's message with the value or name it quotes
// shortened (a mistyped 1 MB prompt is not repeated).
func flagErrorText(err error) string {
	msg := err.Error()
	// pflag: invalid argument "V" for "-n, --max-tokens" flag: strconv.ParseInt: parsing "V": …
	// (the value twice).
	if rest, ok := strings.CutPrefix(msg, "invalid argument "); ok {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			v, _ := strconv.Unquote(q)
			return "invalid value " + strings.ReplaceAll(rest, q, quote(v))
		}
	}
	for _, prefix := range []string{"unknown flag: ", "unknown shorthand flag: ", "bad flag syntax: ", "flag needs an argument: "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return prefix + shorten(rest)
		}
	}
	return shorten(msg)
}

// quote quotes s for a message, Go-style (control characters escaped),
// with at most maxQuote characters of it: a longer s is cut and followed
// by "…" and its full length.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuote {
		return strconv.Quote(s)
	}
	return strconv.Quote(firstRunes(s, maxQuote)) + fmt.Sprintf("… (%d bytes)", len(s))
}

// shorten is quote without the quotes, for text that is already part of
// a message; control characters are escaped.
func shorten(s string) string {
	q := quote(s)
	if i := strings.LastIndexByte(q, '"'); i > 0 {
		return q[1:i] + q[i+1:]
	}
	return q
}

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// samplingFlags are the sampling flags run and chat share (llama.cpp's
// names and defaults).
type samplingFlags struct {
	temp, topP, minP, repeat float64
	topK                     int
}

func (f *samplingFlags) register(fs *pflag.FlagSet) {
	fs.Float64Var(&f.temp, "temp", 0.8, "sampling temperature (0: greedy)")
	fs.IntVar(&f.topK, "top-k", 40, "top-k sampling (0: off)")
	fs.Float64Var(&f.topP, "top-p", 0.95, "top-p sampling (1: off)")
	fs.Float64Var(&f.minP, "min-p", 0.05, "min-p sampling (0: off)")
	fs.Float64Var(&f.repeat, "repeat-penalty", 1, "repeat penalty (1: off)")
}

// params are the flags as sample.Params, checked (a bad value is a usage
// error).
func (f *samplingFlags) params() (sample.Params, error) {
	p := sample.DefaultParams()
	p.Temperature, p.TopK, p.TopP, p.MinP = float32(f.temp), f.topK, float32(f.topP), float32(f.minP)
	p.RepeatPenalty = float32(f.repeat)
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %w", errUsage, err)
	}
	return p, nil
}

// checkGeneration checks the flags run and chat share: --ctx,
// --max-tokens, --seed, --threads, --kv-type and --think.
func checkGeneration(ctxSize, maxTokens int, seed int64, threads int, kvType, think string) error {
	for _, c := range []struct {
		name      string
		v, lo, hi int64
	}{
		{"ctx", int64(ctxSize), 0, maxTokensFlag},
		{"max-tokens", int64(maxTokens), 0, maxTokensFlag},
		{"seed", seed, -1, math.MaxInt64},
	} {
		if err := checkRange(c.name, c.v, c.lo, c.hi); err != nil {
			return err
		}
	}
	if err := checkThreads(threads); err != nil {
		return err
	}
	if err := checkKVType(kvType); err != nil {
		return err
	}
	if think != "show" && think != "hide" {
		return fmt.Errorf("%w: --think is show or hide, not %s", errUsage, quote(think))
	}
	return nil
}

// checkRange is the usage error for an integer flag outside [lo, hi].
func checkRange(name string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return fmt.Errorf("%w: --%s must be between %d and %d, not %d", errUsage, name, lo, hi, v)
	}
	return nil
}

// threadsFlag registers --threads, the same in run, bench and logits.
func threadsFlag(fs *pflag.FlagSet) *int {
	return fs.Int("threads", 0, fmt.Sprintf("CPU threads, 1 to %d (4 per CPU); 0: one per CPU this process may use (GOMAXPROCS, %d)", maxThreads(), kernels.DefaultThreads()))
}

// checkThreads checks --threads: 0 (one per usable CPU) or 1 to maxThreads().
func checkThreads(n int) error {
	if n < 0 || n > maxThreads() {
		return fmt.Errorf("%w: --threads must be between 1 and %d (4 per CPU), or 0 for one per CPU; not %d",
			errUsage, maxThreads(), n)
	}
	return nil
}

// checkKVType checks --kv-type.
func checkKVType(s string) error {
	if s != "f16" && s != "f32" {
		return fmt.Errorf("%w: --kv-type is f16 or f32, not %s", errUsage, quote(s))
	}
	return nil
}

// readInput reads a text file given on the command line, at most
// maxInputBytes of it. A regular file is measured first; anything else
// (a pipe, /dev/stdin, a device) is read through a limit. A directory is
// an error.
func readInput(flagName, path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	tooBig := fmt.Errorf("--%s %s: larger than the %d MiB limit for input files", flagName, path, maxInputBytes>>20)
	switch {
	case st.IsDir():
		return nil, fmt.Errorf("--%s %s: is a directory", flagName, path)
	case st.Mode().IsRegular() && st.Size() > maxInputBytes:
		return nil, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	if len(data) > maxInputBytes {
		return nil, tooBig
	}
	return data, nil
}

// visible escapes the characters that would act on a terminal instead of
// showing (ESC and the other C0 and C1 controls, DEL, and the bidi
// overrides that reorder a line) as \xNN or \uNNNN; newlines and tabs are
// kept when keepLines is set. Model output goes through it before it
// reaches a terminal.
func visible(s string, keepLines bool) string {
	clean := true
	for _, r := range s {
		if escapeRune(r, keepLines) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !escapeRune(r, keepLines):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func escapeRune(r rune, keepLines bool) bool {
	switch {
	case keepLines && (r == '\n' || r == '\t'):
		return false
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r == 0x200e || r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// modelRefPrefix marks a --model value that names a cached model.
const modelRefPrefix = "hf:"

// checkModelRef checks the syntax of a --model hf:REPO:QUANT value (a
// usage error when wrong); other values are file names, left alone.
func checkModelRef(v string) error {
	if !strings.HasPrefix(v, modelRefPrefix) {
		return nil
	}
	if _, err := hub.ParseRef(v); err != nil {
		return fmt.Errorf("%w: --model: %v", errUsage, err)
	}
	return nil
}

// modelPath turns a --model value into a file: hf:REPO[:QUANT] is looked
// up in the model cache, with no network (an error naming gollm pull when
// it is not there); anything else is a file name already.
func modelPath(v string) (string, error) {
	if !strings.HasPrefix(v, modelRefPrefix) {
		return v, nil
	}
	ref, err := hub.ParseRef(v)
	if err != nil {
		return "", fmt.Errorf("%w: --model: %v", errUsage, err)
	}
	st, err := hub.DefaultStore()
	if err != nil {
		return "", err
	}
	return st.Lookup(ref)
}
