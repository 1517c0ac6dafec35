package tensor

import (
	"math"
	"testing"
)

// TestHalfRoundTrip checks every one of the 65536 half patterns: converting
// to float32 and back gives the same pattern (NaNs stay NaN).
func TestHalfRoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := HalfToFloat(h)
		back := FloatToHalf(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %04x came back as %04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("half %04x -> %g -> %04x", h, f, back)
		}
	}
}

// TestFloatToHalfRounding compares FloatToHalf with a slow reference that
// picks the nearest of the two neighbouring halves (ties to even) in float64.
func TestFloatToHalfRounding(t *testing.T) {
	check := func(f float32) {
		got := FloatToHalf(f)
		// Find the nearest half by scanning neighbours of the truncation.
		best, bestErr := uint16(0), math.Inf(1)
		for i := 0; i < 1<<16; i += 1 {
			h := uint16(i)
			v := float64(HalfToFloat(h))
			if math.IsNaN(v) || math.Signbit(v) != math.Signbit(float64(f)) {
				continue
			}
			e := math.Abs(v - float64(f))
			if e < bestErr || (e == bestErr && h&1 == 0) {
				best, bestErr = h, e
			}
		}
		if math.Abs(float64(f)) >= 65520 { // rounds to infinity
			best = uint16(math.Float32bits(f)>>16)&0x8000 | 0x7c00
		}
		if got != best {
			t.Fatalf("FloatToHalf(%g) = %04x, want %04x", f, got, best)
		}
	}
	vals := []float32{0, 1, -1, 0.1, 1e-8, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, 6.09e-5, 65504, 65519, 65520, 1e6, 1.0009765625, 1.00048828125, 1.00146484375}
	for _, v := range vals {
		check(v)
		check(-v)
	}
	for i := uint32(0); i < 300; i++ {
		check(math.Float32frombits(0x33000000 + i*0x0023_4567%0x0f000000))
	}
}

func TestBF16(t *testing.T) {
	if FloatToBF16(1) != 0x3f80 || BF16ToFloat(0x3f80) != 1 {
		t.Fatal("bf16 of 1")
	}
	// 1 + 2^-8 is a tie between 1 and 1+2^-7: rounds to even (1).
	if got := FloatToBF16(1 + 1.0/256); got != 0x3f80 {
		t.Fatalf("tie: %04x", got)
	}
	if got := FloatToBF16(1 + 3.0/256); got != 0x3f82 {
		t.Fatalf("tie up: %04x", got)
	}
}
