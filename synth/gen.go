package synth

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/gollm/gollm/tensor"
)

// SupportedTypes lists the weight types Write can generate.
func SupportedTypes() []tensor.DType {
	return []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q4_0, tensor.Q4_1,
		tensor.Q5_0, tensor.Q5_1, tensor.Q8_0, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K}
}

func generatable(t tensor.DType) bool {
	for _, s := range SupportedTypes() {
		if s == t {
			return true
		}
	}
	return false
}

// ---- random streams ----

// stream is the random source of one chunk of one tensor: a PCG generator
// seeded with (seed, a 64-bit mix of the tensor name and the chunk index).
// Because it depends only on those three things, chunks can be made in any
// order, on any number of goroutines, and give the same bytes.
func stream(seed uint64, name string, chunk int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, splitmix64(h.Sum64()+uint64(chunk)*0x9e3779b97f4a7c15)))
}

// splitmix64 scrambles a 64-bit value (Steele et al.'s SplitMix64 finalizer),
// so that neighbouring chunk numbers give unrelated PCG sequences.
func splitmix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// fillRandom fills b with random bytes, eight at a time.
func fillRandom(b []byte, r *rand.Rand) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	if i < len(b) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], r.Uint64())
		copy(b[i:], tail[:])
	}
}

// ---- float tensors ----

// fillFloats writes len(dst)/size(t) values of type t (F32, F16 or BF16),
// each mean + std·N(0,1).
func fillFloats(dst []byte, t tensor.DType, r *rand.Rand, mean, std float64) {
	switch t {
	case tensor.F32:
		for i := 0; i+4 <= len(dst); i += 4 {
			binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(float32(mean+std*r.NormFloat64())))
		}
	case tensor.F16:
		for i := 0; i+2 <= len(dst); i += 2 {
			binary.LittleEndian.PutUint16(dst[i:], tensor.FloatToHalf(float32(mean+std*r.NormFloat64())))
		}
	case tensor.BF16:
		for i := 0; i+2 <= len(dst); i += 2 {
			binary.LittleEndian.PutUint16(dst[i:], tensor.FloatToBF16(float32(mean+std*r.NormFloat64())))
		}
	default:
		panic("synth: fillFloats on " + t.String())
	}
}

// ---- quantized blocks drawn from random bits ----
//
// A quantized value is (super-scale d) × (group scale sc) × (level q −
// offset), minus a group minimum for the types that have one. The direct
// path fills a chunk with random bytes, which makes every level uniform
// over its range, and then overwrites each block's scale fields with sane
// values: group scales uniform over the upper half of their range (as a
// quantizer produces: the largest group gets the largest scale) and, for
// types with a minimum, a minimum that centres the group on zero. The
// random bytes that were in a scale field pick its value, so no further
// random numbers are drawn.
//
// The super-scale is d = d0·f with f = 0.75 + 0.5u, u uniform in [0,1)
// (blocks differ a little, as in real files), and d0 is chosen so that
// the weights have the requested standard deviation:
//
//	std² = E[d²]·E[sc²]·E[(q−offset)²]  ⇒  d0 = std / (rms(f)·rms(sc)·rms(q−offset))
//
// with each rms computed by enumerating the possible values (levelRMS).

// blockGen describes the direct generation of one quantized type.
type blockGen struct {
	levelRMS float64 // rms of (q − offset) over uniform random q
	scaleRMS float64 // rms of the group scale (1 for types without one)
	// fix overwrites the scale fields of the random blocks in raw (whole
	// blocks) using super-scale base d0.
	fix func(raw []byte, d0 float32)
}

// factorRMS is rms(0.75 + 0.5u) for u uniform in [0,1): sqrt(49/48).
var factorRMS = math.Sqrt(49.0 / 48.0)

// superScale turns 16 random bits into d0·(0.75 + 0.5u), rounded to half.
func superScale(bits uint16, d0 float32) uint16 {
	u := float32(bits) / 65536
	return tensor.FloatToHalf(d0 * (0.75 + 0.5*u))
}

// signedSuperScale is superScale with a random sign: the top bit gives the
// sign and the other 15 bits give u.
func signedSuperScale(bits uint16, d0 float32) uint16 {
	u := float32(bits&0x7fff) / 32768
	return tensor.FloatToHalf(d0*(0.75+0.5*u)) | bits&0x8000
}

// levelRMS is sqrt(mean of v(i)² for i = 0..n-1).
func levelRMS(n int, v func(i int) float64) float64 {
	var s float64
	for i := 0; i < n; i++ {
		s += v(i) * v(i)
	}
	return math.Sqrt(s / float64(n))
}

// q8Level maps a random byte to a Q8_0 level. ggml's quantizer writes
// levels -127..127 only, so -128 becomes 0.
func q8Level(b byte) int8 {
	if q := int8(b); q != -128 {
		return q
	}
	return 0
}

var blockGens = map[tensor.DType]blockGen{
	// Q8_0: x = d·q, q in -127..127.
	tensor.Q8_0: {
		levelRMS: levelRMS(256, func(i int) float64 { return float64(q8Level(byte(i))) }),
		scaleRMS: 1,
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ8_0](raw)
			for i := range blocks {
				b := &blocks[i]
				b.D = superScale(b.D, d0)
				for j := range b.Qs {
					b.Qs[j] = q8Level(byte(b.Qs[j]))
				}
			}
		},
	},
	// Q4_0: x = d·(q−8). A random sign on d cancels the −0.5 mean of q−8.
	tensor.Q4_0: {
		levelRMS: levelRMS(16, func(i int) float64 { return float64(i - 8) }),
		scaleRMS: 1,
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ4_0](raw)
			for i := range blocks {
				blocks[i].D = signedSuperScale(blocks[i].D, d0)
			}
		},
	},
	// Q4_1: x = d·q + m with m = −7.5·d, centring q on zero.
	tensor.Q4_1: {
		levelRMS: levelRMS(16, func(i int) float64 { return float64(i) - 7.5 }),
		scaleRMS: 1,
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ4_1](raw)
			for i := range blocks {
				blocks[i].D = superScale(blocks[i].D, d0)
				blocks[i].M = tensor.FloatToHalf(-7.5 * tensor.HalfToFloat(blocks[i].D))
			}
		},
	},
	// Q5_0: x = d·(q−16), 5-bit q (the fifth bits in Qh are random too).
	tensor.Q5_0: {
		levelRMS: levelRMS(32, func(i int) float64 { return float64(i - 16) }),
		scaleRMS: 1,
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ5_0](raw)
			for i := range blocks {
				blocks[i].D = signedSuperScale(blocks[i].D, d0)
			}
		},
	},
	// Q5_1: x = d·q + m with m = −15.5·d.
	tensor.Q5_1: {
		levelRMS: levelRMS(32, func(i int) float64 { return float64(i) - 15.5 }),
		scaleRMS: 1,
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ5_1](raw)
			for i := range blocks {
				blocks[i].D = superScale(blocks[i].D, d0)
				blocks[i].M = tensor.FloatToHalf(-15.5 * tensor.HalfToFloat(blocks[i].D))
			}
		},
	},
	// Q4_K: x = (d·sc)·q − (dmin·m), q in 0..15. Scales sc in 32..63;
	// dmin = 8d and m = round(15·sc/16), so dmin·m ≈ 7.5·d·sc centres q.
	tensor.Q4_K: {
		levelRMS: levelRMS(16, func(i int) float64 { return float64(i) - 7.5 }),
		scaleRMS: levelRMS(32, func(i int) float64 { return float64(32 + i) }),
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ4_K](raw)
			for i := range blocks {
				b := &blocks[i]
				b.D = superScale(b.D, d0)
				b.Dmin = tensor.FloatToHalf(8 * tensor.HalfToFloat(b.D))
				setK4Scales(&b.Scales, 15)
			}
		},
	},
	// Q5_K: as Q4_K with 5-bit q: dmin = 16d, m = round(31·sc/32).
	tensor.Q5_K: {
		levelRMS: levelRMS(32, func(i int) float64 { return float64(i) - 15.5 }),
		scaleRMS: levelRMS(32, func(i int) float64 { return float64(32 + i) }),
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ5_K](raw)
			for i := range blocks {
				b := &blocks[i]
				b.D = superScale(b.D, d0)
				b.Dmin = tensor.FloatToHalf(16 * tensor.HalfToFloat(b.D))
				setK4Scales(&b.Scales, 31)
			}
		},
	},
	// Q6_K: x = (d·sc)·(q−32), q in 0..63. Scales: magnitude 64..127 with a
	// random sign (ggml's scales are signed; the sign also cancels the
	// −0.5 mean of q−32).
	tensor.Q6_K: {
		levelRMS: levelRMS(64, func(i int) float64 { return float64(i - 32) }),
		scaleRMS: levelRMS(64, func(i int) float64 { return float64(64 + i) }),
		fix: func(raw []byte, d0 float32) {
			blocks := tensor.Blocks[tensor.BlockQ6_K](raw)
			for i := range blocks {
				b := &blocks[i]
				b.D = superScale(b.D, d0)
				for j, s := range b.Scales {
					mag := 64 + int8(s&63)
					if s < 0 {
						mag = -mag
					}
					b.Scales[j] = mag
				}
			}
		},
	},
}

// setK4Scales replaces the random bytes of a Q4_K/Q5_K scales array by
// eight group scales sc = 32 + (5 random bits) and minimums
// m = round(sc·nmax/(nmax+1)). With dmin = d·(nmax+1)/2 (set by the
// caller) that makes dmin·m ≈ d·sc·nmax/2: each group is centred on the
// middle of its levels 0..nmax.
func setK4Scales(s *[12]byte, nmax int) {
	raw := *s
	for j := 0; j < 8; j++ {
		sc := 32 + int(raw[j]&31)
		m := (sc*nmax + (nmax+1)/2) / (nmax + 1) // round(sc·nmax/(nmax+1))
		tensor.SetScaleMinK4(s, j, uint8(sc), uint8(m))
	}
}

// ---- one tensor, in chunks ----

// chunkTarget is the size of one generated chunk: big enough to amortize
// goroutine handoff, small enough that a few in flight cost little memory.
const chunkTarget = 1 << 20

// tensorJob describes how to generate one tensor.
type tensorJob struct {
	spec     TensorSpec
	cfg      Config
	rowBytes int // bytes of one row (ne0 values)
	rows     int // rows (product of the other dimensions)
}

func newTensorJob(spec TensorSpec, cfg Config) (tensorJob, error) {
	rb, err := tensor.RowBytes(spec.Type, spec.Shape[0])
	if err != nil {
		return tensorJob{}, fmt.Errorf("%w: tensor %s: %v", ErrConfig, spec.Name, err)
	}
	rows := 1
	for _, d := range spec.Shape[1:] {
		rows *= int(d)
	}
	return tensorJob{spec: spec, cfg: cfg, rowBytes: int(rb), rows: rows}, nil
}

func (j tensorJob) size() int64 { return int64(j.rowBytes) * int64(j.rows) }

// rowsPerChunk depends only on the row size, so the chunking (and with
// it the random streams) is a function of the tensor's shape and type.
func (j tensorJob) rowsPerChunk() int { return max(1, chunkTarget/j.rowBytes) }

func (j tensorJob) chunks() int { return (j.rows + j.rowsPerChunk() - 1) / j.rowsPerChunk() }

// fillChunk generates chunk c (rows c·rowsPerChunk onwards) into dst, which
// has exactly that chunk's bytes.
func (j tensorJob) fillChunk(dst []byte, c int) error {
	r := stream(j.cfg.Seed, j.spec.Name, c)
	t := j.spec.Type
	switch {
	case j.spec.kind == kindNorm:
		fillFloats(dst, tensor.F32, r, 1, 0.05)
	case j.spec.kind == kindBias:
		fillFloats(dst, tensor.F32, r, 0, 0.05)
	case j.spec.kind == kindRouter:
		fillFloats(dst, tensor.F32, r, 0, j.cfg.WeightStd)
	case j.spec.kind == kindRopeFreqs:
		for i, v := range llama3RopeFreqs(j.cfg.RopeBase, 2*len(dst)/4, j.cfg.Llama3RopeFactor) {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case t == tensor.F32 || t == tensor.F16 || t == tensor.BF16:
		fillFloats(dst, t, r, 0, j.cfg.WeightStd)
	case j.cfg.Quantize:
		// Gaussian floats through the reference quantizer, row by row.
		ne0 := int(j.spec.Shape[0])
		x := make([]float32, ne0) // (ne0) one row of weights
		for off := 0; off < len(dst); off += j.rowBytes {
			for i := range x {
				x[i] = float32(j.cfg.WeightStd * r.NormFloat64())
			}
			if err := tensor.QuantizeRow(t, dst[off:off+j.rowBytes], x); err != nil {
				return err
			}
		}
	default:
		g, ok := blockGens[t]
		if !ok {
			return fmt.Errorf("%w: no generator for %s", ErrConfig, t)
		}
		d0 := float32(j.cfg.WeightStd / (factorRMS * g.scaleRMS * g.levelRMS))
		fillRandom(dst, r)
		g.fix(dst, d0)
	}
	return nil
}

// writeTo generates the tensor and writes it to w in order. Chunks are
// generated by up to workers goroutines ahead of the writer; the writer
// takes them in chunk order, so the output does not depend on scheduling.
func (j tensorJob) writeTo(w io.Writer, workers int) error {
	type pending struct {
		buf  []byte
		done chan error // receives the generation result
	}
	n := j.chunks()
	queue := make(chan *pending, workers) // chunks handed out, in order
	free := make(chan []byte, workers+2)  // written buffers, for reuse
	stop := make(chan struct{})           // closed when the writer gives up
	defer close(stop)
	go func() {
		defer close(queue)
		for c := 0; c < n; c++ {
			first := c * j.rowsPerChunk()
			need := min(j.rowsPerChunk(), j.rows-first) * j.rowBytes
			var buf []byte
			select {
			case b := <-free:
				buf = b[:need] // every chunk but the last has the same size
			default:
				buf = make([]byte, need, j.rowsPerChunk()*j.rowBytes)
			}
			p := &pending{buf: buf, done: make(chan error, 1)}
			select {
			case queue <- p: // at most `workers` chunks wait in the queue
			case <-stop:
				return
			}
			go func() { p.done <- j.fillChunk(p.buf, c) }()
		}
	}()
	for p := range queue {
		if err := <-p.done; err != nil {
			return err
		}
		if _, err := w.Write(p.buf); err != nil {
			return err
		}
		select {
		case free <- p.buf:
		default:
		}
	}
	return nil
}

// defaultWorkers is how many chunks are generated at once.
func defaultWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }
