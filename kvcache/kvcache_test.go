package kvcache

import (
	"errors"
	"testing"

	"github.com/gollm/gollm/flat"
)

// recStore records block copies so tests can see copy-on-write happen.
type recStore struct{ copies [][2]int }

func (r *recStore) CopyBlock(dst, src int) { r.copies = append(r.copies, [2]int{dst, src}) }

// op is one step of a table-driven scenario.
type op struct {
	do      string // add, append, free, fork, truncate
	seq     flat.SeqID
	src     flat.SeqID // fork source
	n       int
	wantErr error
}

// want describes the pool after the steps.
type want struct {
	free   int
	tokens map[flat.SeqID]int
	blocks map[flat.SeqID]int
	copies int
	shared int
}

func TestCacheTable(t *testing.T) {
	cases := []struct {
		name  string
		cap   int // tokens, block size 4
		steps []op
		want  want
	}{
		{"empty pool", 16, nil, want{free: 4}},
		{"allocate within one block", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 3}},
			want{free: 3, tokens: map[flat.SeqID]int{0: 3}, blocks: map[flat.SeqID]int{0: 1}}},
		{"allocate across blocks", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 3}, {do: "append", seq: 0, n: 6}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 9}, blocks: map[flat.SeqID]int{0: 3}}},
		{"two sequences share the pool dynamically", 16, []op{{do: "add", seq: 0}, {do: "add", seq: 1},
			{do: "append", seq: 0, n: 12}, {do: "append", seq: 1, n: 4}},
			want{free: 0, tokens: map[flat.SeqID]int{0: 12, 1: 4}, blocks: map[flat.SeqID]int{0: 3, 1: 1}}},
		{"exhaustion is all or nothing", 16, []op{{do: "add", seq: 0}, {do: "add", seq: 1},
			{do: "append", seq: 0, n: 10}, {do: "append", seq: 1, n: 7, wantErr: ErrKVFull}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 10, 1: 0}, blocks: map[flat.SeqID]int{0: 3, 1: 0}}},
		{"free returns blocks", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 10}, {do: "free", seq: 0}},
			want{free: 4}},
		{"truncate releases whole blocks", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 10}, {do: "truncate", seq: 0, n: 5}},
			want{free: 2, tokens: map[flat.SeqID]int{0: 5}, blocks: map[flat.SeqID]int{0: 2}}},
		{"truncate to zero", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 10}, {do: "truncate", seq: 0, n: 0}},
			want{free: 4, tokens: map[flat.SeqID]int{0: 0}, blocks: map[flat.SeqID]int{0: 0}}},
		{"truncate beyond length fails", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 2}, {do: "truncate", seq: 0, n: 3, wantErr: ErrBadLength}},
			want{free: 3, tokens: map[flat.SeqID]int{0: 2}, blocks: map[flat.SeqID]int{0: 1}}},
		{"fork shares full blocks", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 8}, {do: "fork", seq: 1, src: 0, n: -1}},
			want{free: 2, tokens: map[flat.SeqID]int{0: 8, 1: 8}, blocks: map[flat.SeqID]int{0: 2, 1: 2}, shared: 2}},
		{"append after fork at a block boundary copies nothing", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 8},
			{do: "fork", seq: 1, src: 0, n: -1}, {do: "append", seq: 1, n: 1}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 8, 1: 9}, blocks: map[flat.SeqID]int{0: 2, 1: 3}, shared: 2}},
		{"append into a shared partial block copies it", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 6},
			{do: "fork", seq: 1, src: 0, n: -1}, {do: "append", seq: 1, n: 1}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 6, 1: 7}, blocks: map[flat.SeqID]int{0: 2, 1: 2}, copies: 1, shared: 1}},
		{"the source copies too when it writes first", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 6},
			{do: "fork", seq: 1, src: 0, n: -1}, {do: "append", seq: 0, n: 1}, {do: "append", seq: 1, n: 1}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 7, 1: 7}, blocks: map[flat.SeqID]int{0: 2, 1: 2}, copies: 1, shared: 1}},
		{"fork a prefix", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 10}, {do: "fork", seq: 1, src: 0, n: 4}},
			want{free: 1, tokens: map[flat.SeqID]int{0: 10, 1: 4}, blocks: map[flat.SeqID]int{0: 3, 1: 1}, shared: 1}},
		{"freeing the source keeps shared blocks alive", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 8},
			{do: "fork", seq: 1, src: 0, n: -1}, {do: "free", seq: 0}},
			want{free: 2, tokens: map[flat.SeqID]int{1: 8}, blocks: map[flat.SeqID]int{1: 2}}},
		{"copy-on-write needs a free block", 8, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: 6},
			{do: "fork", seq: 1, src: 0, n: -1}, {do: "append", seq: 1, n: 1, wantErr: ErrKVFull}},
			want{free: 0, tokens: map[flat.SeqID]int{0: 6, 1: 6}, blocks: map[flat.SeqID]int{0: 2, 1: 2}, shared: 2}},
		{"unknown sequence", 16, []op{{do: "append", seq: 5, n: 1, wantErr: ErrUnknownSeq}, {do: "free", seq: 5, wantErr: ErrUnknownSeq}},
			want{free: 4}},
		{"duplicate sequence", 16, []op{{do: "add", seq: 0}, {do: "add", seq: 0, wantErr: ErrSeqExists}},
			want{free: 4, tokens: map[flat.SeqID]int{0: 0}, blocks: map[flat.SeqID]int{0: 0}}},
		{"negative append", 16, []op{{do: "add", seq: 0}, {do: "append", seq: 0, n: -1, wantErr: ErrBadLength}},
			want{free: 4, tokens: map[flat.SeqID]int{0: 0}, blocks: map[flat.SeqID]int{0: 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &recStore{}
			c, err := New(Config{BlockSize: 4, Capacity: tc.cap}, st)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				var err error
				switch s.do {
				case "add":
					err = c.AddSeq(s.seq)
				case "append":
					_, err = c.Append(s.seq, s.n)
				case "free":
					err = c.Free(s.seq)
				case "fork":
					err = c.Fork(s.seq, s.src, s.n)
				case "truncate":
					err = c.Truncate(s.seq, s.n)
				}
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d (%s): err = %v, want %v", i, s.do, err, s.wantErr)
				}
			}
			got := c.Stats()
			if got.FreeBlocks != tc.want.free {
				t.Errorf("free blocks = %d, want %d", got.FreeBlocks, tc.want.free)
			}
			for id, n := range tc.want.tokens {
				if got.Tokens[id] != n {
					t.Errorf("seq %d tokens = %d, want %d", id, got.Tokens[id], n)
				}
			}
			for id, n := range tc.want.blocks {
				if got.PerSeq[id] != n {
					t.Errorf("seq %d blocks = %d, want %d", id, got.PerSeq[id], n)
				}
			}
			if len(st.copies) != tc.want.copies {
				t.Errorf("block copies = %d, want %d", len(st.copies), tc.want.copies)
			}
			if got.Shared != tc.want.shared {
				t.Errorf("shared blocks = %d, want %d", got.Shared, tc.want.shared)
			}
			// Leak check: freeing every sequence returns every block.
			for _, id := range c.Seqs() {
				if err := c.Free(id); err != nil {
					t.Fatal(err)
				}
			}
			if f := c.FreeBlocks(); f != c.NumBlocks() {
				t.Errorf("leak: %d of %d blocks free after freeing every sequence", f, c.NumBlocks())
			}
		})
	}
}

// TestSlots checks the position → slot mapping through the block table.
func TestSlots(t *testing.T) {
	c, _ := New(Config{BlockSize: 4, Capacity: 32}, &recStore{})
	c.AddSeq(0)
	c.AddSeq(1)
	c.Append(0, 3) // block 0
	c.Append(1, 5) // blocks 1, 2
	c.Append(0, 3) // seq 0 grows into block 3
	want0 := []int{0, 1, 2, 3, 12, 13}
	for p, w := range want0 {
		if got := c.Slot(0, p); got != w {
			t.Errorf("seq 0 pos %d: slot %d, want %d", p, got, w)
		}
	}
	if c.Slot(0, 6) != -1 || c.Slot(0, -1) != -1 || c.Slot(9, 0) != -1 {
		t.Error("unallocated positions must have slot -1")
	}
	if got := c.Slot(1, 4); got != 8 {
		t.Errorf("seq 1 pos 4: slot %d, want 8", got)
	}
}

// TestZeroCapacity: a pool needs room for at least one token.
func TestZeroCapacity(t *testing.T) {
	if _, err := New(Config{BlockSize: 4, Capacity: 0}, &recStore{}); !errors.Is(err, ErrBadConfig) {
		t.Fatal("zero capacity must fail")
	}
}
