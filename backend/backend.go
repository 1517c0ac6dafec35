// Package backend defines the operations a transformer forward pass needs,
// so that the model code can be written once and run on any device. The
// CPU implementation is backend/cpu; a GPU backend implements the same
// interface.
//
// Every operation works on the first n rows of float32 activation buffers:
// row i belongs to token i of the current batch. Operations never mix rows
// (except Attention, which reads the KV cache), and each row is computed
// the same way whatever n is, so a sequence's results do not depend on
// what else is in the batch (batch invariance).
package backend

import (
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// Buffer is a float32 activation matrix owned by the backend, of
// (rows, cols) with rows the capacity in tokens.
type Buffer interface {
	Rows() int
	Cols() int
}

// Weight is a matrix of (rows, cols) in its file format (Q6_K, F16, …),
// prepared once at load time. Row r holds the weights of output unit r;
// a product computes dst[i][r] = W[r] · x[i].
type Weight interface {
	Rows() int
	Cols() int
	Type() tensor.DType
}

// Vector is a float32 vector prepared at load time (norm weights).
type Vector interface{ Len() int }

// KV is the storage of a paged KV cache (see package kvcache), per layer
// a K and a V matrix of (slot, kvDim).
type KV interface {
	kvcache.Storage
}

// Projection is one output of Linear: Dst = x · Wᵀ.
type Projection struct {
	Dst Buffer // (token, W.Rows())
	W   Weight
}

// Rope holds the rotary position embedding parameters, including YaRN
// context extension and Llama 3.1's per-pair frequency factors.
type Rope struct {
	Style    RopeStyle // which dimensions rotate together
	Dims     int       // rotated dimensions (the head dimension)
	Base     float32   // rope.freq_base θ
	Scale    float32   // frequency scale (1 / YaRN factor; 1 = none)
	ExtMix   float32   // YaRN extrapolation mix (0 = plain linear scaling/none, 1 = YaRN)
	AttnMul  float32   // multiplies cos and sin (YaRN attention factor, 1 = none)
	BetaFast float32   // YaRN β_fast (32)
	BetaSlow float32   // YaRN β_slow (1)
	OrigCtx  int       // YaRN original context length
	// Factors, when not nil, holds Dims/2 values: pair k's angle is
	// divided by (*Factors)[k] (a Llama 3.1 file's rope_freqs tensor).
	// A pointer, so that Rope stays comparable: backends key their
	// angle tables by it.
	Factors *[]float32
}

// RopeStyle says which dimensions of a head form the rotated pairs
// (llama.cpp's rope types).
type RopeStyle uint8

const (
	// RopeNeoX pairs dimension k with k + Dims/2 (llama.cpp's NEOX, the
	// Qwens' rotate-half).
	RopeNeoX RopeStyle = iota
	// RopeNorm pairs dimensions 2k and 2k+1 (llama.cpp's NORM, its
	// llama architecture: Llama and Mistral).
	RopeNorm
)

func (s RopeStyle) String() string {
	if s == RopeNorm {
		return "norm"
	}
	return "neox"
}

// AttnPlan describes, for one batch, where each token's sequence keeps its
// keys and values: token i is at position Pos[i] of a sequence whose
// block table is Tables[i], and attends to positions 0..Pos[i] of it.
type AttnPlan struct {
	N         int       // tokens in the batch
	Pos       []int32   // (token) position in its sequence
	Slots     []int32   // (token) cache slot where its K and V are stored
	Tables    [][]int32 // (token) block table of its sequence
	BlockSize int       // tokens per KV block
	Heads     int       // query heads
	KVHeads   int       // key/value heads (grouped-query attention)
	HeadDim   int
	Scale     float32 // score scale, 1/sqrt(HeadDim)
}

// Backend runs the operations of a forward pass.
type Backend interface {
	Name() string
	Close() error
	// Err reports the first failure of an earlier operation. Operations
	// cannot return errors themselves (a GPU backend only records them and
	// runs them later), so a failure is sticky: later operations do
	// nothing and Read returns NaNs until the backend is closed. The CPU
	// backend never fails this way.
	Err() error

	// Loading.
	LoadWeight(name string, t tensor.DType, rows, cols int, data []byte) (Weight, error)
	LoadVector(name string, v []float32) (Vector, error)
	NewBuffer(rows, cols int) Buffer
	NewKV(dt tensor.DType, layers, kvDim, blockSize, numBlocks int) (KV, error)

	// Embed writes row ids[i] of table into dst row i.
	Embed(dst Buffer, table Weight, ids []int32)
	// RMSNorm: dst[i] = x[i] / rms(x[i]) * w.
	RMSNorm(dst, x Buffer, w Vector, eps float32, n int)
	// RMSNormHeads normalises each head (w.Len() columns) of each row in place.
	RMSNormHeads(x Buffer, w Vector, eps float32, n int)
	// Linear computes every projection of the same input x.
	Linear(x Buffer, n int, outs ...Projection)
	// RoPE rotates each head (r.Dims columns) of row i by position pos[i],
	// pairing dimensions as r.Style says.
	RoPE(x Buffer, n int, pos []int32, r *Rope)
	// StoreKV writes k and v rows into the cache at plan.Slots.
	StoreKV(kv KV, layer int, k, v Buffer, plan *AttnPlan)
	// Attention computes causal grouped-query attention for every token
	// of the plan over its sequence's cached positions.
	Attention(dst, q Buffer, kv KV, layer int, plan *AttnPlan)
	// SwiGLU: dst = silu(gate) * up.
	SwiGLU(dst, gate, up Buffer, n int)
	// Add: dst += x.
	Add(dst, x Buffer, n int)
	// AddBias adds b to each of the first n rows of x: x[i] += b
	// (Qwen2's q, k and v biases).
	AddBias(x Buffer, b Vector, n int)
	// Gather copies x rows[i] into dst row i.
	Gather(dst, x Buffer, rows []int32)
	// Scatter copies x row i into dst row rows[i]: Gather's inverse (a
	// mixture of experts puts each expert's output rows back in place).
	Scatter(dst, x Buffer, rows []int32)
	// WeightedSum mixes groups of k rows: for each i < n,
	//
	//	dst[i] = w[i·k]·x[i·k] + w[i·k+1]·x[i·k+1] + … + w[i·k+k-1]·x[i·k+k-1]
	//
	// each product rounded to float32, then added left to right (as
	// llama.cpp's ggml_mul then ggml_add of the expert outputs), so a row's
	// result depends only on its own k rows and weights. x's rows may be
	// overwritten (the CPU scales them in place).
	WeightedSum(dst, x Buffer, w []float32, k, n int)
	// Read copies the first n rows of x into dst (row-major).
	Read(dst []float32, x Buffer, n int)
	// Write copies n rows from src (row-major) into x. With Read it moves
	// activations between backends when a model is split across devices.
	Write(x Buffer, src []float32, n int)
}
