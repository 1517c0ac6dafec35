package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gollm/gollm/kernels"
	"github.com/gollm/gollm/tensor"
)

// A plain-Go emulation of the product kernels' integer arithmetic, run on
// the CPU. It follows kernels.cu step for step — the same lane split of a
// step, the same 32-bit words unpacked from the device layout, the same
// __dp4a sums and the same float chain — and must agree bit for bit with
// the CPU backend's kernels.MatMul. It checks the design (which bytes each
// lane reads, where its words go, which scale multiplies them) on machines
// without a GPU; the GPU tests check the CUDA code itself.

// ld32 reads a little-endian int32, as a 32-bit load on the GPU does.
func ld32(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }

// dp4a is __dp4a: the four signed byte products of a and b, plus c.
func dp4a(a, b, c int32) int32 {
	for i := 0; i < 4; i++ {
		c += int32(int8(a>>(8*i))) * int32(int8(b>>(8*i)))
	}
	return c
}

// vsub4 is __vsub4: bytewise subtraction, modulo 256.
func vsub4(a, b int32) int32 {
	var r uint32
	for i := 0; i < 4; i++ {
		r |= uint32(uint8(a>>(8*i))-uint8(b>>(8*i))) << (8 * i)
	}
	return int32(r)
}

func halfAt(b []byte) float32 { return tensor.HalfToFloat(binary.LittleEndian.Uint16(b)) }

// emuScaleMinK4 is scale_min_k4.
func emuScaleMinK4(j int, s []byte) (sc, m int32) {
	if j < 4 {
		return int32(s[j] & 63), int32(s[j+4] & 63)
	}
	return int32(s[j+4]&0xF | (s[j-4]>>6)<<4), int32(s[j+4]>>4 | (s[j]>>6)<<4)
}

// emuType mirrors one of kernels.cu's weight-format structs.
type emuType struct {
	stepBytes, units int
	mins             bool
	unpack           func(b []byte, c int) (w [8]int32, widx [8]int, sc [8]int32)
	d, dmin          func(b []byte, u int) float32
	min16            func(b []byte, g int) int32
	laneMsum         func(b []byte, c int, bsum []int32) int32
}

func emuTypeOf(t tensor.DType) emuType {
	zero := func([]byte, int) float32 { return 0 }
	switch t {
	case tensor.Q6_K:
		return emuType{stepBytes: 212, units: 1,
			unpack: func(b []byte, c int) (w [8]int32, widx [8]int, sc [8]int32) {
				h, l0 := c>>2, (c&3)*8
				ql, qh := b[64*h+l0:], b[128+32*h+l0:]
				for half := 0; half < 2; half++ {
					A, B, H := ld32(ql[4*half:]), ld32(ql[32+4*half:]), ld32(qh[4*half:])
					l := l0 + 4*half
					for k := 0; k < 4; k++ {
						src := A
						if k&1 != 0 {
							src = B
						}
						lo := (src >> (4 * (k >> 1))) & 0x0F0F0F0F
						hi := ((H >> (2 * k)) & 0x03030303) << 4
						i := 2*k + half
						w[i] = vsub4(lo|hi, 0x20202020)
						widx[i] = 32*h + 8*k + l/4
						sc[i] = int32(int8(b[192+8*h+2*k+l0/16]))
					}
				}
				return
			},
			d:     func(b []byte, u int) float32 { return halfAt(b[208:]) },
			dmin:  zero,
			min16: func([]byte, int) int32 { return 0 },
		}
	case tensor.Q4_K, tensor.Q5_K:
		five := t == tensor.Q5_K
		step := 144
		if five {
			step = 176
		}
		laneMsum := func(b []byte, c int, bsum []int32) int32 {
			j, l0 := c>>1, (c&1)*16
			_, m0 := emuScaleMinK4(2*j, b[4:])
			_, m1 := emuScaleMinK4(2*j+1, b[4:])
			return m0*bsum[4*j+l0/16] + m1*bsum[4*j+2+l0/16]
		}
		return emuType{stepBytes: step, units: 1, mins: true,
			unpack: func(b []byte, c int) (w [8]int32, widx [8]int, sc [8]int32) {
				j, l0 := c>>1, (c&1)*16
				qsOff := 16
				if five {
					qsOff = 48
				}
				sc0, _ := emuScaleMinK4(2*j, b[4:])
				sc1, _ := emuScaleMinK4(2*j+1, b[4:])
				for i := 0; i < 4; i++ {
					Q := ld32(b[qsOff+32*j+l0+4*i:])
					w[i] = Q & 0x0F0F0F0F
					w[4+i] = (Q >> 4) & 0x0F0F0F0F
					if five {
						H := ld32(b[16+l0+4*i:])
						w[i] |= ((H >> (2 * j)) & 0x01010101) << 4
						w[4+i] |= ((H >> (2*j + 1)) & 0x01010101) << 4
					}
					widx[i], widx[4+i] = 16*j+l0/4+i, 16*j+8+l0/4+i
					sc[i], sc[4+i] = sc0, sc1
				}
				return
			},
			d:    func(b []byte, u int) float32 { return halfAt(b) },
			dmin: func(b []byte, u int) float32 { return halfAt(b[2:]) },
			min16: func(b []byte, g int) int32 {
				_, m := emuScaleMinK4(g>>1, b[4:])
				return m
			},
			laneMsum: laneMsum,
		}
	case tensor.Q8_0:
		return emuType{stepBytes: 8 * 36, units: 8,
			unpack: func(b []byte, c int) (w [8]int32, widx [8]int, sc [8]int32) {
				for i := 0; i < 8; i++ {
					w[i] = ld32(b[36*c+4+4*i:])
					widx[i], sc[i] = 8*c+i, 1
				}
				return
			},
			d:     func(b []byte, u int) float32 { return halfAt(b[36*u:]) },
			dmin:  zero,
			min16: func([]byte, int) int32 { return 0 },
		}
	}
	panic("no emulation for " + t.String())
}

// emuActs is the quantized activations in the GPU's split layout.
type emuActs struct {
	qs   []byte    // (token, cols) int8
	d    []float32 // (token, cols/QK)
	bsum []int32   // (token, cols/16)
}

// quantizeActs makes what quantize_q8k / quantize_q8_0 are to produce,
// from the CPU's own quantizer (kernels.QuantizeRow).
func quantizeActs(at tensor.DType, x []float32, n, cols int) (emuActs, []byte) {
	rb, _ := tensor.RowBytes(at, int64(cols))
	raw := make([]byte, int(rb)*n)
	var a emuActs
	for i := 0; i < n; i++ {
		row := raw[i*int(rb) : (i+1)*int(rb)]
		kernels.QuantizeRow(at, row, x[i*cols:(i+1)*cols])
		if at == tensor.Q8_K {
			for _, blk := range tensor.Blocks[tensor.BlockQ8_K](row) {
				for _, q := range blk.Qs {
					a.qs = append(a.qs, byte(q))
				}
				a.d = append(a.d, blk.D)
				for _, s := range blk.Bsums {
					a.bsum = append(a.bsum, int32(s))
				}
			}
		} else {
			for _, blk := range tensor.Blocks[tensor.BlockQ8_0](row) {
				for _, q := range blk.Qs {
					a.qs = append(a.qs, byte(q))
				}
				a.d = append(a.d, tensor.HalfToFloat(blk.D))
			}
		}
	}
	return a, raw
}

// emuMMV mirrors mmv_quant for one (row, token): lane = 8*sub + c takes
// lane part c of step s0+sub; the 8 lanes of a step add their integer
// sums, then the steps' float terms join the accumulator in order (Q8_0:
// every lane is its own float unit, added in lane order).
func emuMMV(e emuType, wrow []byte, a emuActs, tok, cols int) float32 {
	units := cols / 256
	if e.units > 1 {
		units = cols / 32
	}
	steps := (cols + 255) / 256
	var acc, accm float32
	for s0 := 0; s0 < steps; s0 += 4 {
		var isum, msum [32]int32
		var term [32]float32 // Q8_0: each lane's float term
		for lane := 0; lane < 32; lane++ {
			c, s := lane&7, s0+lane>>3
			unit := s
			if e.units > 1 {
				unit = s*8 + c
			}
			if unit >= units {
				continue
			}
			blk := wrow[s*e.stepBytes:]
			w, widx, sc := e.unpack(blk, c)
			act := a.qs[tok*cols+s*256:]
			for i := 0; i < 8; i++ {
				isum[lane] += sc[i] * dp4a(w[i], ld32(act[4*widx[i]:]), 0)
			}
			if e.mins {
				msum[lane] = e.laneMsum(blk, c, a.bsum[tok*(cols/16)+s*16:])
			}
			if e.units > 1 {
				da := a.d[tok*units+unit]
				term[lane] = float32(float32(da*e.d(blk, c)) * float32(isum[lane]))
			}
		}
		if e.units > 1 {
			for k := 0; k < 32; k++ {
				if s0*8+k < units {
					acc = acc + term[k]
				}
			}
			continue
		}
		for k := 0; k < 4; k++ { // step s0+k, lanes 8k..8k+7
			s := s0 + k
			if s >= units {
				continue
			}
			var is, ms int32
			for c := 0; c < 8; c++ {
				is += isum[8*k+c]
				ms += msum[8*k+c]
			}
			blk := wrow[s*e.stepBytes:]
			da := a.d[tok*units+s]
			acc = acc + float32(float32(da*e.d(blk, 0))*float32(is))
			accm = accm + float32(float32(da*e.dmin(blk, 0))*float32(ms))
		}
	}
	if e.mins {
		return acc - accm
	}
	return acc
}

// emuMMQ mirrors mmq_quant for one (row, token): the step's words are
// placed in shared memory by widx, then summed group by group.
func emuMMQ(e emuType, wrow []byte, a emuActs, tok, cols int) float32 {
	steps := cols / 256
	units := steps * e.units
	var acc, accm float32
	for s := 0; s < steps; s++ {
		blk := wrow[s*e.stepBytes:]
		var wv [64]int32
		var wsc, wm [16]int32
		var wd [8]float32
		seen := [64]bool{}
		for c := 0; c < 8; c++ {
			w, widx, sc := e.unpack(blk, c)
			for i := 0; i < 8; i++ {
				if seen[widx[i]] {
					panic(fmt.Sprintf("two lanes write word %d", widx[i]))
				}
				seen[widx[i]] = true
				wv[widx[i]] = w[i]
				wsc[widx[i]>>2] = sc[i]
			}
			if e.units > 1 {
				wd[c] = e.d(blk, c)
			}
		}
		if e.units == 1 {
			wd[0] = e.d(blk, 0)
		}
		for g := 0; g < 16; g++ {
			wm[g] = e.min16(blk, g)
		}
		act := a.qs[tok*cols+s*256:]
		for u := 0; u < e.units; u++ {
			var isum, msum int32
			for g := u * (16 / e.units); g < (u+1)*(16/e.units); g++ {
				var dot int32
				for k := 0; k < 4; k++ {
					dot = dp4a(wv[4*g+k], ld32(act[4*(4*g+k):]), dot)
				}
				isum += wsc[g] * dot
				if e.mins {
					msum += wm[g] * a.bsum[tok*(cols/16)+s*16+g]
				}
			}
			da := a.d[tok*units+s*e.units+u]
			acc = acc + float32(float32(da*wd[u])*float32(isum))
			if e.mins {
				accm = accm + float32(float32(da*e.dmin(blk, 0))*float32(msum))
			}
		}
	}
	if e.mins {
		return acc - accm
	}
	return acc
}

// randomWeights quantizes random normal values (with a few large ones, so
// that scales vary) to t in the file layout.
func randomWeights(r *rand.Rand, t tensor.DType, rows, cols int) []byte {
	rb, _ := tensor.RowBytes(t, int64(cols))
	out := make([]byte, int(rb)*rows)
	src := make([]float32, cols)
	for i := 0; i < rows; i++ {
		for j := range src {
			src[j] = float32(r.NormFloat64()) * 0.05
			if r.IntN(97) == 0 {
				src[j] *= 20
			}
		}
		if err := tensor.QuantizeRow(t, out[i*int(rb):(i+1)*int(rb)], src); err != nil {
			panic(err)
		}
	}
	return out
}

func randomActs(r *rand.Rand, n, cols int) []float32 {
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(50) == 0 {
			x[i] *= 30
		}
	}
	return x
}

// TestEmulatedProducts runs the emulated mmv and mmq on the device layout
// of random weights and compares them bit for bit with kernels.MatMul.
func TestEmulatedProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, wt := range []tensor.DType{tensor.Q6_K, tensor.Q4_K, tensor.Q5_K, tensor.Q8_0} {
		for _, cols := range []int{256, 768, 1280, 96} {
			if cols%wt.BlockSize() != 0 {
				continue
			}
			rows, n := 5, 3
			at, _ := kernels.ActType(wt)
			file := randomWeights(r, wt, rows, cols)
			drb, err := DeviceRowBytes(wt, cols)
			if err != nil {
				t.Fatal(err)
			}
			dev := make([]byte, int(drb)*rows)
			repack(wt, dev, file)
			x := randomActs(r, n, cols)
			acts, raw := quantizeActs(at, x, n, cols)
			want := make([]float32, n*rows)
			kernels.MatMul(want, rows, wt, file, at, raw, n, cols, 0, rows)
			e := emuTypeOf(wt)
			for row := 0; row < rows; row++ {
				wrow := dev[row*int(drb) : (row+1)*int(drb)]
				for tok := 0; tok < n; tok++ {
					w := want[tok*rows+row]
					if got := emuMMV(e, wrow, acts, tok, cols); math.Float32bits(got) != math.Float32bits(w) {
						t.Errorf("%s cols %d row %d token %d: mmv %g, CPU %g", wt, cols, row, tok, got, w)
					}
					if cols%256 != 0 {
						continue // mmq needs whole steps
					}
					if got := emuMMQ(e, wrow, acts, tok, cols); math.Float32bits(got) != math.Float32bits(w) {
						t.Errorf("%s cols %d row %d token %d: mmq %g, CPU %g", wt, cols, row, tok, got, w)
					}
				}
			}
		}
	}
}

// emuDequant mirrors the embed kernel's dequant() on the device layout.
func emuDequant(t tensor.DType, row []byte, v int) float32 {
	switch t {
	case tensor.F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(row[4*v:]))
	case tensor.F16:
		return tensor.HalfToFloat(binary.LittleEndian.Uint16(row[2*v:]))
	case tensor.Q8_0:
		b := row[(v/32)*36:]
		return float32(int8(b[4+v%32])) * halfAt(b)
	case tensor.Q6_K:
		b := row[(v/256)*212:]
		r := v % 256
		h, k, l := r/128, (r%128)/32, r%32
		lo := int(b[64*h+32*(k&1)+l]>>(4*(k>>1))) & 0xF
		hi := int(b[128+32*h+l]>>(2*k)) & 3
		q := (lo | hi<<4) - 32
		d := halfAt(b[208:])
		sc := float32(int8(b[192+8*h+2*k+l/16]))
		return float32(d*sc) * float32(q)
	case tensor.Q4_K, tensor.Q5_K:
		bytes, qsOff := 144, 16
		if t == tensor.Q5_K {
			bytes, qsOff = 176, 48
		}
		b := row[(v/256)*bytes:]
		r := v % 256
		j, s, l := r/64, (r%64)/32, r%32
		q := int(b[qsOff+32*j+l]>>(4*s)) & 0xF
		if t == tensor.Q5_K && (b[16+l]>>(2*j+s))&1 != 0 {
			q += 16
		}
		sc, m := emuScaleMinK4(2*j+s, b[4:])
		d1 := halfAt(b) * float32(sc)
		m1 := halfAt(b[2:]) * float32(m)
		return float32(d1*float32(q)) - m1
	}
	panic("no dequant for " + t.String())
}

// TestEmulatedDequant checks the embed kernel's indexing of the device
// layouts against tensor.DequantizeRow, bit for bit.
func TestEmulatedDequant(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, wt := range supportedTypes {
		cols := 512
		file := randomWeights(r, wt, 1, cols)
		drb, _ := DeviceRowBytes(wt, cols)
		dev := make([]byte, drb)
		repack(wt, dev, file)
		want := make([]float32, cols)
		if err := tensor.DequantizeRow(wt, want, file); err != nil {
			t.Fatal(err)
		}
		for v := 0; v < cols; v++ {
			if got := emuDequant(wt, dev, v); math.Float32bits(got) != math.Float32bits(want[v]) {
				t.Fatalf("%s value %d: %g, want %g", wt, v, got, want[v])
			}
		}
	}
}
