package cuda

import (
	"fmt"

	"github.com/gollm/gollm/tensor"
)

// Weight layouts on the GPU.
//
// Weights keep their file formats, block for block, so a Q6_K model takes
// on the GPU what it takes on disk. Two formats get two bytes of padding
// per block so that every block starts on a 4-byte boundary and the
// kernels can read it with aligned 32-bit loads (a Q6_K block is 210
// bytes, a Q8_0 block 34):
//
//	q6_K  212 bytes: ql[128] qh[64] scales[16] d pad[2]   (the file's 210 bytes, then 2 zero bytes)
//	q8_0   36 bytes: d pad[2] qs[32]                      (the quants move from offset 2 to 4)
//	q4_K, q5_K, f16, f32: as in the file
//
// kernels.cu reads these layouts; the two must agree.

// supportedTypes are the weight types the GPU kernels multiply.
var supportedTypes = []tensor.DType{tensor.F32, tensor.F16, tensor.Q8_0, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K}

// Supported reports whether weights of type t can be loaded on the GPU.
func Supported(t tensor.DType) bool {
	for _, s := range supportedTypes {
		if s == t {
			return true
		}
	}
	return false
}

// deviceBlockBytes is the size of one block of t on the GPU.
func deviceBlockBytes(t tensor.DType) int {
	switch t {
	case tensor.Q6_K:
		return 212
	case tensor.Q8_0:
		return 36
	}
	return t.BlockBytes()
}

// DeviceRowBytes is the size on the GPU of one row of cols values of type
// t. It fails (wrapping ErrUnsupported) for a type the kernels do not
// handle or a row that is not a whole number of blocks.
func DeviceRowBytes(t tensor.DType, cols int) (int64, error) {
	if !Supported(t) {
		return 0, fmt.Errorf("%w: weight type %s (the GPU handles %v)", ErrUnsupported, t, supportedTypes)
	}
	if cols < 1 || cols%t.BlockSize() != 0 {
		return 0, fmt.Errorf("%w: %d columns is not a whole number of %s blocks (%d values)", ErrUnsupported, cols, t, t.BlockSize())
	}
	return int64(cols/t.BlockSize()) * int64(deviceBlockBytes(t)), nil
}

// WeightBytes is the GPU memory a (rows, cols) matrix of type t takes.
func WeightBytes(t tensor.DType, rows, cols int) (int64, error) {
	rb, err := DeviceRowBytes(t, cols)
	return rb * int64(rows), err
}

// repack converts whole blocks of t from the file layout (src) to the
// device layout (dst, len = blocks × deviceBlockBytes(t)).
func repack(t tensor.DType, dst, src []byte) {
	fb, db := t.BlockBytes(), deviceBlockBytes(t)
	if fb == db {
		copy(dst, src)
		return
	}
	n := len(src) / fb
	for i := 0; i < n; i++ {
		s, d := src[i*fb:(i+1)*fb], dst[i*db:(i+1)*db]
		switch t {
		case tensor.Q6_K: // the file's 210 bytes, then 2 bytes of padding
			copy(d, s)
			d[210], d[211] = 0, 0
		case tensor.Q8_0: // d, 2 bytes of padding, then the 32 quants
			d[0], d[1], d[2], d[3] = s[0], s[1], 0, 0
			copy(d[4:], s[2:34])
		}
	}
}
