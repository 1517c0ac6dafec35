// kernels.cu: the CUDA kernels of gollm's GPU backend.
//
// This file is compiled to PTX (a virtual instruction set that the driver
// compiles for the actual GPU when the module is loaded) by `go generate`
// in this directory, which runs
//
//     nvcc -ptx -arch=compute_80 -fmad=false -o kernels_sm80.ptx kernels.cu
//
// and the PTX is committed, so neither CI nor users need the CUDA toolkit.
// compute_80 (Ampere) is the oldest architecture the kernels target; newer
// drivers JIT-compile the PTX for Hopper and later.
//
// # Numerics: the same float operations as the CPU backend
//
// The CPU backend (backend/cpu on package kernels) defines every result:
// activations are rounded to 8 bits (Q8_K for the K-quants, Q8_0 for Q8_0
// weights) exactly as llama.cpp's x86 build does, each weight block is
// multiplied with its activation block in integers, and the integer sums
// are scaled and added in float32 in one fixed order (see kernels/doc.go,
// "Numerics"). These kernels reproduce that:
//
//   - The activation quantizers below make the same bytes as
//     kernels.QuantizeRow (same divisions, same round-half-to-even).
//   - Integer sums are exact, so it does not matter in which order the
//     threads form them: a warp may split a block over 8 lanes and add
//     their partial sums with shuffles, a tiled kernel may add them in
//     another order, and the integer is the same.
//   - The float part, acc = acc + (d_act*d_w)*float(isum) per block, runs
//     block after block in order for every (weight row, token) pair, as in
//     the CPU reference.
//   - Float dot products (F16/F32 weights, attention) keep the CPU's 32
//     lanes: element i goes to lane i mod 32, which is exactly a warp's
//     lane, and the CPU folds the lanes pairwise (l += l+16, +8, +4, +2,
//     +1), which is exactly a __shfl_down_sync reduction.
//   - -fmad=false stops nvcc from fusing a*b+c into one FMA instruction
//     (which rounds once instead of twice): the CPU reference rounds the
//     product first. The PTX then holds mul.rn/add.rn, which the JIT
//     may not fuse either.
//   - Where the CPU sums in float64 (RMSNorm, softmax) it uses 16 lanes
//     folded pairwise; the GPU uses 16 threads and the same fold. e^x is
//     the CPU's own Cephes polynomial (kernels.Exp), ported operation for
//     operation.
//
// So every operation on the GPU is meant to give the CPU backend's result
// bit for bit, and a forward pass the CPU's logits. That makes the GPU
// batch-invariant too: a (row, token) result never depends on the other
// tokens of the batch.
//
// # Memory layouts
//
// Activations are float32 row-major (token, cols). Weights are uploaded in
// their file formats, with two padded so that every block starts on a
// 4-byte boundary and 32-bit loads are aligned (layout.go does the
// repacking on the host):
//
//     q6_K  212 bytes: ql[128] qh[64] scales[16] d(half) pad[2]   (file: 210)
//     q4_K  144 bytes: d dmin scales[12] qs[128]                   (as in the file)
//     q5_K  176 bytes: d dmin scales[12] qh[32] qs[128]            (as in the file)
//     q8_0   36 bytes: d pad[2] qs[32]                             (file: 34)
//     f16, f32: rows of values, as in the file.
//
// Quantized activations (the output of quantize_q8k / quantize_q8_0) are
// kept as three arrays instead of ggml's interleaved blocks, so that the
// products can load 32-bit words of values:
//
//     qs   int8  (token, cols)        the 8-bit values
//     d    float (token, cols/QK)     the scale of each block (QK = 256 or 32)
//     bsum int32 (token, cols/16)     sums of 16 values (Q8_K only)

#include <cuda_fp16.h>
#include <stdint.h>

typedef unsigned char u8;
typedef signed char i8;

#define FULL_MASK 0xffffffffu

// ggml type numbers (tensor.DType).
#define T_F32 0
#define T_F16 1
#define T_Q8_0 8
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14

// Device block sizes in bytes (see the layout table above).
#define Q6K_BYTES 212
#define Q4K_BYTES 144
#define Q5K_BYTES 176
#define Q80_BYTES 36

// Geometry shared with the Go side (geometry.go must agree).
#define MMV_WARPS 4     // weight rows per block of the matrix-vector kernel (a warp each)
#define MMV_TOKENS 8    // tokens one warp carries at once
#define MMV_BLOCK_TOKENS 64  // tokens per block of the matrix-vector kernel (grid.y tiles the rest)
#define MMQ_ROWS 64     // weight rows per block of the tiled kernel
#define MMQ_TOKENS 64   // tokens per block of the tiled kernel
#define MMQ_THREADS 256
#define MMQ_LD 65       // padded shared-memory row length in 32-bit words (64 + 1: no bank conflicts)
#define ATT_CHUNK 64    // KV positions whose scores are held in shared memory at once
#define ATT_MAXG 8      // query heads per attention block at most
#define ELEM_THREADS 256

// ---------------------------------------------------------------------------
// Small helpers

__device__ __forceinline__ float half_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t float_to_half(float f) { return __half_as_ushort(__float2half_rn(f)); }
__device__ __forceinline__ int ld32(const u8* p) { return *(const int*)p; }
__device__ __forceinline__ uint16_t ld16(const u8* p) { return *(const uint16_t*)p; }

// exp_cephes is e^x exactly as kernels.Exp computes it on the CPU (Cephes'
// expf, every operation rounded to float32, no fused multiply-add):
//
//     n = round_half_even(x·log2(e))
//     r = (x - n·C1) - n·C2                 (C1 + C2 = ln 2)
//     p = ((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5
//     e^x = 2^n · ((p·r² + r) + 1)           (2^n applied exactly, one rounding)
//
// x is clamped to [-104, 89]; NaN stays NaN. The constants are written as
// hexadecimal floats, bit for bit those of package kernels.
__device__ float exp_cephes(float x) {
    if (x != x) return x;
    if (x < -104.0f) {
        x = -104.0f;
    } else if (x > 89.0f) {
        x = 89.0f;
    }
    const float n = rintf(x * 0x1.715476p+0f);  // log2(e)
    float r = x - n * 0x1.63p-1f;               // C1
    r = r - n * -0x1.bd0106p-13f;               // C2
    const float z = r * r;
    float p = 0x1.a0d2cep-13f * r + 0x1.6e879cp-10f;  // P0, P1
    p = p * r + 0x1.11121p-7f;                         // P2
    p = p * r + 0x1.555382p-5f;                        // P3
    p = p * r + 0x1.555554p-3f;                        // P4
    p = p * r + 0x1p-1f;                               // P5
    const float y = p * z + r + 1.0f;
    return (float)ldexp((double)y, (int)n);
}

// sum_squares16 is the CPU's float64 sum of float32 squares (kernels'
// RMSNorm): 16 lanes, lane l adding x[l], x[l+16], ... in order; the lanes
// folded pairwise (l += l+8, +4, +2, +1); then the elements past the last
// multiple of 16 added one by one. Lanes 0-15 of the calling warp hold the
// 16 sums. Every lane of the warp must call it; all get the result.
__device__ double sum_squares16(const float* x, int n) {
    const int lane = threadIdx.x & 31;
    const int full = n / 16 * 16;
    double s = 0.0;
    if (lane < 16) {
#pragma unroll 8
        for (int i = lane; i < full; i += 16) {
            const float v = x[i];
            s += (double)(v * v);
        }
    }
    s = s + __shfl_down_sync(FULL_MASK, s, 8);
    s = s + __shfl_down_sync(FULL_MASK, s, 4);
    s = s + __shfl_down_sync(FULL_MASK, s, 2);
    s = s + __shfl_down_sync(FULL_MASK, s, 1);
    if (lane == 0) {
        for (int i = full; i < n; i++) {
            const float v = x[i];
            s += (double)(v * v);
        }
    }
    return __shfl_sync(FULL_MASK, s, 0);
}

// rms_scale is kernels' rmsScale: 1/sqrtf(mean + eps) with the mean
// rounded to float32.
__device__ __forceinline__ float rms_scale(double sum, int n, float eps) {
    const float mean = (float)(sum / (double)n);
    return 1.0f / (float)sqrt((double)(mean + eps));
}

// The 6-bit scale and minimum of group j (0..7) of a Q4_K/Q5_K block
// (ggml's get_scale_min_k4); s points at the 12 packed bytes.
__device__ __forceinline__ void scale_min_k4(int j, const u8* s, int* sc, int* m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// ---------------------------------------------------------------------------
// Weight formats as seen by a product kernel.
//
// The products work on "steps" of 256 values of a weight row (one K-quant
// super-block, or eight Q8_0 blocks). A step is split over 8 lanes; lane c
// extracts 8 32-bit words, each holding 4 consecutive values as signed
// bytes ready for __dp4a, and says for each word its index in the step
// (word w holds values 4w..4w+3) and the integer scale that multiplies its
// dot product. The eight lanes together cover the 64 words of the step
// exactly once. Which words a lane takes is chosen so that its loads are
// few and aligned.
//
// A step has UNITS float units: the runs of values whose integer sum is
// scaled by one float and added to the accumulator (1 for K-quants, whose
// super-block has one d; 8 for Q8_0, one per 32-value block). Types with
// MINS also subtract d_min*m*sum(activations) per 32-value group (Q4_K and
// Q5_K), accumulated separately as ggml does.

struct Q6K {
    static const int STEP_BYTES = Q6K_BYTES;
    static const int UNITS = 1;
    static const bool MINS = false;
    // Lane c: half h = c/4 of the super-block, byte offset l0 = 8*(c%4):
    // the values 128h + 32k + l for k = 0..3 and l in [l0, l0+8). Their
    // low 4 bits are in ql[64h + 32(k&1) + l] (low nibble for k < 2, high
    // nibble otherwise), their top 2 bits in bits 2k, 2k+1 of qh[32h + l].
    __device__ static void unpack(const u8* b, int c, int w[8], int widx[8], int sc[8]) {
        const int h = c >> 2, l0 = (c & 3) * 8;
        const u8* ql = b + 64 * h + l0;
        const u8* qh = b + 128 + 32 * h + l0;
        const i8* scales = (const i8*)(b + 192);
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int A = ld32(ql + 4 * half);       // ql[l..l+3]: k = 0 (low), k = 2 (high)
            const int B = ld32(ql + 32 + 4 * half);  // ql[l+32..]: k = 1 (low), k = 3 (high)
            const int H = ld32(qh + 4 * half);
            const int l = l0 + 4 * half;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const int lo = (((k & 1) ? B : A) >> (4 * (k >> 1))) & 0x0F0F0F0F;
                const int hi = ((H >> (2 * k)) & 0x03030303) << 4;
                const int i = 2 * k + half;
                w[i] = __vsub4(lo | hi, 0x20202020);  // q - 32, per byte: -32..31
                widx[i] = 32 * h + 8 * k + l / 4;
                sc[i] = scales[8 * h + 2 * k + l0 / 16];
            }
        }
    }
    __device__ static float d(const u8* b, int u) { return half_to_float(ld16(b + 208)); }
    __device__ static float dmin(const u8* b, int u) { return 0.0f; }
    __device__ static int min16(const u8* b, int g) { return 0; }
    __device__ static int lane_msum(const u8* b, int c, const int* bsum) { return 0; }
};

struct Q4K {
    static const int STEP_BYTES = Q4K_BYTES;
    static const int UNITS = 1;
    static const bool MINS = true;
    // Lane c: pair of groups j = c/2 (values 64j..64j+63), bytes
    // l0 = 16*(c%2) .. l0+15 of qs[32j..]: their low nibbles are values
    // 64j + l (group 2j), their high nibbles values 64j + 32 + l (group 2j+1).
    __device__ static void unpack(const u8* b, int c, int w[8], int widx[8], int sc[8]) {
        const int j = c >> 1, l0 = (c & 1) * 16;
        const u8* qs = b + 16 + 32 * j + l0;
        int sc0, m0, sc1, m1;
        scale_min_k4(2 * j, b + 4, &sc0, &m0);
        scale_min_k4(2 * j + 1, b + 4, &sc1, &m1);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int Q = ld32(qs + 4 * i);
            w[i] = Q & 0x0F0F0F0F;
            widx[i] = 16 * j + l0 / 4 + i;
            sc[i] = sc0;
            w[4 + i] = (Q >> 4) & 0x0F0F0F0F;
            widx[4 + i] = 16 * j + 8 + l0 / 4 + i;
            sc[4 + i] = sc1;
        }
    }
    __device__ static float d(const u8* b, int u) { return half_to_float(ld16(b)); }
    __device__ static float dmin(const u8* b, int u) { return half_to_float(ld16(b + 2)); }
    __device__ static int min16(const u8* b, int g) {
        int sc, m;
        scale_min_k4(g >> 1, b + 4, &sc, &m);
        return m;
    }
    // m*(sum of the activations) over the lane's two 16-value runs.
    __device__ static int lane_msum(const u8* b, int c, const int* bsum) {
        const int j = c >> 1, l0 = (c & 1) * 16;
        int sc0, m0, sc1, m1;
        scale_min_k4(2 * j, b + 4, &sc0, &m0);
        scale_min_k4(2 * j + 1, b + 4, &sc1, &m1);
        return m0 * bsum[4 * j + l0 / 16] + m1 * bsum[4 * j + 2 + l0 / 16];
    }
};

struct Q5K {
    static const int STEP_BYTES = Q5K_BYTES;
    static const int UNITS = 1;
    static const bool MINS = true;
    // As Q4K, with the fifth bit of value 64j + l in bit 2j of qh[l] and
    // that of value 64j + 32 + l in bit 2j+1.
    __device__ static void unpack(const u8* b, int c, int w[8], int widx[8], int sc[8]) {
        const int j = c >> 1, l0 = (c & 1) * 16;
        const u8* qh = b + 16 + l0;
        const u8* qs = b + 48 + 32 * j + l0;
        int sc0, m0, sc1, m1;
        scale_min_k4(2 * j, b + 4, &sc0, &m0);
        scale_min_k4(2 * j + 1, b + 4, &sc1, &m1);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int Q = ld32(qs + 4 * i);
            const int H = ld32(qh + 4 * i);
            w[i] = (Q & 0x0F0F0F0F) | (((H >> (2 * j)) & 0x01010101) << 4);
            widx[i] = 16 * j + l0 / 4 + i;
            sc[i] = sc0;
            w[4 + i] = ((Q >> 4) & 0x0F0F0F0F) | (((H >> (2 * j + 1)) & 0x01010101) << 4);
            widx[4 + i] = 16 * j + 8 + l0 / 4 + i;
            sc[4 + i] = sc1;
        }
    }
    __device__ static float d(const u8* b, int u) { return half_to_float(ld16(b)); }
    __device__ static float dmin(const u8* b, int u) { return half_to_float(ld16(b + 2)); }
    __device__ static int min16(const u8* b, int g) { return Q4K::min16(b, g); }
    __device__ static int lane_msum(const u8* b, int c, const int* bsum) { return Q4K::lane_msum(b, c, bsum); }
};

struct Q80 {
    static const int STEP_BYTES = 8 * Q80_BYTES;
    static const int UNITS = 8;
    static const bool MINS = false;
    // Lane c takes block c of the step: 32 values, d at byte 0, qs at 4.
    __device__ static void unpack(const u8* b, int c, int w[8], int widx[8], int sc[8]) {
        const u8* blk = b + c * Q80_BYTES;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            w[i] = ld32(blk + 4 + 4 * i);
            widx[i] = 8 * c + i;
            sc[i] = 1;
        }
    }
    __device__ static float d(const u8* b, int u) { return half_to_float(ld16(b + u * Q80_BYTES)); }
    __device__ static float dmin(const u8* b, int u) { return 0.0f; }
    __device__ static int min16(const u8* b, int g) { return 0; }
    __device__ static int lane_msum(const u8* b, int c, const int* bsum) { return 0; }
};

// ---------------------------------------------------------------------------
// Matrix-vector product for up to 64 tokens (mmv): one warp per weight row.
//
//   dst[t*dstStride + r] = W[r] · x[t]   for the block's rows r and tokens t
//
// Grid: (ceil(rows/MMV_WARPS), ceil(n/MMV_BLOCK_TOKENS)); block:
// 32*MMV_WARPS. A warp takes the tokens of its block MMV_TOKENS at a time
// (its accumulators live in registers); for each such tile it walks its
// row four steps (4 × 256 values) at a time: lanes 8s..8s+7 take step s
// of the four. A lane unpacks its 8 words once per tile and uses them for
// every token of the tile; later tiles read the row again, from the L1
// cache, so the weights come from memory once per 64 tokens. For each
// token the 8 lanes of a step add their integer sums with shuffles
// (exact), then the four steps' float terms are added to the accumulator
// in step order. Q8_0 has eight float units per step (one per lane), so
// its 32 lanes' terms are added in lane order, which is block order.
//
// aq, ad, bsum are the quantized activations (see the file comment); act
// rows are cols values long.

// mmv_tile computes tokens t0 .. t0+nt-1 (nt <= MMV_TOKENS) of one row.
template <class T>
__device__ void mmv_tile(float* dst, int dstStride, const u8* wrow, const i8* aq, const float* ad,
                         const int* bsum, int row, int cols, int t0, int nt) {
    const int lane = threadIdx.x & 31;
    const int units = (T::UNITS == 1) ? cols / 256 : cols / 32;  // float units in the row
    const int steps = (cols + 255) / 256;
    const int c = lane & 7, sub = lane >> 3;
    float acc[MMV_TOKENS], accm[MMV_TOKENS];
#pragma unroll
    for (int t = 0; t < MMV_TOKENS; t++) acc[t] = accm[t] = 0.0f;

    for (int s0 = 0; s0 < steps; s0 += 4) {
        const int s = s0 + sub;
        // The float unit of this lane (Q8_0) or of its step (K-quants).
        const int unit = (T::UNITS == 1) ? s : s * 8 + c;
        const bool valid = unit < units;
        int w[8], widx[8], sc[8];
        float dw = 0.0f, dm = 0.0f;
        const u8* blk = wrow + (size_t)s * T::STEP_BYTES;
        if (valid) {
            T::unpack(blk, c, w, widx, sc);
            dw = T::d(blk, c);
            dm = T::dmin(blk, c);
        }
#pragma unroll
        for (int t = 0; t < MMV_TOKENS; t++) {
            if (t < nt) {  // the same for every lane of the warp
                const size_t tok = (size_t)(t0 + t);
                int isum = 0, msum = 0;
                float da = 0.0f;
                if (valid) {
                    const u8* a = (const u8*)(aq + tok * cols + (size_t)s * 256);
#pragma unroll
                    for (int i = 0; i < 8; i++) isum += sc[i] * __dp4a(w[i], ld32(a + 4 * widx[i]), 0);
                    if (T::MINS) msum = T::lane_msum(blk, c, bsum + tok * (cols / 16) + (size_t)s * 16);
                    da = ad[tok * units + unit];
                }
                if (T::UNITS == 1) {
                    // The step's integer sums: lanes 8s..8s+7 (exact, any order).
                    isum += __shfl_xor_sync(FULL_MASK, isum, 1);
                    isum += __shfl_xor_sync(FULL_MASK, isum, 2);
                    isum += __shfl_xor_sync(FULL_MASK, isum, 4);
                    if (T::MINS) {
                        msum += __shfl_xor_sync(FULL_MASK, msum, 1);
                        msum += __shfl_xor_sync(FULL_MASK, msum, 2);
                        msum += __shfl_xor_sync(FULL_MASK, msum, 4);
                    }
                }
                // The CPU: d := d_act * d_w; acc += float32(d * float32(isum)).
                const float term = (da * dw) * (float)isum;
                const float termm = (da * dm) * (float)msum;
                if (T::UNITS == 1) {
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        const float tk = __shfl_sync(FULL_MASK, term, 8 * k);
                        const float tmk = __shfl_sync(FULL_MASK, termm, 8 * k);
                        if (s0 + k < units) {
                            acc[t] = acc[t] + tk;
                            if (T::MINS) accm[t] = accm[t] + tmk;
                        }
                    }
                } else {
                    for (int k = 0; k < 32; k++) {
                        const float tk = __shfl_sync(FULL_MASK, term, k);
                        if (s0 * 8 + k < units) acc[t] = acc[t] + tk;
                    }
                }
            }
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int t = 0; t < MMV_TOKENS; t++)
            if (t < nt) dst[(size_t)(t0 + t) * dstStride + row] = T::MINS ? acc[t] - accm[t] : acc[t];
    }
}


template <class T>
__device__ void mmv_quant(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad,
                          const int* bsum, int rows, int cols, int n) {
    const int row = blockIdx.x * MMV_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;  // the whole warp leaves together
    const int units = (T::UNITS == 1) ? cols / 256 : cols / 32;
    // Row length in bytes: a Q8_0 row may end with a partial step.
    const u8* wrow = W + (size_t)row * units * (T::STEP_BYTES / T::UNITS);
    const int tEnd = min(n, (int)(blockIdx.y + 1) * MMV_BLOCK_TOKENS);
    for (int t0 = blockIdx.y * MMV_BLOCK_TOKENS; t0 < tEnd; t0 += MMV_TOKENS)
        mmv_tile<T>(dst, dstStride, wrow, aq, ad, bsum, row, cols, t0, min(MMV_TOKENS, tEnd - t0));
}

extern "C" __global__ void mmv_q6_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmv_quant<Q6K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void mmv_q4_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmv_quant<Q4K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void mmv_q5_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmv_quant<Q5K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void mmv_q8_0(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmv_quant<Q80>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}

// ---------------------------------------------------------------------------
// Tiled matrix product for many tokens (mmq): a block computes a tile of
// MMQ_ROWS weight rows × MMQ_TOKENS tokens. For each step of 256 values
// it unpacks the rows' weights into shared memory as signed bytes (using
// the same unpack functions as mmv) and copies the tokens' activation
// bytes there too; then each thread forms the integer sums of its 4 rows
// × 4 tokens with __dp4a and adds the step's float terms to its
// accumulators, step after step, exactly as mmv and the CPU do. Each weight
// byte is read from memory once per 64 tokens.
//
// Grid: (ceil(rows/MMQ_ROWS), ceil(n/MMQ_TOKENS)); block: MMQ_THREADS,
// at most 128 registers each so that two blocks fit on a multiprocessor.
// Needs cols to be a multiple of 256 (the Go side uses mmv otherwise).

template <class T>
__device__ void mmq_quant(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad,
                          const int* bsum, int rows, int cols, int n) {
    __shared__ int wv[MMQ_ROWS][MMQ_LD];      // (row, word) weight values
    __shared__ int av[MMQ_TOKENS][MMQ_LD];    // (token, word) activation values
    __shared__ i8 wsc[MMQ_ROWS][16];          // (row, 16-value group) scale
    __shared__ i8 wm[MMQ_ROWS][16];           // (row, 16-value group) minimum (MINS types)
    __shared__ float wd[MMQ_ROWS][T::UNITS];  // (row, unit) d
    __shared__ float wdm[MMQ_ROWS];           // (row) d_min
    __shared__ float adv[MMQ_TOKENS][T::UNITS];
    __shared__ int abv[MMQ_TOKENS][16];       // (token, group) activation sums

    const int r0 = blockIdx.x * MMQ_ROWS, t0 = blockIdx.y * MMQ_TOKENS;
    const int steps = cols / 256;
    const int units = steps * T::UNITS;
    const int tid = threadIdx.x;
    const int tr = tid & 15, tt = tid >> 4;  // rows tr + 16i, tokens tt + 16j
    float acc[4][4], accm[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = accm[i][j] = 0.0f;

    for (int s = 0; s < steps; s++) {
        // Weights: MMQ_ROWS rows × 8 lanes' words.
        for (int task = tid; task < MMQ_ROWS * 8; task += MMQ_THREADS) {
            const int r = task >> 3, c = task & 7, row = r0 + r;
            if (row < rows) {
                const u8* blk = W + ((size_t)row * steps + s) * T::STEP_BYTES;
                int w[8], widx[8], sc[8];
                T::unpack(blk, c, w, widx, sc);
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    wv[r][widx[i]] = w[i];
                    wsc[r][widx[i] >> 2] = (i8)sc[i];
                }
                if (T::UNITS > 1) wd[r][c % T::UNITS] = T::d(blk, c % T::UNITS);
                if (c == 0) {
                    if (T::UNITS == 1) wd[r][0] = T::d(blk, 0);
                    wdm[r] = T::dmin(blk, 0);
#pragma unroll
                    for (int g = 0; g < 16; g++) wm[r][g] = (i8)T::min16(blk, g);
                }
            } else {
#pragma unroll
                for (int i = 0; i < 8; i++) wv[r][8 * c + i] = 0;
                wsc[r][2 * c] = wsc[r][2 * c + 1] = 0;
                wm[r][2 * c] = wm[r][2 * c + 1] = 0;
                if (T::UNITS > 1) wd[r][c % T::UNITS] = 0.0f;
                if (c == 0) {
                    wd[r][0] = 0.0f;
                    wdm[r] = 0.0f;
                }
            }
        }
        // Activations: MMQ_TOKENS tokens × 64 words, their scales and sums.
        for (int task = tid; task < MMQ_TOKENS * 64; task += MMQ_THREADS) {
            const int t = task >> 6, wi = task & 63, tok = t0 + t;
            av[t][wi] = tok < n ? ld32((const u8*)(aq + (size_t)tok * cols + (size_t)s * 256) + 4 * wi) : 0;
        }
        for (int task = tid; task < MMQ_TOKENS * 16; task += MMQ_THREADS) {
            const int t = task >> 4, g = task & 15, tok = t0 + t;
            abv[t][g] = (T::MINS && tok < n) ? bsum[(size_t)tok * (cols / 16) + (size_t)s * 16 + g] : 0;
        }
        for (int task = tid; task < MMQ_TOKENS * T::UNITS; task += MMQ_THREADS) {
            const int t = task / T::UNITS, u = task % T::UNITS, tok = t0 + t;
            adv[t][u] = tok < n ? ad[(size_t)tok * units + (size_t)s * T::UNITS + u] : 0.0f;
        }
        __syncthreads();

#pragma unroll
        for (int u = 0; u < T::UNITS; u++) {
            int isum[4][4], msum[4][4];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) isum[i][j] = msum[i][j] = 0;
            // The unit's 16-value groups: all 16 (K-quants) or 2 (Q8_0).
#pragma unroll
            for (int g = u * (16 / T::UNITS); g < (u + 1) * (16 / T::UNITS); g++) {
                int dots[4][4];
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++) dots[i][j] = 0;
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    int wr[4], at[4];
#pragma unroll
                    for (int i = 0; i < 4; i++) wr[i] = wv[tr + 16 * i][4 * g + k];
#pragma unroll
                    for (int j = 0; j < 4; j++) at[j] = av[tt + 16 * j][4 * g + k];
#pragma unroll
                    for (int i = 0; i < 4; i++)
#pragma unroll
                        for (int j = 0; j < 4; j++) dots[i][j] = __dp4a(wr[i], at[j], dots[i][j]);
                }
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int sc = wsc[tr + 16 * i][g];
                    const int m = wm[tr + 16 * i][g];
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        isum[i][j] += sc * dots[i][j];
                        if (T::MINS) msum[i][j] += m * abv[tt + 16 * j][g];
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    const float da = adv[tt + 16 * j][u];
                    acc[i][j] = acc[i][j] + (da * wd[tr + 16 * i][u]) * (float)isum[i][j];
                    if (T::MINS) accm[i][j] = accm[i][j] + (da * wdm[tr + 16 * i]) * (float)msum[i][j];
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int row = r0 + tr + 16 * i, tok = t0 + tt + 16 * j;
            if (row < rows && tok < n) dst[(size_t)tok * dstStride + row] = T::MINS ? acc[i][j] - accm[i][j] : acc[i][j];
        }
}

extern "C" __global__ void __launch_bounds__(MMQ_THREADS, 2) mmq_q6_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmq_quant<Q6K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void __launch_bounds__(MMQ_THREADS, 2) mmq_q4_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmq_quant<Q4K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void __launch_bounds__(MMQ_THREADS, 2) mmq_q5_k(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmq_quant<Q5K>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}
extern "C" __global__ void __launch_bounds__(MMQ_THREADS, 2) mmq_q8_0(float* dst, int dstStride, const u8* W, const i8* aq, const float* ad, const int* bsum, int rows, int cols, int n) {
    mmq_quant<Q80>(dst, dstStride, W, aq, ad, bsum, rows, cols, n);
}

// ---------------------------------------------------------------------------
// Float weights (F16 with F16-rounded activations, F32 with F32 ones): one
// warp per weight row, lane l accumulating elements l, l+32, ... in order
// (the CPU's 32 lanes), then the pairwise fold, then the tail past the
// last multiple of 32 added one by one, as dotF16F16Ref / dotF32Ref do.
// Grid and block as mmv (a block takes MMV_BLOCK_TOKENS tokens). x is the
// float activation (token, cols).

template <bool F16>
__device__ void mmv_float(float* dst, int dstStride, const u8* W, const float* x, int rows, int cols, int n) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * MMV_WARPS + (threadIdx.x >> 5);
    const int t0 = blockIdx.y * MMV_BLOCK_TOKENS;
    if (row >= rows) return;
    const int nt = min(MMV_BLOCK_TOKENS, n - t0);
    const int full = cols / 32 * 32;
    const uint16_t* wh = (const uint16_t*)W + (size_t)row * cols;
    const float* wf = (const float*)W + (size_t)row * cols;
    for (int t = 0; t < nt; t++) {
        const float* xr = x + (size_t)(t0 + t) * cols;
        float s = 0.0f;
        for (int e = lane; e < full; e += 32) {
            if (F16) {
                s = s + half_to_float(wh[e]) * half_to_float(float_to_half(xr[e]));
            } else {
                s = s + wf[e] * xr[e];
            }
        }
        s = s + __shfl_down_sync(FULL_MASK, s, 16);
        s = s + __shfl_down_sync(FULL_MASK, s, 8);
        s = s + __shfl_down_sync(FULL_MASK, s, 4);
        s = s + __shfl_down_sync(FULL_MASK, s, 2);
        s = s + __shfl_down_sync(FULL_MASK, s, 1);
        if (lane == 0) {
            for (int e = full; e < cols; e++) {
                if (F16) {
                    s = s + half_to_float(wh[e]) * half_to_float(float_to_half(xr[e]));
                } else {
                    s = s + wf[e] * xr[e];
                }
            }
            dst[(size_t)(t0 + t) * dstStride + row] = s;
        }
    }
}

extern "C" __global__ void mmv_f16(float* dst, int dstStride, const u8* W, const float* x, int rows, int cols, int n) {
    mmv_float<true>(dst, dstStride, W, x, rows, cols, n);
}
extern "C" __global__ void mmv_f32(float* dst, int dstStride, const u8* W, const float* x, int rows, int cols, int n) {
    mmv_float<false>(dst, dstStride, W, x, rows, cols, n);
}

// ---------------------------------------------------------------------------
// Activation quantizers (kernels.QuantizeRow's Q8_K and Q8_0, byte for byte).

// quantize_q8k: one warp per 256-value block; lane l holds values 8l..8l+7.
// Grid: ceil(n*cols/256 / 4) blocks of 128 threads.
//
//   max    = the value with the largest |x|, the first one on ties
//   iscale = -127 / max;  q = min(127, round_half_even(iscale*x));  d = 1/iscale
//   bsum[g] = sum of q over values 16g..16g+15
extern "C" __global__ void quantize_q8k(i8* qs, float* d, int* bsum, const float* x, int n, int cols) {
    const int lane = threadIdx.x & 31;
    const long blk = (long)blockIdx.x * 4 + (threadIdx.x >> 5);
    const int perRow = cols / 256;
    if (blk >= (long)n * perRow) return;
    const float* xb = x + blk * 256;  // rows are contiguous: block blk of the (n, cols) matrix
    float v[8];
    float amax = 0.0f;
    int idx = 256;  // index of the first value with |x| = amax (256: none yet)
#pragma unroll
    for (int k = 0; k < 8; k++) {
        v[k] = xb[8 * lane + k];
        const float a = fabsf(v[k]);
        if (a > amax) {  // false for NaN, as on the CPU
            amax = a;
            idx = 8 * lane + k;
        }
    }
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) {
        const float oa = __shfl_xor_sync(FULL_MASK, amax, off);
        const int oi = __shfl_xor_sync(FULL_MASK, idx, off);
        if (oa > amax || (oa == amax && oi < idx)) {
            amax = oa;
            idx = oi;
        }
    }
    i8* q = qs + blk * 256;
    int s = 0;
    if (amax == 0.0f) {
#pragma unroll
        for (int k = 0; k < 8; k++) q[8 * lane + k] = 0;
        if (lane == 0) d[blk] = 0.0f;
    } else {
        const float maxv = xb[idx];
        const float iscale = -127.0f / maxv;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int qi = min(127, __float2int_rn(iscale * v[k]));
            q[8 * lane + k] = (i8)qi;
            s += qi;
        }
        if (lane == 0) d[blk] = 1.0f / iscale;
    }
    s += __shfl_xor_sync(FULL_MASK, s, 1);  // lanes 2g, 2g+1 hold group g
    if ((lane & 1) == 0) bsum[blk * 16 + lane / 2] = s;
}

// quantize_q8_0: one warp per 32-value block, a value per lane.
//
//   amax = max |x|;  d = half(amax/127);  id = 127/amax (0 if amax = 0);  q = round_half_even(x*id)
//
// d is stored widened back to float.
extern "C" __global__ void quantize_q8_0(i8* qs, float* d, const float* x, int n, int cols) {
    const int lane = threadIdx.x & 31;
    const long blk = (long)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (blk >= (long)n * (cols / 32)) return;
    const float v = x[blk * 32 + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(FULL_MASK, amax, off));
    const float dd = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    qs[blk * 32 + lane] = (i8)__float2int_rn(v * id);
    if (lane == 0) d[blk] = half_to_float(float_to_half(dd));
}

// ---------------------------------------------------------------------------
// Embedding rows: dst[i] = dequantize(W[ids[i]]), like tensor.DequantizeRow
// (same float operations). One thread per output value.
// Grid: ceil(n*cols / ELEM_THREADS) blocks of ELEM_THREADS.

__device__ float dequant(int type, const u8* row, int v) {
    switch (type) {
    case T_F32:
        return ((const float*)row)[v];
    case T_F16:
        return half_to_float(((const uint16_t*)row)[v]);
    case T_Q8_0: {
        const u8* b = row + (v / 32) * Q80_BYTES;
        return (float)((const i8*)(b + 4))[v % 32] * half_to_float(ld16(b));
    }
    case T_Q6_K: {
        const u8* b = row + (v / 256) * Q6K_BYTES;
        const int r = v % 256, h = r / 128, k = (r % 128) / 32, l = r % 32;
        const int lo = (b[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF;
        const int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
        const int q = (lo | (hi << 4)) - 32;
        const float d = half_to_float(ld16(b + 208));
        const float sc = (float)((const i8*)(b + 192))[8 * h + 2 * k + l / 16];
        return d * sc * (float)q;  // (d*sc)*q, as ggml
    }
    case T_Q4_K:
    case T_Q5_K: {
        const int bytes = type == T_Q4_K ? Q4K_BYTES : Q5K_BYTES;
        const u8* b = row + (v / 256) * bytes;
        const int r = v % 256, j = r / 64, s = (r % 64) / 32, l = r % 32;
        const u8* qs = b + (type == T_Q4_K ? 16 : 48);
        int q = (qs[32 * j + l] >> (4 * s)) & 0xF;
        if (type == T_Q5_K && ((b[16 + l] >> (2 * j + s)) & 1)) q += 16;
        int sc, m;
        scale_min_k4(2 * j + s, b + 4, &sc, &m);
        const float d1 = half_to_float(ld16(b)) * (float)sc;
        const float m1 = half_to_float(ld16(b + 2)) * (float)m;
        return d1 * (float)q - m1;
    }
    }
    return __int_as_float(0x7fc00000);  // unreachable: the type is checked at load
}

extern "C" __global__ void embed(float* dst, const u8* W, const int* ids, int n, int cols, long rowBytes, int type) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long)n * cols) return;
    const int i = (int)(e / cols), v = (int)(e % cols);
    dst[e] = dequant(type, W + (long)ids[i] * rowBytes, v);
}

// ---------------------------------------------------------------------------
// Element-wise and row kernels.

// rmsnorm: dst[i] = x[i] * (1/sqrt(mean(x[i]²) + eps)) * w, a warp per
// row (sum_squares16 is the CPU's order of the sum). Grid: ceil(n/4)
// blocks of 128 threads.
extern "C" __global__ void rmsnorm(float* dst, const float* x, const float* w, float eps, int n, int cols) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * 4 + (threadIdx.x >> 5);
    if (row >= n) return;
    const float* xr = x + (size_t)row * cols;
    float* dr = dst + (size_t)row * cols;
    const float sc = rms_scale(sum_squares16(xr, cols), cols, eps);
    for (int e = lane; e < cols; e += 32) dr[e] = xr[e] * sc * w[e];  // (x*scale)*w
}

// rmsnorm_heads: the same over every head (hd values) of every row, in
// place; one warp per head. chunks = n * cols / hd; grid: ceil(chunks/4)
// blocks of 128 threads.
extern "C" __global__ void rmsnorm_heads(float* x, const float* w, float eps, int hd, long chunks) {
    const int lane = threadIdx.x & 31;
    const long c = (long)blockIdx.x * 4 + (threadIdx.x >> 5);
    if (c >= chunks) return;
    float* h = x + c * hd;
    const float sc = rms_scale(sum_squares16(h, hd), hd, eps);
    for (int e = lane; e < hd; e += 32) h[e] = h[e] * sc * w[e];
}

// rope: rotate pairs (k, k + dims/2) of every head of row i by the angles
// of position pos[i]: tab is (position, dims) with cos, sin interleaved
// (backend.Rope.Angles, computed on the host). One thread per pair.
extern "C" __global__ void rope(float* x, const int* pos, const float* tab, int n, int cols, int dims) {
    const int half = dims / 2, heads = cols / dims;
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long)n * heads * half) return;
    const int i = (int)(e / (heads * half));
    const int r = (int)(e % (heads * half));
    const int h = r / half, k = r % half;
    const float* cs = tab + (size_t)pos[i] * dims;
    const float c = cs[2 * k], s = cs[2 * k + 1];
    float* head = x + (size_t)i * cols + h * dims;
    const float x0 = head[k], x1 = head[k + half];
    head[k] = x0 * c - x1 * s;
    head[k + half] = x0 * s + x1 * c;
}

// swiglu: dst = silu(gate) * up, silu(g) = g / (1 + e^-g) (kernels.Silu).
extern "C" __global__ void swiglu(float* dst, const float* gate, const float* up, long count) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    const float g = gate[e];
    dst[e] = g / (1.0f + exp_cephes(-g)) * up[e];  // silu(g) * up
}

// add: dst += x.
extern "C" __global__ void add(float* dst, const float* x, long count) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    dst[e] = dst[e] + x[e];
}

// gather: dst row i = x row rows[i].
extern "C" __global__ void gather(float* dst, const float* x, const int* rows, int n, int cols) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long)n * cols) return;
    const int i = (int)(e / cols), v = (int)(e % cols);
    dst[e] = x[(size_t)rows[i] * cols + v];
}

// ---------------------------------------------------------------------------
// Paged KV cache. The pool of one layer is K and V matrices of (slot,
// kvDim), F16 (half bit patterns) or F32; slot = block*blockSize + offset.

// store_kv: K[slots[i]] = k[i], V[slots[i]] = v[i] (rounded to half when f16).
extern "C" __global__ void store_kv(void* K, void* V, const float* k, const float* v, const int* slots, int n, int kvDim, int f16) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long)n * kvDim) return;
    const int i = (int)(e / kvDim), c = (int)(e % kvDim);
    const size_t at = (size_t)slots[i] * kvDim + c;
    if (f16) {
        ((uint16_t*)K)[at] = float_to_half(k[e]);
        ((uint16_t*)V)[at] = float_to_half(v[e]);
    } else {
        ((float*)K)[at] = k[e];
        ((float*)V)[at] = v[e];
    }
}

// copy_kv_block: copy block src to block dst in every layer (copy on
// write), in 16-bit units. K and V are (layer, slot, kvDim); perLayer and
// blockUnits count 16-bit units.
extern "C" __global__ void copy_kv_block(uint16_t* K, uint16_t* V, long perLayer, long blockUnits, int layers, int dstBlock, int srcBlock) {
    const long e = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (long)layers * blockUnits) return;
    const long l = e / blockUnits, u = e % blockUnits;
    const long d = l * perLayer + (long)dstBlock * blockUnits + u;
    const long s = l * perLayer + (long)srcBlock * blockUnits + u;
    K[d] = K[s];
    V[d] = V[s];
}

// attention: causal grouped-query attention over the paged cache.
//
// Block (g, i, z) computes query heads g*group + z*gpb + hl (hl < gpb) of
// token i, which share KV head g; thread (hl, dd) owns output element dd of
// local head hl (blockDim = gpb*hd rounded up to whole warps; the threads
// past gpb*hd only take part in the warps' shuffles). Token i sits at position pos[i] of a
// sequence whose block table is tables[tabOff[i] ...]; it attends to
// positions 0..pos[i].
//
// The scores are never stored whole: the block makes three passes over the
// positions in chunks of ATT_CHUNK, recomputing each chunk's scores into
// shared memory: (1) the maximum of each head's scores, (2) the sum of
// e^(score - max), (3) out = sum_j p_j * V[j] with p_j = e^(score_j - max)
// * (1/sum), j in order. Every step is as in backend/cpu's Attention
// (kernels.AttnScores, Softmax, AttnValues), so the results are the CPU's
// bit for bit: score = attnDot(q, k) * scale with the 32-lane order of Dot
// and fused multiply-adds (kernels.FMA32 = __fmaf_rn),
// e^x from exp_cephes, the sum in float64 in Softmax's 16 lanes, and the
// output adding p_j*v_j one position after the other with a fused
// multiply-add (kernels.AttnValues). These explicit __fmaf_rn are the only
// fused operations: the file is compiled with -fmad=false. Reading K three
// times costs little next to the weights at moderate context lengths; a
// single pass with a running maximum (flash attention) would change the
// rounding.
//
// K and V point at the layer's matrices. Shared memory (dynamic):
// q (gpb, hd) floats, then scores (gpb, ATT_CHUNK) floats.

__device__ __forceinline__ float kv_load(const void* p, size_t at, int f16) {
    return f16 ? half_to_float(((const uint16_t*)p)[at]) : ((const float*)p)[at];
}

// attn_chunk_scores fills sc[hl*ATT_CHUNK + jj] for positions j0+jj,
// jj < cnt, and slots[jj]: one warp per position, every head of the block
// at once (each K row is read once for the group).
__device__ void attn_chunk_scores(float* sc, int* slots, const float* qs, int nh, int hd, int j0, int cnt,
                                  const void* K, int f16, const int* tab, int bs, int kvDim, int g, float scale) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int full = hd / 32 * 32;
    for (int jj = warp; jj < cnt; jj += nw) {
        const int j = j0 + jj;
        const int slot = tab[j / bs] * bs + j % bs;
        const size_t base = (size_t)slot * kvDim + (size_t)g * hd;
        float s[ATT_MAXG];
#pragma unroll
        for (int h = 0; h < ATT_MAXG; h++) s[h] = 0.0f;
        for (int e = lane; e < full; e += 32) {
            const float kv = kv_load(K, base + e, f16);
#pragma unroll
            for (int h = 0; h < ATT_MAXG; h++)
                if (h < nh) s[h] = __fmaf_rn(qs[h * hd + e], kv, s[h]);
        }
#pragma unroll
        for (int h = 0; h < ATT_MAXG; h++) {
            s[h] = s[h] + __shfl_down_sync(FULL_MASK, s[h], 16);
            s[h] = s[h] + __shfl_down_sync(FULL_MASK, s[h], 8);
            s[h] = s[h] + __shfl_down_sync(FULL_MASK, s[h], 4);
            s[h] = s[h] + __shfl_down_sync(FULL_MASK, s[h], 2);
            s[h] = s[h] + __shfl_down_sync(FULL_MASK, s[h], 1);
        }
        if (lane == 0) {
            slots[jj] = slot;
#pragma unroll
            for (int h = 0; h < ATT_MAXG; h++) {
                if (h < nh) {
                    float t = s[h];
                    for (int e = full; e < hd; e++) t = __fmaf_rn(qs[h * hd + e], kv_load(K, base + e, f16), t);
                    sc[h * ATT_CHUNK + jj] = t * scale;
                }
            }
        }
    }
}

extern "C" __global__ void attention(float* out, const float* q, const void* K, const void* V, int f16,
                                     const int* pos, const int* tabOff, const int* tables, int bs, int kvDim,
                                     int qDim, int hd, int group, int gpb, float scale) {
    extern __shared__ float smem[];
    float* qs = smem;                  // (gpb, hd)
    float* sc = smem + gpb * hd;       // (gpb, ATT_CHUNK)
    __shared__ int slots[ATT_CHUNK];
    __shared__ float mx[ATT_MAXG], inv[ATT_MAXG];
    __shared__ double red[1024];

    const int g = blockIdx.x, i = blockIdx.y, h0 = blockIdx.z * gpb;
    const int nh = min(gpb, group - h0);
    const int tid = threadIdx.x, hl = tid / hd, dd = tid % hd;
    const bool active = hl < nh;
    const int npos = pos[i] + 1;
    const int* tab = tables + tabOff[i];
    const size_t qoff = (size_t)i * qDim + (size_t)(g * group + h0) * hd;  // first query head of the block

    for (int e = tid; e < nh * hd; e += blockDim.x) qs[e] = q[qoff + e];
    __syncthreads();

    // Pass 1: the maximum score of each head.
    float m = __int_as_float(0xff800000);  // -Inf
    for (int j0 = 0; j0 < npos; j0 += ATT_CHUNK) {
        const int cnt = min(ATT_CHUNK, npos - j0);
        attn_chunk_scores(sc, slots, qs, nh, hd, j0, cnt, K, f16, tab, bs, kvDim, g, scale);
        __syncthreads();
        if (active)
            for (int jj = dd; jj < cnt; jj += hd) m = fmaxf(m, sc[hl * ATT_CHUNK + jj]);
        __syncthreads();
    }
    red[tid] = (double)m;
    __syncthreads();
    if (active && dd == 0) {
        float mm = m;
        for (int k = 1; k < hd; k++) mm = fmaxf(mm, (float)red[hl * hd + k]);
        mx[hl] = mm;
    }
    __syncthreads();

    // Pass 2: the sum of e^(score - max) in float64, in the CPU's order
    // (kernels.Softmax): 16 lanes, lane l adding positions l, l+16, ...
    // below the last multiple of 16 (thread dd = l of each head; a chunk
    // is a multiple of 16 positions, so lane l meets its positions in
    // order), the lanes folded pairwise, then the last positions one by
    // one (they lie in the last chunk, whose scores are still in sc).
    const int full16 = npos / 16 * 16;
    double lane16 = 0.0;
    const float mh = active ? mx[hl] : 0.0f;
    for (int j0 = 0; j0 < npos; j0 += ATT_CHUNK) {
        const int cnt = min(ATT_CHUNK, npos - j0);
        attn_chunk_scores(sc, slots, qs, nh, hd, j0, cnt, K, f16, tab, bs, kvDim, g, scale);
        __syncthreads();
        if (active && dd < 16)
            for (int jj = dd; jj < cnt && j0 + jj < full16; jj += 16)
                lane16 += (double)exp_cephes(sc[hl * ATT_CHUNK + jj] - mh);
        __syncthreads();
    }
    red[tid] = lane16;
    __syncthreads();
    if (active && dd == 0) {
        double s[16];
        for (int l = 0; l < 16; l++) s[l] = red[hl * hd + l];
        for (int w = 8; w >= 1; w >>= 1)
            for (int l = 0; l < w; l++) s[l] += s[l + w];
        double t = s[0];
        const int last0 = (npos - 1) / ATT_CHUNK * ATT_CHUNK;  // first position of the last chunk
        for (int j = full16; j < npos; j++) t += (double)exp_cephes(sc[hl * ATT_CHUNK + (j - last0)] - mh);
        inv[hl] = (float)(1.0 / t);
    }
    __syncthreads();

    // Pass 3: out = sum_j p_j * V[j], positions in order.
    float o = 0.0f;
    const float ih = active ? inv[hl] : 0.0f;
    for (int j0 = 0; j0 < npos; j0 += ATT_CHUNK) {
        const int cnt = min(ATT_CHUNK, npos - j0);
        attn_chunk_scores(sc, slots, qs, nh, hd, j0, cnt, K, f16, tab, bs, kvDim, g, scale);
        __syncthreads();
        if (active)
            for (int jj = dd; jj < cnt; jj += hd) sc[hl * ATT_CHUNK + jj] = exp_cephes(sc[hl * ATT_CHUNK + jj] - mh) * ih;
        __syncthreads();
        if (active)
            for (int jj = 0; jj < cnt; jj++)
                o = __fmaf_rn(sc[hl * ATT_CHUNK + jj], kv_load(V, (size_t)slots[jj] * kvDim + (size_t)g * hd + dd, f16), o);
        __syncthreads();
    }
    if (active) out[qoff + (size_t)hl * hd + dd] = o;
}
