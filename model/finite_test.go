package model

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gollm/gollm/gguf"
	"github.com/gollm/gollm/tensor"
)

func isFinite32(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// TestAnyNonFiniteExhaustive checks the SWAR test of 16-bit lanes against
// HalfToFloat and BF16ToFloat for every bit pattern, in every lane, next
// to neighbours chosen to provoke borrows (zero, the smallest subnormal,
// the largest finite values, negative zero…).
func TestAnyNonFiniteExhaustive(t *testing.T) {
	kinds := []struct {
		name  string
		lanes swarLanes
		conv  func(uint16) float32
		hood  []uint16
	}{
		{"f16", lanesF16, tensor.HalfToFloat, []uint16{0x0000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x8000, 0x8001, 0xFBFF}},
		{"bf16", lanesBF16, tensor.BF16ToFloat, []uint16{0x0000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x8000, 0x8001, 0xFF7F}},
	}
	for _, k := range kinds {
		for h := range 1 << 16 {
			bad := !isFinite32(k.conv(uint16(h)))
			for lane := range 4 {
				for _, n := range k.hood {
					var w uint64
					for l := range 4 {
						v := n
						if l == lane {
							v = uint16(h)
						}
						w |= uint64(v) << (16 * l)
					}
					if got := k.lanes.anyNonFinite(w); got != bad {
						t.Fatalf("%s: %#04x in lane %d among %#04x: anyNonFinite = %v, want %v", k.name, h, lane, n, got, bad)
					}
				}
			}
		}
	}
	// float32: every exponent and sign, with mantissas at both ends.
	for e := range 256 {
		for _, m := range []uint32{0, 1, 0x400000, 0x7FFFFF} {
			for _, s := range []uint32{0, 1 << 31} {
				b := s | uint32(e)<<23 | m
				bad := !isFinite32(math.Float32frombits(b))
				for lane := range 2 {
					for _, n := range []uint32{0, 1, 0x7F7FFFFF, 0x80000000, 0xFF7FFFFF} {
						w := uint64(n)<<32 | uint64(b)
						if lane == 1 {
							w = uint64(b)<<32 | uint64(n)
						}
						if got := lanesF32.anyNonFinite(w); got != bad {
							t.Fatalf("f32 %#08x in lane %d among %#08x: anyNonFinite = %v, want %v", b, lane, n, got, bad)
						}
					}
				}
			}
		}
	}
}

// TestFirstNonFiniteFloats puts one NaN or infinity at every position of
// a row long enough to have both 32-byte steps and a tail, among random
// finite values, and checks the index found.
func TestFirstNonFiniteFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []struct {
		t    tensor.DType
		size int
		bad  [][]byte
	}{
		{tensor.F32, 4, [][]byte{f32NaN, f32PosInf, binary.LittleEndian.AppendUint32(nil, 0xFF800000)}},
		{tensor.F16, 2, [][]byte{halfNaN, halfPosInf, halfNegInf, {0x01, 0xFE}}},
		{tensor.BF16, 2, [][]byte{{0xC0, 0x7F}, {0x80, 0x7F}, {0x80, 0xFF}, {0x81, 0xFF}}},
	}
	for _, k := range kinds {
		n := 3*32/k.size + 5 // three 32-byte steps and a tail of 5 values
		row := make([]byte, n*k.size)
		for i := 0; i < n; i++ {
			for { // a random finite value
				b := row[i*k.size : (i+1)*k.size]
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				v := make([]float32, 1)
				_ = tensor.DequantizeRow(k.t, v, b)
				if isFinite32(v[0]) {
					break
				}
			}
		}
		if got := firstNonFiniteFloats(k.t, row); got != -1 {
			t.Fatalf("%s: finite row: index %d", k.t, got)
		}
		for i := 0; i < n; i++ {
			for _, bad := range k.bad {
				r := append([]byte(nil), row...)
				copy(r[i*k.size:], bad)
				if i+3 < n { // a second one later must not matter
					copy(r[(i+3)*k.size:], bad)
				}
				if got := firstNonFiniteFloats(k.t, r); got != i {
					t.Fatalf("%s: bad value %x at %d: index %d", k.t, bad, i, got)
				}
			}
		}
	}
}

// TestScaleCheckMatchesDequantize is the argument of finite.go as a test:
// for every quantized type the check reads, on blocks of random bytes (so
// a half scale is NaN or infinite one time in 32), a block has a
// non-finite scale exactly when tensor.DequantizeRow gives it a non-finite
// value.
func TestScaleCheckMatchesDequantize(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for dt := range scaleFields {
		const blocks = 4000
		bb, bs := dt.BlockBytes(), dt.BlockSize()
		data := make([]byte, blocks*bb)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		vals := make([]float32, blocks*bs)
		if err := tensor.DequantizeRow(dt, vals, data); err != nil {
			t.Fatal(err)
		}
		bad := 0
		for b := 0; b < blocks; b++ {
			want := false
			for _, v := range vals[b*bs : (b+1)*bs] {
				want = want || !isFinite32(v)
			}
			got, _, _ := firstNonFiniteScale(dt, data[b*bb:(b+1)*bb])
			if (got == 0) != want {
				t.Fatalf("%s block %d: scale check %v, dequantized values non-finite %v", dt, b, got == 0, want)
			}
			if want {
				bad++
			}
		}
		if bad == 0 {
			t.Fatalf("%s: no block had a bad scale; the test tested nothing", dt)
		}
	}
}

// TestCheckFiniteOrder: with bad values in several chunks of several
// parts, the error is the first in part order and, within a part, in data
// order, however the chunks were scheduled.
func TestCheckFiniteOrder(t *testing.T) {
	mk := func(name string, dt tensor.DType, rows, cols int) *part {
		n, _ := tensor.RowBytes(dt, int64(cols))
		return &part{name: name, rows: rows, cols: cols, t: gguf.Tensor{TensorInfo: gguf.TensorInfo{Type: dt}, Data: make([]byte, int(n)*rows)}}
	}
	a := mk("a", tensor.F16, 4096, 1024)  // 8 MiB: 8 chunks
	b := mk("b", tensor.Q8_0, 4096, 4096) // 17 MiB: 18 chunks
	copy(b.t.Data[34*1000:], halfNaN)     // block 1000
	copy(a.t.Data[2*(3000*1024+5):], halfPosInf)
	copy(a.t.Data[2*(4000*1024):], halfNaN)
	for range 20 {
		err := checkFinite(context.Background(), []*part{a, b}, nil)
		if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "a (f16, 4096×1024) at row 3000, column 5 is +Inf") {
			t.Fatalf("got %v", err)
		}
	}
	a.t.Data = make([]byte, len(a.t.Data))
	err := checkFinite(context.Background(), []*part{a, b}, nil)
	if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "b (q8_0, 4096×4096) at row 7, columns 3328-3359: block 1000 has scale d = NaN") {
		t.Fatalf("got %v", err)
	}
	b.t.Data = make([]byte, len(b.t.Data))
	if err := checkFinite(context.Background(), []*part{a, b}, nil); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCheckFinite measures the load-time check on the model file
// named by $GOLLM_FINITE_MODEL (make one with gollm synth), opening the
// file afresh for every iteration so that each pays for mapping its pages,
// as Load does; the page cache is warm after the first. It reports
// milliseconds per GB of weights checked (ms/GB), and for a second pass
// over the same mapping (ms/GB-mapped): the difference is the cost of
// mapping the pages, which the first forward step pays when Load has not. Without the variable it checks
// a 256 MiB F16 tensor and a 256 MiB Q6_K tensor held in memory.
func BenchmarkCheckFinite(b *testing.B) {
	path := os.Getenv("GOLLM_FINITE_MODEL")
	if path == "" {
		f16 := &part{name: "f16", rows: 1 << 16, cols: 2048, t: gguf.Tensor{TensorInfo: gguf.TensorInfo{Type: tensor.F16}, Data: make([]byte, 1<<28)}}
		q6k := &part{name: "q6k", rows: 1 << 16, cols: 256 * 19, t: gguf.Tensor{TensorInfo: gguf.TensorInfo{Type: tensor.Q6_K}, Data: make([]byte, 1<<16*210*19)}}
		for _, p := range []*part{f16, q6k} {
			for i := range p.t.Data {
				p.t.Data[i] = 0x11 // finite as a half (0x1111 = 0.00066), and touches every page
			}
			b.Run(p.name, func(b *testing.B) {
				b.SetBytes(int64(len(p.t.Data)))
				n := 0
				for b.Loop() {
					if err := checkFinite(context.Background(), []*part{p}, nil); err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(n)/(float64(len(p.t.Data))/1e9), "ms/GB")
			})
		}
		return
	}
	var gb float64
	var first, again time.Duration
	for b.Loop() {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		var parts []*part
		for _, ti := range f.Tensors() {
			tt, _ := f.Tensor(ti.Name)
			p := &part{name: ti.Name, cols: int(ti.Shape[0]), t: tt}
			if len(ti.Shape) == 2 {
				p.rows = int(ti.Shape[1])
			}
			parts = append(parts, p)
			gb += float64(ti.Size) / 1e9
		}
		// The first pass maps every page; the second finds them mapped.
		for _, d := range []*time.Duration{&first, &again} {
			start := time.Now()
			if err := checkFinite(context.Background(), parts, nil); err != nil {
				b.Fatal(err)
			}
			*d += time.Since(start)
		}
		f.Close()
	}
	b.ReportMetric(float64(first.Microseconds())/1e3/gb, "ms/GB")
	b.ReportMetric(float64(again.Microseconds())/1e3/gb, "ms/GB-mapped")
}

// finiteParts is an F16 part of 8 MiB and a Q8_0 part of 17 MiB, all
// finite: 26 chunks of the check.
func finiteParts() []*part {
	mk := func(name string, dt tensor.DType, rows, cols int) *part {
		n, _ := tensor.RowBytes(dt, int64(cols))
		return &part{name: name, rows: rows, cols: cols, t: gguf.Tensor{TensorInfo: gguf.TensorInfo{Type: dt}, Data: make([]byte, int(n)*rows)}}
	}
	return []*part{mk("a", tensor.F16, 4096, 1024), mk("b", tensor.Q8_0, 4096, 4096)}
}

// TestCheckFiniteProgress: the progress callback starts at 0, never goes
// down, always has the same total (every byte of the parts) and ends at
// it; one call per chunk after the first.
func TestCheckFiniteProgress(t *testing.T) {
	parts := finiteParts()
	var want int64
	for _, p := range parts {
		want += int64(len(p.t.Data))
	}
	var dones []int64
	err := checkFinite(context.Background(), parts, func(done, total int64) {
		if total != want {
			t.Errorf("total %d, want %d", total, want)
		}
		dones = append(dones, done) // calls are serialized: no lock needed
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dones) != 1+26 || dones[0] != 0 || dones[len(dones)-1] != want {
		t.Fatalf("%d calls, first %d, last %d; want 27 from 0 to %d", len(dones), dones[0], dones[len(dones)-1], want)
	}
	for i := 1; i < len(dones); i++ {
		if dones[i] <= dones[i-1] {
			t.Fatalf("progress went from %d to %d", dones[i-1], dones[i])
		}
	}
}

// TestCheckFiniteCancel: a context cancelled during the check ends it
// with ctx.Err() within one chunk per worker (counted in chunks, not
// time), and a context cancelled before it scans nothing.
func TestCheckFiniteCancel(t *testing.T) {
	parts := finiteParts()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := checkFinite(ctx, parts, func(done, total int64) {
		calls++
		if calls == 2 { // after the first chunk
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// Chunks already taken when cancel came still finish: at most one
	// per worker, of 26.
	if after := calls - 2; after > runtime.GOMAXPROCS(0) {
		t.Errorf("%d chunks scanned after the cancellation, want at most %d (one per worker)", after, runtime.GOMAXPROCS(0))
	}
	calls = 0
	if err := checkFinite(ctx, parts, func(done, total int64) {
		if done > 0 {
			calls++
		}
	}); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("cancelled before: %v, %d chunks scanned", err, calls)
	}
}
