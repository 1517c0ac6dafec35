package cpu_test

import (
	"errors"
	"testing"

	"github.com/gollm/gollm/backend/cpu"
	"github.com/gollm/gollm/kvcache"
	"github.com/gollm/gollm/tensor"
)

// TestCopyOnWriteData checks that copy-on-write really copies the bytes in
// HostStorage, and that the original keeps its data.
func TestCopyOnWriteData(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F16, tensor.F32} {
		h, err := cpu.NewHostStorage(dt, 2, 3, 4, 4)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := kvcache.New(kvcache.Config{BlockSize: 4, Capacity: 16}, h)
		c.AddSeq(0)
		c.Append(0, 2)
		set := func(slot int, v float32) {
			for l := 0; l < 2; l++ {
				for d := 0; d < 3; d++ {
					if dt == tensor.F16 {
						h.K16[l][slot*3+d] = tensor.FloatToHalf(v)
						h.V16[l][slot*3+d] = tensor.FloatToHalf(-v)
					} else {
						h.K32[l][slot*3+d] = v
						h.V32[l][slot*3+d] = -v
					}
				}
			}
		}
		get := func(slot int) float32 {
			if dt == tensor.F16 {
				return tensor.HalfToFloat(h.K16[1][slot*3+2])
			}
			return h.K32[1][slot*3+2]
		}
		set(c.Slot(0, 0), 1)
		set(c.Slot(0, 1), 2)
		if err := c.Fork(1, 0, -1); err != nil {
			t.Fatal(err)
		}
		if c.Slot(1, 1) != c.Slot(0, 1) {
			t.Fatal("fork should share the partial block until a write")
		}
		c.Append(1, 1)
		if c.Slot(1, 1) == c.Slot(0, 1) {
			t.Fatal("append into a shared block must copy it")
		}
		if get(c.Slot(1, 0)) != 1 || get(c.Slot(1, 1)) != 2 {
			t.Fatalf("%s: copied block lost data", dt)
		}
		set(c.Slot(1, 2), 7)
		if get(c.Slot(0, 0)) != 1 || get(c.Slot(0, 1)) != 2 {
			t.Fatalf("%s: writing the fork changed the source", dt)
		}
	}
}

// TestHostStorageBadConfig: the pool holds F16 or F32 elements only, and
// every size must be positive; the error is kvcache's, as on the GPU.
func TestHostStorageBadConfig(t *testing.T) {
	cases := []struct {
		dt                                  tensor.DType
		layers, kvDim, blockSize, numBlocks int
	}{
		{tensor.Q8_0, 1, 1, 1, 1},
		{tensor.F16, -1, 1, 1, 1},
		{tensor.F16, 1, 0, 1, 1},
		{tensor.F32, 1, 1, 0, 1},
		{tensor.F32, 1, 1, 1, 0},
	}
	for _, c := range cases {
		if _, err := cpu.NewHostStorage(c.dt, c.layers, c.kvDim, c.blockSize, c.numBlocks); !errors.Is(err, kvcache.ErrBadConfig) {
			t.Errorf("%s, %d layers, kvDim %d, block size %d, %d blocks: err = %v, want ErrBadConfig",
				c.dt, c.layers, c.kvDim, c.blockSize, c.numBlocks, err)
		}
	}
}
