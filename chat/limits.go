package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// A chat template comes inside the model file: it is a program written by
// whoever made the file, and every process that loads the model runs it.
// Limits bound what one render may take, so that a hostile or broken
// template fails with an error instead of hanging, exhausting memory or
// crashing the process. How each limit is enforced is in sandbox.go.

// ErrLimit is wrapped by the errors of renders stopped by a limit.
var ErrLimit = errors.New("chat: template limit exceeded")

// Limits bound one render of a template. A zero field means its default
// (see DefaultLimits).
type Limits struct {
	// Time bounds the wall-clock time of one render. The render stops at
	// its next statement, printed value or loop iteration.
	Time time.Duration
	// Depth bounds nesting: of the template's source (blocks inside
	// blocks, operators and brackets inside an expression), of the values
	// it builds (lists inside lists), and while it renders (loop bodies and
	// macro calls inside each other, recursion included). At most MaxDepth.
	Depth int
	// Iterations bounds the loop iterations of one render, all loops
	// together.
	Iterations int
	// Output bounds the rendered text, in bytes, and with it every string
	// or list the template builds, measured by the bytes it prints as: a
	// value that cannot be printed within the limit cannot be part of a
	// prompt.
	Output int
	// Memory bounds, in bytes, everything the render builds, summed: the
	// text it writes (to the output and to the buffers of macros, call
	// and set blocks) and the strings and lists that operators, filters
	// and methods make. It bounds the garbage a render leaves, which the
	// limits on single values do not.
	Memory int
}

// The defaults, and why. The figures are for Qwen3's template (BenchmarkRender,
// TestRealTemplatesWithinLimits) on one core of the development machine.
const (
	// The prompt of a 128K-token context (Qwen3's, Llama 3.1's) at 8
	// bytes per token; English takes about 4.
	defaultOutput = 1 << 20
	// Qwen3's template renders a conversation of that size (1,000
	// messages) in 0.13-0.25 s, and a short one in 0.2 ms: a second
	// leaves four times what the largest prompt needs.
	defaultTime = time.Second
	// Qwen3's template builds 6.2 bytes (copies made by split, strip and
	// chains of +) for each byte it prints, DeepSeek-R1's 2.5: 64 bytes
	// per output byte leaves ten times what the largest prompt needs.
	defaultMemory = 64 * defaultOutput
	// Every pair of 1,000 messages. One iteration of gonja's loop costs
	// about 7 µs, so Time stops a long loop first (near 150,000
	// iterations); this is the bound that does not depend on the
	// machine. Jinja's sandbox also caps one range() at 100,000.
	defaultIterations = 1_000_000
	// Real templates nest 9 (Llama 3) to 20 (DeepSeek-R1) levels,
	// statements and expression nodes counted alike (rewriter), and data
	// passed in may nest 100 (toTemplateValue). Jinja under Python stops
	// recursing at about 100-300 macro calls (Python's 1,000 frames).
	defaultDepth = 128
)

// MaxDepth is the largest Depth: a render's Go stack grows with the
// product of the source's nesting and the run-time nesting (a macro body
// nested n levels, called m levels deep), about 1 KiB per level, and Go
// stops a program whose stack passes 1 GB. 256 × 256 levels is 64 MiB.
const MaxDepth = 256

// maxSource bounds the size of a template's source. Real chat templates
// are 1-20 KiB; parsing takes about 50 bytes of memory per source byte.
const maxSource = 1 << 20

// maxRange is the longest range() Jinja's sandbox allows (MAX_RANGE), and
// Hugging Face renders chat templates in that sandbox.
const maxRange = 100_000

// DefaultLimits returns the limits a Template starts with.
func DefaultLimits() Limits {
	return Limits{
		Time:       defaultTime,
		Depth:      defaultDepth,
		Iterations: defaultIterations,
		Output:     defaultOutput,
		Memory:     defaultMemory,
	}
}

// orDefaults fills the zero (or negative) fields of l with the defaults,
// and caps Depth at MaxDepth.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.Time <= 0 {
		l.Time = d.Time
	}
	if l.Depth <= 0 {
		l.Depth = d.Depth
	}
	l.Depth = min(l.Depth, MaxDepth)
	if l.Iterations <= 0 {
		l.Iterations = d.Iterations
	}
	if l.Output <= 0 {
		l.Output = d.Output
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	return l
}

// limitError returns an error wrapping ErrLimit.
func limitError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
}

// bytesText writes a byte count the way the limits are usually set:
// "4 MiB", "64 KiB", else "1000 bytes".
func bytesText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// renderState is what one render has used of its limits. A render runs in
// one goroutine (the caller's), so the state needs no lock.
type renderState struct {
	ctx        context.Context
	limits     Limits
	deadline   time.Time
	ticks      int
	iterations int
	depth      int // loop bodies and macro calls running now
	memory     int
	out        *meter // the render's output
	// err is the first error: a limit, or an error raised by this
	// package's functions. Once set, every further check returns it, so
	// that a render whose error gonja swallows (it ignores some) still
	// stops at its next step, and Render reports it.
	err error
}

// fail records err unless an error is recorded already, and returns the
// recorded one.
func (s *renderState) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// tick is called at every statement, printed value and loop iteration: it
// stops the render once it has run out of time, or once ctx is done.
func (s *renderState) tick() error {
	if s.err != nil {
		return s.err
	}
	// Reading the clock takes about 25 ns, a tenth of a short step, so
	// it is read at the first tick and every 16th. Most steps take
	// microseconds, the slowest (building a value near Limits.Output, or
	// gonja listing the items of a 100,000-item loop before its first
	// iteration) tens of milliseconds: a render overruns Limits.Time by
	// at most 16 steps.
	s.ticks++
	if s.ticks%16 != 1 {
		return nil
	}
	if err := s.ctx.Err(); err != nil {
		return s.fail(fmt.Errorf("%w: render stopped: %w", ErrRender, err))
	}
	if time.Now().After(s.deadline) {
		return s.fail(limitError("rendering takes longer than Limits.Time (%v)", s.limits.Time))
	}
	return nil
}

// enter starts a loop iteration (iteration true) or a macro call, caller()
// or block; leave ends it. leave must be called even when enter fails.
func (s *renderState) enter(iteration bool) error {
	s.depth++
	if err := s.tick(); err != nil {
		return err
	}
	if iteration {
		s.iterations++
		if s.iterations > s.limits.Iterations {
			return s.fail(limitError("more than Limits.Iterations (%d) loop iterations", s.limits.Iterations))
		}
	}
	if s.depth > s.limits.Depth {
		return s.fail(limitError("loops and macro calls nest deeper than Limits.Depth (%d)", s.limits.Depth))
	}
	return nil
}

func (s *renderState) leave() { s.depth-- }

// spend counts n bytes built against Limits.Memory.
func (s *renderState) spend(n int) error {
	if s.err != nil {
		return s.err
	}
	s.memory += n
	if s.memory > s.limits.Memory {
		return s.fail(limitError("the render builds more than Limits.Memory (%s)", bytesText(s.limits.Memory)))
	}
	return nil
}

// allow refuses, before it is built, a value of n bytes made by what.
func (s *renderState) allow(what string, n int) error {
	if s.err != nil {
		return s.err
	}
	if n < 0 || n > s.limits.Output {
		return s.fail(limitError("%s would build %d bytes, more than Limits.Output (%s)", what, n, bytesText(s.limits.Output)))
	}
	return nil
}

// built checks a value that what has built: it must print within
// Limits.Output and nest within Limits.Depth; what it took to build counts
// against Limits.Memory.
func (s *renderState) built(what string, v *exec.Value) error {
	if s.err != nil {
		return s.err
	}
	if _, err := s.measure(v); err != nil {
		return s.fail(fmt.Errorf("%w (made by %s)", err, what))
	}
	return s.spend(allocated(v))
}

// allocated estimates the bytes building v took: a string's bytes, or 16
// bytes per item of a list or dict, which holds its items by reference
// (so that collecting 1,000 messages into a list counts 16 KB, not their
// text 1,000 times over).
func allocated(v *exec.Value) int {
	v = unwrap(v)
	switch {
	case v.IsString():
		return len(v.String())
	case v.IsList() || v.IsDict():
		return 16 * v.Len()
	}
	return 8
}

// measure returns about how many bytes v prints as, or an error if that
// is more than Limits.Output or v nests deeper than Limits.Depth.
func (s *renderState) measure(v *exec.Value) (int, error) {
	m := measurer{budget: s.limits.Output, maxDepth: s.limits.Depth}
	if v != nil && !m.walk(v.Val, 0) {
		if m.tooDeep {
			return 0, limitError("a value nests deeper than Limits.Depth (%d)", s.limits.Depth)
		}
		return 0, limitError("a value prints as more than Limits.Output (%s)", bytesText(s.limits.Output))
	}
	return m.size, nil
}

// measurer estimates how many bytes a value prints as (as gonja prints
// lists and dicts: ['a', 1] and {'k': 'v'}), walking at most budget bytes'
// worth of it. A list holding the same big value twice counts it twice,
// since it prints twice, and a value that holds itself never ends, so it
// runs out of budget (or depth): that is what bounds those values.
type measurer struct {
	budget, maxDepth int
	size             int
	deepest          int // containers inside containers, so far
	tooDeep          bool
}

// add counts n bytes and reports whether the total is within budget.
func (m *measurer) add(n int) bool {
	m.size += n
	return m.size <= m.budget
}

// walk measures rv, depth containers deep, and reports whether it fits.
func (m *measurer) walk(rv reflect.Value, depth int) bool {
	// Follow pointers, interfaces and gonja's *Value wrappers; eight
	// steps without reaching a container or a scalar is no data a
	// template builds, and counts as a small opaque value.
	for hops := 0; rv.IsValid() && (rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer); hops++ {
		if rv.IsNil() || hops == 8 {
			return m.add(4)
		}
		if rv.CanInterface() {
			if v, ok := rv.Interface().(*exec.Value); ok {
				rv = v.Val
				continue
			}
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return m.add(4) // None
	}
	container := func() bool {
		if depth >= m.maxDepth {
			m.tooDeep = true
			return false
		}
		m.deepest = max(m.deepest, depth+1)
		return m.add(2) // the brackets
	}
	switch rv.Kind() {
	case reflect.String:
		return m.add(rv.Len() + 2)
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return m.add(8) // most numbers print shorter; the largest take 24
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return m.add(rv.Len() + 3)
		}
		if !container() {
			return false
		}
		for i := range rv.Len() {
			if !m.add(2) || !m.walk(rv.Index(i), depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if !container() {
			return false
		}
		for it := rv.MapRange(); it.Next(); {
			if !m.add(4) || !m.walk(it.Key(), depth+1) || !m.walk(it.Value(), depth+1) {
				return false
			}
		}
		return true
	case reflect.Struct:
		if rv.Type() != exec.TypeDict || !rv.CanInterface() {
			return m.add(16) // loop, cycler and the like: gonja's own objects
		}
		if !container() {
			return false
		}
		for _, p := range rv.Interface().(exec.Dict).Pairs {
			if !m.add(4) || !m.walk(reflect.ValueOf(p.Key), depth+1) || !m.walk(reflect.ValueOf(p.Value), depth+1) {
				return false
			}
		}
		return true
	}
	return m.add(16) // functions and other opaque values
}

// meter is the writer every statement and printed value of a render
// writes through (see printStatement and limitedStatement). It counts the
// text against Limits.Memory, and keeps the buffer it writes to, the
// output or a macro's or block's buffer, within Limits.Output.
type meter struct {
	w     io.Writer
	state *renderState
}

// lengther is what the buffers gonja and this package write to have: the
// strings.Builder of macros and the bytes.Buffer of blocks.
type lengther interface{ Len() int }

func (m *meter) Write(p []byte) (int, error) {
	if err := m.check(len(p)); err != nil {
		return 0, err
	}
	return m.w.Write(p)
}

func (m *meter) WriteString(s string) (int, error) {
	if err := m.check(len(s)); err != nil {
		return 0, err
	}
	return io.WriteString(m.w, s)
}

func (m *meter) check(n int) error {
	s := m.state
	if err := s.spend(n); err != nil {
		return err
	}
	if b, ok := m.w.(lengther); ok && b.Len()+n > s.limits.Output {
		if m == s.out {
			return s.fail(limitError("the output passes Limits.Output (%s)", bytesText(s.limits.Output)))
		}
		return s.fail(limitError("the text of a macro or block passes Limits.Output (%s)", bytesText(s.limits.Output)))
	}
	return nil
}

// metered returns r writing through the render's meter: r itself when it
// does already, as it mostly does (renderers inherit their writer), else a
// copy of r writing through a meter for its buffer.
func (s *renderState) metered(r *exec.Renderer) *exec.Renderer {
	if m, ok := r.Output.(*meter); ok && m.state == s {
		return r
	}
	c := *r
	c.Output = &meter{w: r.Output, state: s}
	return &c
}
