package cuda

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/gollm/gollm/backend"
	"github.com/gollm/gollm/tensor"
)

// Tests that need no GPU: they run everywhere, CI included.

// ptxEntry is one .entry of the PTX with its parameter types.
type ptxEntry struct{ params []string }

// parsePTXEntries finds every `.visible .entry name(` and the types of
// its `.param .TYPE name_param_N` lines.
func parsePTXEntries(src string) map[string]ptxEntry {
	entries := map[string]ptxEntry{}
	entryRe := regexp.MustCompile(`^\.visible \.entry (\w+)\($`)
	paramRe := regexp.MustCompile(`^\s*\.param \.(\w+) \w+_param_\d+,?$`)
	var cur string
	for _, line := range strings.Split(src, "\n") {
		if m := entryRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
			entries[cur] = ptxEntry{}
			continue
		}
		if cur == "" {
			continue
		}
		if m := paramRe.FindStringSubmatch(line); m != nil {
			e := entries[cur]
			e.params = append(e.params, m[1])
			entries[cur] = e
			continue
		}
		if strings.HasPrefix(line, ")") {
			cur = ""
		}
	}
	return entries
}

// TestPTXEntries checks the embedded PTX: its header, and that every
// kernel the Go side launches is there by name with parameters of the
// sizes the recorded arguments have (a pointer or long is .u64, an int
// .u32, a float .f32).
func TestPTXEntries(t *testing.T) {
	if !strings.Contains(ptxSource, "\n.version 7.8\n") || !strings.Contains(ptxSource, "\n.target sm_80\n") ||
		!strings.Contains(ptxSource, "\n.address_size 64\n") {
		t.Fatalf("unexpected PTX header (%s); regenerate with go generate", ptxTarget())
	}
	if got := ptxTarget(); got != "PTX 7.8 for sm_80" {
		t.Errorf("ptxTarget() = %q", got)
	}
	entries := parsePTXEntries(ptxSource)
	want := map[argKind]string{argPtr: "u64", argI64: "u64", argI32: "u32", argF32: "f32"}
	names := map[string]bool{}
	for _, k := range allKernels {
		names[k.name] = true
		e, ok := entries[k.name]
		if !ok {
			t.Errorf("kernel %s: no .entry in the PTX", k.name)
			continue
		}
		if len(e.params) != len(k.params) {
			t.Errorf("kernel %s: PTX has %d parameters, the Go side passes %d", k.name, len(e.params), len(k.params))
			continue
		}
		for i, p := range k.params {
			if e.params[i] != want[p] {
				t.Errorf("kernel %s parameter %d: PTX .%s, the Go side passes a %s", k.name, i, e.params[i], p)
			}
		}
	}
	for name := range entries {
		if !names[name] {
			t.Errorf("PTX entry %s is not in allKernels", name)
		}
	}
	if len(entries) != len(allKernels) {
		t.Errorf("%d PTX entries, %d kernels", len(entries), len(allKernels))
	}
	// -fmad=false: no fused multiply-add in float32 code, except the
	// explicit __fmaf_rn of attention, which follows the CPU's fused
	// attention kernels (kernels.FMA32).
	for i, body := range strings.Split(ptxSource, ".entry ")[1:] {
		name := body[:strings.IndexAny(body, "( \n")]
		switch fused := strings.Contains(body, "fma.rn.f32"); {
		case fused && name != "attention":
			t.Errorf("PTX entry %d (%s) contains fma.rn.f32: compile with -fmad=false", i, name)
		case !fused && name == "attention":
			t.Errorf("attention has no fma.rn.f32: it must fuse like kernels.AttnScores/AttnValues")
		}
	}
}

// TestNoDriver points the library name at a file that does not exist, as
// on a machine without an NVIDIA driver.
func TestNoDriver(t *testing.T) {
	saved := libName
	libName = "libcuda-gollm-missing.so.1"
	defer func() { libName = saved }()
	_, err := New(Options{})
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("New: err = %v, want ErrNoDriver", err)
	}
	if !strings.Contains(err.Error(), "libcuda-gollm-missing.so.1 not found") {
		t.Errorf("message %q does not name the library", err)
	}
	if _, err := Probe(); !errors.Is(err, ErrNoDriver) {
		t.Errorf("Probe: err = %v, want ErrNoDriver", err)
	}
	t.Log(err)
}

func TestErrorIs(t *testing.T) {
	oom := &Error{Call: "cuMemAlloc_v2", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory"}
	if !errors.Is(oom, ErrOutOfMemory) || !errors.Is(oom, ErrDriver) || errors.Is(oom, ErrNoDevice) {
		t.Error("out-of-memory error classifies wrongly")
	}
	if got := oom.Error(); got != "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)" {
		t.Errorf("message %q", got)
	}
	nodev := &Error{Call: "cuInit", Code: 100}
	if !errors.Is(nodev, ErrNoDevice) || errors.Is(nodev, ErrOutOfMemory) {
		t.Error("no-device error classifies wrongly")
	}
}

func TestPlan(t *testing.T) {
	const gb = 1 << 30
	need := Need{Weights: 69 * gb / 10, KV: 576 << 20, Scratch: 120 << 20}
	if err := Plan(need, 80*gb, 80*gb); err != nil {
		t.Errorf("fits in 80 GiB: %v", err)
	}
	err := Plan(need, 52*gb/10, 8*gb)
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("err = %v, want ErrOutOfMemory", err)
	}
	want := "cuda: out of device memory: the model needs 6.9 GiB of weights + 576.0 MiB KV + 120.0 MiB scratch (+ 337.9 MiB reserve), the GPU has 5.2 GiB free of 8.0 GiB"
	if err.Error() != want {
		t.Errorf("message\n %s\nwant\n %s", err, want)
	}
	// Exactly at the edge: need + reserve == free fits.
	total := int64(8 * gb)
	if err := Plan(Need{Weights: 1 * gb}, 1*gb+Reserve(total), total); err != nil {
		t.Errorf("edge: %v", err)
	}
	if err := Plan(Need{Weights: 1 * gb}, 1*gb+Reserve(total)-1, total); err == nil {
		t.Error("one byte short: fits")
	}
}

func TestSizes(t *testing.T) {
	// Qwen3-8B Q6_K: a (4096, 4096) matrix is 16 blocks of 212 bytes per row.
	b, err := WeightBytes(tensor.Q6_K, 4096, 4096)
	if err != nil || b != 4096*16*212 {
		t.Errorf("WeightBytes q6_K = %d, %v", b, err)
	}
	if b, _ := WeightBytes(tensor.Q8_0, 10, 64); b != 10*2*36 {
		t.Errorf("WeightBytes q8_0 = %d", b)
	}
	if b, _ := WeightBytes(tensor.Q4_K, 3, 512); b != 3*2*144 {
		t.Errorf("WeightBytes q4_K = %d", b)
	}
	if b, _ := WeightBytes(tensor.F16, 3, 5); b != 30 {
		t.Errorf("WeightBytes f16 = %d", b)
	}
	if _, err := WeightBytes(tensor.Q4_0, 1, 32); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "q4_0") {
		t.Errorf("q4_0: %v", err)
	}
	if _, err := WeightBytes(tensor.Q6_K, 1, 100); !errors.Is(err, ErrUnsupported) {
		t.Errorf("100 q6_K columns: %v", err)
	}
	// KV: Qwen3-8B, 4096 tokens of F16 = 576 MiB (kvcache's package comment).
	if kv := KVBytes(tensor.F16, 36, 1024, 16, 256); kv != 576<<20 {
		t.Errorf("KVBytes = %d", kv)
	}
	s := ScratchBytes(Shape{Embd: 4096, QDim: 4096, KVDim: 1024, FF: 12288, Vocab: 151936}, 64)
	if s < 64*151936*4 || s > 100<<20 {
		t.Errorf("ScratchBytes = %d", s)
	}
}

func TestRepack(t *testing.T) {
	// Q6_K: the file block, then two zero bytes.
	src := make([]byte, 2*210)
	for i := range src {
		src[i] = byte(i*7 + 1)
	}
	dst := make([]byte, 2*212)
	for i := range dst {
		dst[i] = 0xEE
	}
	repack(tensor.Q6_K, dst, src)
	for blk := 0; blk < 2; blk++ {
		for i := 0; i < 210; i++ {
			if dst[blk*212+i] != src[blk*210+i] {
				t.Fatalf("q6_K block %d byte %d", blk, i)
			}
		}
		if dst[blk*212+210] != 0 || dst[blk*212+211] != 0 {
			t.Fatalf("q6_K block %d padding not zero", blk)
		}
	}
	// Q8_0: d, two zero bytes, the 32 quants.
	src = make([]byte, 34)
	for i := range src {
		src[i] = byte(i + 1)
	}
	dst = make([]byte, 36)
	repack(tensor.Q8_0, dst, src)
	if dst[0] != 1 || dst[1] != 2 || dst[2] != 0 || dst[3] != 0 || dst[4] != 3 || dst[35] != 34 {
		t.Fatalf("q8_0 repack: % x", dst)
	}
}

func TestMatGeometry(t *testing.T) {
	for _, wt := range supportedTypes {
		for _, rows := range []int{1, 3, 4, 5, 63, 64, 65, 4096, 151936} {
			for _, n := range []int{1, 7, 8, 9, 63, 64, 65, 66, 512} {
				cols := 512
				k, d, err := matGeometry(wt, rows, cols, n, defaultTiledMinTokens)
				if err != nil {
					t.Fatal(err)
				}
				tiled := strings.HasPrefix(k.name, "mmq")
				if tiled != (n >= defaultTiledMinTokens && wt != tensor.F16 && wt != tensor.F32) {
					t.Errorf("%s rows %d n %d: kernel %s", wt, rows, n, k.name)
				}
				rowsPer, tokPer := mmvWarps, mmvBlockTok
				if tiled {
					rowsPer, tokPer = mmqRows, mmqTokens
					if d.block[0] != mmqThreads {
						t.Errorf("mmq block %v", d.block)
					}
				} else if d.block[0] != 32*mmvWarps {
					t.Errorf("mmv block %v", d.block)
				}
				if int(d.grid[0])*rowsPer < rows || int(d.grid[0]-1)*rowsPer >= rows {
					t.Errorf("%s: grid.x %d for %d rows", k.name, d.grid[0], rows)
				}
				if int(d.grid[1])*tokPer < n || int(d.grid[1]-1)*tokPer >= n {
					t.Errorf("%s: grid.y %d for %d tokens", k.name, d.grid[1], n)
				}
			}
		}
	}
	// Q8_0 rows that are not whole 256-value steps stay on mmv.
	if k, _, _ := matGeometry(tensor.Q8_0, 10, 96, 100, defaultTiledMinTokens); k != kMMVQ80 {
		t.Errorf("q8_0 with 96 columns uses %s", k.name)
	}
	// A huge TiledMinTokens turns mmq off.
	if k, _, _ := matGeometry(tensor.Q6_K, 10, 256, 512, math.MaxInt32); k != kMMVQ6K {
		t.Errorf("tiled off: %s", k.name)
	}
	if _, _, err := matGeometry(tensor.Q4_0, 1, 32, 1, 9); !errors.Is(err, ErrUnsupported) {
		t.Errorf("q4_0: %v", err)
	}
}

func TestAttnGeometry(t *testing.T) {
	cases := []struct {
		heads, kvHeads, hd, n int
		gpb                   int
		grid, block           [3]uint32
	}{
		{32, 8, 128, 1, 4, [3]uint32{8, 1, 1}, [3]uint32{512, 1, 1}},     // Qwen3-8B decode
		{32, 8, 128, 512, 4, [3]uint32{8, 512, 1}, [3]uint32{512, 1, 1}}, // its prompt
		{8, 4, 64, 7, 2, [3]uint32{4, 7, 1}, [3]uint32{128, 1, 1}},       // the fixture models
		{64, 4, 128, 3, 8, [3]uint32{4, 3, 2}, [3]uint32{1024, 1, 1}},    // a group of 16: two blocks
		{40, 8, 256, 2, 4, [3]uint32{8, 2, 2}, [3]uint32{1024, 1, 1}},    // head size 256: 4 heads per block
		{12, 12, 48, 5, 1, [3]uint32{12, 5, 1}, [3]uint32{64, 1, 1}},     // no grouping, head size 48: whole warps
	}
	for _, c := range cases {
		d, gpb, err := attnGeometry(c.heads, c.kvHeads, c.hd, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if gpb != c.gpb || d.grid != c.grid || d.block != c.block {
			t.Errorf("%+v: gpb %d grid %v block %v", c, gpb, d.grid, d.block)
		}
		if want := uint32((gpb*c.hd + gpb*attChunk) * 4); d.shared != want {
			t.Errorf("%+v: shared %d, want %d", c, d.shared, want)
		}
		if d.block[0] > maxThreads {
			t.Errorf("%+v: %d threads per block", c, d.block[0])
		}
	}
	for _, bad := range [][4]int{{32, 7, 128, 1}, {32, 8, 2048, 1}, {32, 8, 128, 70000}, {32, 0, 128, 1}} {
		if _, _, err := attnGeometry(bad[0], bad[1], bad[2], bad[3]); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}

func TestElementGeometry(t *testing.T) {
	for _, count := range []int{1, 255, 256, 257, 4096 * 512} {
		d := elemGeometry(count)
		if d.threads() < count || d.threads()-count >= elemThreads {
			t.Errorf("elemGeometry(%d): %d threads", count, d.threads())
		}
		w := warpGeometry(count)
		if w.threads()/32 < count || w.threads()/32-count >= 4 {
			t.Errorf("warpGeometry(%d): %d warps", count, w.threads()/32)
		}
	}
}

// TestRecorder checks that launches keep their argument values, that
// staged arrays are copies, equal arrays are staged once, alignment, and
// that a wrong argument list is caught.
func TestRecorder(t *testing.T) {
	var r recorder
	ids := []int32{5, 6, 7}
	off := r.stageInt32(ids)
	ids[0] = 99 // the caller reuses its slice: the staged copy must not change
	r.launch(kEmbed, elemGeometry(3*256), ptrArg(0x1000), ptrArg(0x2000), arenaArg(off),
		i32Arg(3), i32Arg(256), i64Arg(1<<40), i32Arg(int(tensor.Q6_K)))
	if len(r.cmds) != 1 || r.cmds[0].k != kEmbed || r.cmds[0].nargs != 7 {
		t.Fatalf("recorded %+v", r.cmds)
	}
	c := r.cmds[0]
	if c.args[5].v != 1<<40 || c.args[6].v != 14 || !c.args[2].arena || c.args[2].resolve(0x9000) != 0x9000+uint64(off) {
		t.Errorf("arguments %+v", c.args[:7])
	}
	if got := r.stage[off : off+12]; got[0] != 5 || got[4] != 6 || got[8] != 7 {
		t.Errorf("staged % x", got)
	}
	// Equal contents share one copy; others are 16-byte aligned.
	if again := r.stageInt32([]int32{5, 6, 7}); again != off {
		t.Errorf("equal array staged twice (%d, %d)", off, again)
	}
	other := r.stageInt32([]int32{1})
	if other%arenaAlign != 0 || other == off {
		t.Errorf("second array at %d", other)
	}
	f := r.stageFloat32([]float32{-1.5})
	if f%arenaAlign != 0 {
		t.Errorf("float array at %d", f)
	}
	if got := f32Arg(-1.5).v; got != uint64(math.Float32bits(-1.5)) {
		t.Errorf("f32Arg bits %x", got)
	}
	if got := i32Arg(-2).v; got != 0xFFFFFFFE {
		t.Errorf("i32Arg(-2) = %x (the driver reads the low 4 bytes)", got)
	}
	r.reset()
	if !r.empty() || len(r.stage) != 0 || len(r.uploads) != 0 {
		t.Error("reset left something")
	}
	mustPanic(t, "too few arguments", func() { r.launch(kAdd, elemGeometry(1), ptrArg(1), ptrArg(2)) })
	mustPanic(t, "wrong kind", func() { r.launch(kAdd, elemGeometry(1), ptrArg(1), ptrArg(2), i32Arg(3)) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// TestStagePlan checks the flattened attention plan: slots, positions,
// per-token table offsets, and each distinct block table once.
func TestStagePlan(t *testing.T) {
	b := newBackend(Options{}, nil)
	tabA := []int32{3, 9}
	tabB := []int32{4}
	p := &backend.AttnPlan{N: 3, Pos: []int32{17, 18, 2}, Slots: []int32{3*16 + 1, 9*16 + 2, 4*16 + 2},
		Tables: [][]int32{tabA, tabA, tabB}, BlockSize: 16}
	pl := b.stagePlanLocked(p)
	img := make([]int32, (len(b.rec.stage)-pl.slots)/4)
	for i := range img {
		img[i] = int32(uint32(b.rec.stage[pl.slots+4*i]) | uint32(b.rec.stage[pl.slots+4*i+1])<<8 |
			uint32(b.rec.stage[pl.slots+4*i+2])<<16 | uint32(b.rec.stage[pl.slots+4*i+3])<<24)
	}
	want := []int32{49, 146, 66, 17, 18, 2, 0, 0, 2, 3, 9, 4}
	if len(img) != len(want) {
		t.Fatalf("image %v, want %v", img, want)
	}
	for i := range want {
		if img[i] != want[i] {
			t.Fatalf("image %v, want %v", img, want)
		}
	}
	if pl.pos != pl.slots+12 || pl.tabOff != pl.slots+24 || pl.tables != pl.slots+36 {
		t.Errorf("offsets %+v", pl)
	}
	// The same plan again (next layer) shares the staged copy.
	if again := b.stagePlanLocked(p); again != pl {
		t.Errorf("restaged: %+v vs %+v", again, pl)
	}
}
