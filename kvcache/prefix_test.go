package kvcache

import (
	"slices"
	"testing"

	"github.com/gollm/gollm/flat"
)

func toks(from, n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(from + i)
	}
	return t
}

// prefixOp is one step of a prefix-cache scenario (block size 4).
type prefixOp struct {
	do   string // add, write (AppendTokens + Commit), attach, truncate, free
	seq  flat.SeqID
	toks []int32
	n    int // truncate length; attach: tokens it must attach
}

// TestPrefixCacheTable: registration, hits, refcounts, eviction under
// pressure, and the leak check after every step.
func TestPrefixCacheTable(t *testing.T) {
	sys := toks(100, 10) // a shared "system prompt": two full blocks and two tokens
	cases := []struct {
		name  string
		cap   int
		steps []prefixOp
		// after the steps
		free, cached, evictable, shared int
		hits                            int64
	}{
		{"a shared prefix is found and shared", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: append(slices.Clone(sys), 1, 2)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: append(slices.Clone(sys), 7, 8, 9), n: 8},
		}, 5, 3, 0, 2, 8},
		{"the last token is always left to compute", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 8)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: toks(0, 8), n: 4},
		}, 6, 2, 0, 1, 4},
		{"another beginning finds nothing", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 8)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: toks(1, 9), n: 0},
		}, 6, 2, 0, 0, 0},
		{"the same block after another prefix is a miss", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: append(toks(0, 4), toks(50, 4)...)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: append(toks(9, 4), toks(50, 5)...), n: 0},
		}, 6, 2, 0, 0, 0},
		{"freed blocks stay cached and are found again", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 10)}, {do: "free", seq: 0},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: toks(0, 12), n: 8},
		}, 6, 2, 0, 0, 8},
		{"unreferenced cached blocks are evicted when room is needed, last block first", 16, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 12)}, {do: "free", seq: 0},
			{do: "add", seq: 1}, {do: "write", seq: 1, toks: toks(500, 6)}, // 2 blocks: the free one, then the LRU (block 2 of seq 0)
			{do: "add", seq: 2}, {do: "attach", seq: 2, toks: toks(0, 13), n: 8},
		}, 0, 3, 0, 0, 8},
		{"truncating into a cached block and writing unregisters it", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 8)}, {do: "truncate", seq: 0, n: 6},
			{do: "write", seq: 0, toks: toks(90, 2)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: toks(0, 9), n: 4},
		}, 6, 2, 0, 1, 4},
		{"a shared cached block is copied before a write", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "write", seq: 0, toks: toks(0, 8)},
			{do: "add", seq: 1}, {do: "attach", seq: 1, toks: toks(0, 9), n: 8}, {do: "truncate", seq: 1, n: 6},
			{do: "write", seq: 1, toks: toks(90, 1)},
		}, 5, 2, 0, 1, 8},
		{"duplicates stay correct but are not registered twice", 32, []prefixOp{
			{do: "add", seq: 0}, {do: "add", seq: 1},
			{do: "write", seq: 0, toks: toks(0, 4)}, {do: "write", seq: 1, toks: toks(0, 4)},
			{do: "free", seq: 0}, {do: "free", seq: 1},
		}, 8, 1, 1, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := &recStore{}
			kv, err := New(Config{BlockSize: 4, Capacity: c.cap, PrefixCache: true}, store)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				switch s.do {
				case "add":
					err = kv.AddSeq(s.seq)
				case "write":
					if _, err = kv.AppendTokens(s.seq, s.toks); err == nil {
						kv.Commit(s.seq)
					}
				case "attach":
					if got := kv.Attach(s.seq, s.toks); got != s.n {
						t.Fatalf("step %d: attached %d tokens, want %d", i, got, s.n)
					}
					if n, _ := kv.Cached(s.toks); n != s.n {
						t.Fatalf("step %d: Cached says %d tokens, Attach took %d", i, n, s.n)
					}
					if got := kv.Tokens(s.seq); !slices.Equal(got, s.toks[:s.n]) {
						t.Fatalf("step %d: sequence holds %v", i, got)
					}
				case "truncate":
					err = kv.Truncate(s.seq, s.n)
				case "free":
					err = kv.Free(s.seq)
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.do, err)
				}
				if err := kv.Check(); err != nil {
					t.Fatalf("step %d (%s): %v", i, s.do, err)
				}
			}
			st := kv.Stats()
			if st.FreeBlocks != c.free || st.CachedBlocks != c.cached || st.EvictableBlocks != c.evictable || st.Shared != c.shared || st.PrefixHits != c.hits {
				t.Fatalf("free %d cached %d evictable %d shared %d hits %d; want %d %d %d %d %d",
					st.FreeBlocks, st.CachedBlocks, st.EvictableBlocks, st.Shared, st.PrefixHits,
					c.free, c.cached, c.evictable, c.shared, c.hits)
			}
			// Freeing everything leaves nothing referenced.
			for _, id := range kv.Seqs() {
				kv.Free(id)
			}
			if err := kv.Check(); err != nil || kv.FreeBlocks() != kv.NumBlocks() {
				t.Fatalf("after freeing all: %v, %d of %d blocks free", err, kv.FreeBlocks(), kv.NumBlocks())
			}
		})
	}
}

// TestPrefixCacheOff: without PrefixCache nothing is registered or found.
func TestPrefixCacheOff(t *testing.T) {
	kv, _ := New(Config{BlockSize: 4, Capacity: 32}, &recStore{})
	kv.AddSeq(0)
	kv.AppendTokens(0, toks(0, 9))
	kv.Commit(0)
	kv.AddSeq(1)
	if n := kv.Attach(1, toks(0, 9)); n != 0 {
		t.Fatalf("attached %d tokens with the prefix cache off", n)
	}
	kv.Free(0)
	if err := kv.Check(); err != nil || kv.FreeBlocks() != 8 {
		t.Fatalf("%v, %d free", err, kv.FreeBlocks())
	}
}

// TestAppendWithoutTokensIsNeverCached: blocks appended without token ids
// (as the low-level tests and benchmarks do) are not registered.
func TestAppendWithoutTokensIsNeverCached(t *testing.T) {
	kv, _ := New(Config{BlockSize: 4, Capacity: 32, PrefixCache: true}, &recStore{})
	kv.AddSeq(0)
	kv.Append(0, 8)
	kv.Commit(0)
	if st := kv.Stats(); st.CachedBlocks != 0 {
		t.Fatalf("%d blocks cached", st.CachedBlocks)
	}
}
