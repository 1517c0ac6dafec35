package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gollm/gollm"
	"github.com/gollm/gollm/chat"
	"github.com/gollm/gollm/model"
	"golang.org/x/term"
	"golang.org/x/text/width"
)

// yarnFlags are llama.cpp's rope-scaling flags, shared by run and logits.
type yarnFlags struct {
	kind    string
	factor  float64
	origCtx int
}

func (y *yarnFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&y.kind, "rope-scaling", "", "override the file's rope scaling: none, linear or yarn (like llama.cpp)")
	fs.Float64Var(&y.factor, "rope-scale", 0, "rope scaling factor (default 4 with --rope-scaling yarn)")
	fs.IntVar(&y.origCtx, "yarn-orig-ctx", 0, "YaRN: the original context length the model was trained for")
}

// scaling returns the override, or nil when no flag was given.
func (y *yarnFlags) scaling() (*model.RopeScaling, error) {
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
		return nil, fmt.Errorf("%w: --rope-scaling is none, linear or yarn, not %q", errUsage, y.kind)
	}
	return s, nil
}

// gpuFlags are --gpu and --gpu-layers, shared by run, bench and logits.
type gpuFlags struct {
	mode   string
	layers int
}

func (g *gpuFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.mode, "gpu", "auto", "device: auto (a CUDA GPU when usable, else the CPU), cuda (a GPU or an error) or none")
	fs.IntVar(&g.layers, "gpu-layers", 0, "with a GPU: run only the last N layers on it (0: as many as fit)")
}

// apply sets the model options; notices (such as the fallback to the CPU)
// go to stderr.
func (g *gpuFlags) apply(o *gollm.ModelOptions, stderr io.Writer) error {
	switch g.mode {
	case gollm.GPUAuto, gollm.GPUCUDA, gollm.GPUNone:
	default:
		return fmt.Errorf("%w: --gpu is auto, cuda or none, not %q", errUsage, g.mode)
	}
	if g.layers < 0 {
		return fmt.Errorf("%w: --gpu-layers must not be negative", errUsage)
	}
	o.GPU, o.GPULayers = g.mode, g.layers
	o.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "gollm: "+format+"\n", args...) }
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
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

func (v *liveView) done(seq, tokens int, tps float64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.status[seq] = fmt.Sprintf("done: %d tokens, %.1f tok/s", tokens, tps)
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
		flat := strings.NewReplacer("\n", " ⏎ ", "\r", " ", "\t", " ").Replace(t)
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
