// Package kvcache is the block bookkeeping of a paged key/value cache,
// shared by every sequence of a context.
//
// Attention needs, for every layer, the key and value vectors of all earlier
// positions of a sequence. Instead of giving each sequence a fixed slab of
// memory, the cache is one pool of fixed-size blocks (BlockSize tokens
// each, holding K and V for every layer). A sequence owns an append-only
// block table: its position p lives in block table[p/BlockSize] at offset
// p%BlockSize. Sequences take blocks from the pool as they grow and give
// them back when they are cut or freed, so the context size is shared
// dynamically: one long conversation can use most of the pool while the
// others are short (this is vLLM's PagedAttention idea).
//
// The Cache does the bookkeeping only: which block holds which tokens of
// which sequence. The bytes live in a Storage that belongs to the backend
// (the CPU keeps Go slices, a GPU keeps device memory), so each backend
// chooses its own layout.
//
// # Sharing blocks
//
// A block may be referenced by several sequences (a reference count per
// block). A shared block is never written: a sequence that must write
// into one first gets a private copy (copy on write). Two things share
// blocks:
//
//   - Fork makes a new sequence start with another's tokens (n > 1 answers
//     to one prompt evaluate the prompt once).
//
//   - The prefix cache (Config.PrefixCache), vLLM's "automatic prefix
//     caching": every full block whose K and V have been computed is
//     registered under a key that hashes its tokens and the key of the
//     block before it,
//
//     key(block i) = hash(key(block i-1), tokens[i*BS : (i+1)*BS])
//
//     so a key names a whole prefix, not just 16 tokens. A sequence that
//     starts with the same tokens (a shared system prompt, a conversation
//     sent again) finds the blocks by walking the chain of keys and
//     shares them instead of computing them again (Attach). When no
//     sequence references a registered block any more it is not freed at
//     once: it stays findable and is only reused when the pool runs out of
//     plain free blocks, least recently released first.
//
// A worked example with BlockSize 16: two requests share a 100-token
// system prompt. The first computes 100 + its own tokens; after its first
// step, blocks 0…5 (tokens 0…95) are full and registered. The second
// request's tokens 0…95 hash to the same six keys, so it attaches those
// six blocks and evaluates only from token 96 on: 4 more tokens of the
// system prompt plus its own.
//
// A hit is checked, not trusted: a registered block keeps its 16 tokens
// and its parent's key, and both must equal the request's, so a 64-bit
// hash collision can cost a miss but never a wrong answer.
//
// # Memory
//
// Memory per token = 2 (K and V) × layers × kvHeads × headDim × element
// size. For Qwen3-8B (36 layers, 8 KV heads, head_dim 128) in F16 that is
// 2×36×8×128×2 = 147,456 bytes, so a 4096-token pool takes 576 MiB. The
// bookkeeping adds 4 bytes per token (the tokens of each block, for the
// prefix cache's check) and about 40 bytes per block.
package kvcache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/gollm/gollm/flat"
)

// Errors. Each is wrapped with the numbers involved.
var (
	ErrKVFull     = errors.New("kvcache: out of KV blocks")
	ErrUnknownSeq = errors.New("kvcache: unknown sequence")
	ErrSeqExists  = errors.New("kvcache: sequence already exists")
	ErrBadConfig  = errors.New("kvcache: invalid configuration")
	ErrBadLength  = errors.New("kvcache: invalid length")
)

// Storage holds the K and V data of the pool's blocks. The Cache calls
// CopyBlock when copy-on-write needs a private copy of a shared block.
type Storage interface {
	CopyBlock(dst, src int)
}

// Config sizes a cache.
type Config struct {
	BlockSize int // tokens per block (16 or 32 are typical)
	Capacity  int // tokens in the whole pool; rounded up to whole blocks
	// PrefixCache keeps full computed blocks findable by their tokens
	// after their sequences let go of them (see the package doc).
	PrefixCache bool
}

// DefaultBlockSize is the block size used when Config.BlockSize is 0.
const DefaultBlockSize = 16

// unknown marks a position whose token was not given (Append without
// tokens); a block holding one is never registered in the prefix cache.
const unknown = -1

// seqState is one sequence's view of the pool.
type seqState struct {
	table  []int32  // block ids, append-only; table[i] holds positions [i*BS, (i+1)*BS)
	tokens []int32  // (position) the tokens stored, len = the sequence's length
	keys   []uint64 // (block) prefix-cache key of each leading full block hashed so far
}

// Cache is the block pool plus one block table per sequence. It is safe
// for concurrent use, but in a context only the engine loop changes it;
// other goroutines only read snapshots.
type Cache struct {
	mu        sync.Mutex
	blockSize int
	numBlocks int
	refs      []int32 // (block) sequences referencing each block; 0 = free or evictable
	free      []int32 // stack of free blocks holding nothing worth keeping
	seqs      map[flat.SeqID]*seqState
	store     Storage

	// The prefix cache. A registered block has keyed[b] set, its key,
	// its parent's key and its tokens; index finds it by key.
	prefix bool
	seed   maphash.Seed
	keyed  []bool
	key    []uint64 // (block)
	parent []uint64 // (block) key of the block before it in its chain (0: first block)
	btok   []int32  // (block, offset) the block's tokens
	index  map[uint64]int32
	// Registered blocks that no sequence references, least recently
	// released first: a doubly linked list threaded through two arrays.
	lruPrev, lruNext []int32 // (block); -1 ends the list
	lruHead, lruTail int32
	evictable        int

	hits, queried, evictions int64
}

// New makes a cache of cfg.Capacity tokens (rounded up to whole blocks)
// whose data lives in store (which must have room for NumBlocks(cfg)
// blocks).
func New(cfg Config, store Storage) (*Cache, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.BlockSize < 1 || cfg.Capacity < 1 {
		return nil, fmt.Errorf("%w: block size %d, capacity %d tokens", ErrBadConfig, cfg.BlockSize, cfg.Capacity)
	}
	n := NumBlocks(cfg)
	c := &Cache{
		blockSize: cfg.BlockSize,
		numBlocks: n,
		refs:      make([]int32, n),
		free:      make([]int32, n),
		seqs:      map[flat.SeqID]*seqState{},
		store:     store,
		prefix:    cfg.PrefixCache,
		lruHead:   -1,
		lruTail:   -1,
	}
	// Free list as a stack: pop from the end, so block 0 is handed out first.
	for i := range c.free {
		c.free[i] = int32(n - 1 - i)
	}
	if c.prefix {
		c.seed = maphash.MakeSeed()
		c.keyed = make([]bool, n)
		c.key = make([]uint64, n)
		c.parent = make([]uint64, n)
		c.btok = make([]int32, n*cfg.BlockSize)
		c.index = map[uint64]int32{}
		c.lruPrev = make([]int32, n)
		c.lruNext = make([]int32, n)
	}
	return c, nil
}

// NumBlocks is the number of blocks a configuration needs.
func NumBlocks(cfg Config) int {
	bs := cfg.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	return (cfg.Capacity + bs - 1) / bs
}

// BlockSize is the number of tokens per block.
func (c *Cache) BlockSize() int { return c.blockSize }

// NumBlocks is the number of blocks in the pool.
func (c *Cache) NumBlocks() int { return c.numBlocks }

// Capacity is the pool's size in tokens.
func (c *Cache) Capacity() int { return c.numBlocks * c.blockSize }

// FreeBlocks is the number of blocks a sequence can take now: the free
// ones plus the cached ones that no sequence references (taking one
// evicts it from the prefix cache).
func (c *Cache) FreeBlocks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.free) + c.evictable
}

// AddSeq registers an empty sequence.
func (c *Cache) AddSeq(id flat.SeqID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seqs[id]; ok {
		return fmt.Errorf("%w: %d", ErrSeqExists, id)
	}
	c.seqs[id] = &seqState{}
	return nil
}

// Len is the number of tokens stored for a sequence (0 if unknown).
func (c *Cache) Len(id flat.SeqID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return len(s.tokens)
	}
	return 0
}

// Tokens returns a copy of the tokens a sequence holds (-1 where they
// were appended without tokens).
func (c *Cache) Tokens(id flat.SeqID) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return slices.Clone(s.tokens)
	}
	return nil
}

// Blocks returns a copy of a sequence's block table.
func (c *Cache) Blocks(id flat.SeqID) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return slices.Clone(s.table)
	}
	return nil
}

// Table returns the sequence's block table itself, for the attention
// kernels of one forward step. It must not be modified, and it is only
// valid until the next Append, Truncate or Free of that sequence.
func (c *Cache) Table(id flat.SeqID) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return s.table
	}
	return nil
}

// Exclusive is the number of blocks only this sequence references: what
// cutting it to zero gives back to the pool.
func (c *Cache) Exclusive(id flat.SeqID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	if s, ok := c.seqs[id]; ok {
		for _, b := range s.table {
			if c.refs[b] == 1 {
				n++
			}
		}
	}
	return n
}

// Slot is the physical row (block*BlockSize + offset) that holds position
// pos of a sequence, or -1 if that position is not allocated.
func (c *Cache) Slot(id flat.SeqID, pos int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok || pos < 0 || pos >= len(s.tokens) {
		return -1
	}
	return int(s.table[pos/c.blockSize])*c.blockSize + pos%c.blockSize
}

// Append allocates room for n more tokens at the end of a sequence,
// without saying which tokens (such blocks never enter the prefix cache),
// and returns the first new position. See AppendTokens.
func (c *Cache) Append(id flat.SeqID, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: append %d tokens", ErrBadLength, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.append(id, n, nil)
}

// AppendTokens allocates room for tokens at the end of a sequence and
// records them; it returns the position of the first. It is all or
// nothing: when the pool cannot hold them it returns ErrKVFull and the
// sequence is unchanged. If the sequence's last block is partly filled
// and shared (with a fork, or registered in the prefix cache), it is
// first copied to a private block (copy on write).
func (c *Cache) AppendTokens(id flat.SeqID, tokens []int32) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.append(id, len(tokens), tokens)
}

func (c *Cache) append(id flat.SeqID, n int, tokens []int32) (int, error) {
	s, ok := c.seqs[id]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	start := len(s.tokens)
	if n == 0 {
		return start, nil
	}
	need := (start+n+c.blockSize-1)/c.blockSize - len(s.table)
	// Writing into the partly filled last block: a block others
	// reference needs a private copy first; a registered block that only
	// this sequence references just leaves the prefix cache (its content
	// is about to change).
	last := int32(-1)
	if start%c.blockSize != 0 {
		last = s.table[len(s.table)-1]
	}
	cow := last >= 0 && c.refs[last] > 1
	if cow {
		need++
	}
	if avail := len(c.free) + c.evictable; need > avail {
		return 0, fmt.Errorf("%w: sequence %d needs %d more blocks (%d tokens at %d per block) for %d new tokens, %d of %d blocks are free",
			ErrKVFull, id, need, need*c.blockSize, c.blockSize, n, avail, c.numBlocks)
	}
	switch {
	case cow:
		fresh := c.pop()
		c.store.CopyBlock(int(fresh), int(last))
		c.release(last)
		s.table[len(s.table)-1] = fresh
		need--
	case last >= 0 && c.prefix && c.keyed[last]:
		c.unregister(last)
	}
	if k := start / c.blockSize; len(s.keys) > k {
		s.keys = s.keys[:k] // the block being written is no longer hashed
	}
	for ; need > 0; need-- {
		s.table = append(s.table, c.pop())
	}
	if tokens != nil {
		s.tokens = append(s.tokens, tokens...)
	} else {
		for range n {
			s.tokens = append(s.tokens, unknown)
		}
	}
	return start, nil
}

// pop takes a block: a free one, else the least recently released cached
// one (evicting it from the prefix cache). The caller checked that one is
// available.
func (c *Cache) pop() int32 {
	var b int32
	if len(c.free) > 0 {
		b = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
	} else {
		b = c.lruHead
		c.lruRemove(b)
		c.unregister(b)
		c.evictions++
	}
	c.refs[b] = 1
	return b
}

// release drops one reference to b. A block nobody references goes back
// to the free list, or, when it is registered in the prefix cache, to the
// end of the eviction list.
func (c *Cache) release(b int32) {
	c.refs[b]--
	if c.refs[b] > 0 {
		return
	}
	if c.prefix && c.keyed[b] {
		c.lruPush(b)
		return
	}
	c.free = append(c.free, b)
}

// releaseTable releases blocks from the last to the first, so that the
// end of a chain is evicted before its beginning (a beginning is what
// other prompts are most likely to share).
func (c *Cache) releaseTable(blocks []int32) {
	for i := len(blocks) - 1; i >= 0; i-- {
		c.release(blocks[i])
	}
}

// Truncate cuts a sequence back to its first n tokens, returning the
// blocks it no longer needs to the pool (or dropping its reference to
// them, if they are shared).
func (c *Cache) Truncate(id flat.SeqID, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	if n < 0 || n > len(s.tokens) {
		return fmt.Errorf("%w: truncate sequence %d of %d tokens to %d", ErrBadLength, id, len(s.tokens), n)
	}
	keep := (n + c.blockSize - 1) / c.blockSize
	c.releaseTable(s.table[keep:])
	s.table = s.table[:keep]
	s.tokens = s.tokens[:n]
	s.keys = s.keys[:min(len(s.keys), n/c.blockSize)]
	return nil
}

// Free removes a sequence and returns its blocks.
func (c *Cache) Free(id flat.SeqID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	c.releaseTable(s.table)
	delete(c.seqs, id)
	return nil
}

// Fork makes dst a copy of src's first n tokens (n = -1: all of them). Full
// blocks are shared by reference count, never copied; a partly filled last
// block is shared too and copied on the first write by either sequence.
func (c *Cache) Fork(dst, src flat.SeqID, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[src]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSeq, src)
	}
	if _, exists := c.seqs[dst]; exists {
		return fmt.Errorf("%w: %d", ErrSeqExists, dst)
	}
	if n < 0 {
		n = len(s.tokens)
	}
	if n > len(s.tokens) {
		return fmt.Errorf("%w: fork %d tokens of a %d-token sequence", ErrBadLength, n, len(s.tokens))
	}
	keep := (n + c.blockSize - 1) / c.blockSize
	d := &seqState{table: slices.Clone(s.table[:keep]), tokens: slices.Clone(s.tokens[:n]),
		keys: slices.Clone(s.keys[:min(len(s.keys), n/c.blockSize)])}
	for _, b := range d.table {
		c.refs[b]++
	}
	c.seqs[dst] = d
	return nil
}

// hash is the prefix-cache key of a block: its tokens and the key of the
// block before it.
func (c *Cache) hash(parent uint64, tokens []int32) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	var buf [8]byte
	for i := range 8 {
		buf[i] = byte(parent >> (8 * i))
	}
	h.Write(buf[:])
	for _, t := range tokens {
		buf[0], buf[1], buf[2], buf[3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
		h.Write(buf[:4])
	}
	return h.Sum64()
}

// Commit registers the sequence's full blocks in the prefix cache. Call
// it once their keys and values have been computed (after a forward
// step): from then on other sequences may share them. Blocks holding
// tokens appended without ids are not registered, and neither is a block
// whose content another block is already registered under (both stay
// correct; the duplicate is simply not findable).
func (c *Cache) Commit(id flat.SeqID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !c.prefix || !ok {
		return
	}
	bs := c.blockSize
	for i := len(s.keys); (i+1)*bs <= len(s.tokens); i++ {
		toks := s.tokens[i*bs : (i+1)*bs]
		if slices.Contains(toks, unknown) {
			return
		}
		var parent uint64
		if i > 0 {
			parent = s.keys[i-1]
		}
		k := c.hash(parent, toks)
		s.keys = append(s.keys, k)
		b := s.table[i]
		if c.keyed[b] {
			continue // shared from the cache already
		}
		if _, taken := c.index[k]; taken {
			continue
		}
		c.keyed[b], c.key[b], c.parent[b] = true, k, parent
		copy(c.btok[int(b)*bs:], toks)
		c.index[k] = b
	}
}

// Attach extends a sequence with cached blocks: tokens is what the
// sequence should hold, starting with what it holds now, and Attach
// shares every registered block that continues it, block by block, up to
// but not including the last token (whose logits are still needed). It
// returns the number of tokens attached (a multiple of the block size).
// The sequence must hold a whole number of blocks, all committed; else
// Attach attaches nothing.
func (c *Cache) Attach(id flat.SeqID, tokens []int32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !c.prefix || !ok {
		return 0
	}
	bs, have := c.blockSize, len(s.tokens)
	if have%bs != 0 || len(s.keys) != have/bs || len(tokens) <= have || !slices.Equal(tokens[:have], s.tokens) {
		return 0
	}
	limit := (len(tokens) - 1) / bs * bs // leave at least one token to compute
	c.queried += int64(max(limit-have, 0))
	got := 0
	for i := have / bs; (i+1)*bs <= limit; i++ {
		toks := tokens[i*bs : (i+1)*bs]
		var parent uint64
		if i > 0 {
			parent = s.keys[i-1]
		}
		k := c.hash(parent, toks)
		b, ok := c.index[k]
		if !ok || c.parent[b] != parent || !slices.Equal(c.btok[int(b)*bs:int(b+1)*bs], toks) {
			break
		}
		if c.refs[b] == 0 {
			c.lruRemove(b)
		}
		c.refs[b]++
		s.table = append(s.table, b)
		s.tokens = append(s.tokens, toks...)
		s.keys = append(s.keys, k)
		got += bs
	}
	c.hits += int64(got)
	return got
}

// Cached reports how many tokens of tokens Attach would share with an
// empty sequence now, and how many of those blocks no sequence references
// (attaching them takes them out of FreeBlocks). It changes nothing.
func (c *Cache) Cached(tokens []int32) (n, idle int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.prefix {
		return 0, 0
	}
	bs := c.blockSize
	var parent uint64
	for i := 0; (i+1)*bs <= (len(tokens)-1)/bs*bs; i++ {
		toks := tokens[i*bs : (i+1)*bs]
		k := c.hash(parent, toks)
		b, ok := c.index[k]
		if !ok || c.parent[b] != parent || !slices.Equal(c.btok[int(b)*bs:int(b+1)*bs], toks) {
			break
		}
		n += bs
		if c.refs[b] == 0 {
			idle++
		}
		parent = k
	}
	return n, idle
}

func (c *Cache) unregister(b int32) {
	if !c.keyed[b] {
		return
	}
	if c.index[c.key[b]] == b {
		delete(c.index, c.key[b])
	}
	c.keyed[b] = false
}

func (c *Cache) lruPush(b int32) {
	c.lruPrev[b], c.lruNext[b] = c.lruTail, -1
	if c.lruTail >= 0 {
		c.lruNext[c.lruTail] = b
	} else {
		c.lruHead = b
	}
	c.lruTail = b
	c.evictable++
}

func (c *Cache) lruRemove(b int32) {
	p, n := c.lruPrev[b], c.lruNext[b]
	if p >= 0 {
		c.lruNext[p] = n
	} else {
		c.lruHead = n
	}
	if n >= 0 {
		c.lruPrev[n] = p
	} else {
		c.lruTail = p
	}
	c.evictable--
}

// Stats is a snapshot of the pool, for tracing and tests.
type Stats struct {
	BlockSize  int
	Blocks     int                // in the pool
	FreeBlocks int                // free or evictable: what a sequence can take
	Shared     int                // blocks referenced by more than one sequence
	PerSeq     map[flat.SeqID]int // blocks in each sequence's table
	Tokens     map[flat.SeqID]int // tokens in each sequence

	CachedBlocks    int   // registered in the prefix cache (referenced or not)
	EvictableBlocks int   // of those, referenced by no sequence
	PrefixHits      int64 // tokens shared from the prefix cache so far
	PrefixQueried   int64 // tokens looked up in it so far
	Evictions       int64 // cached blocks reused for other data so far
}

// Stats returns a snapshot of the pool.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{BlockSize: c.blockSize, Blocks: c.numBlocks, FreeBlocks: len(c.free) + c.evictable,
		PerSeq: map[flat.SeqID]int{}, Tokens: map[flat.SeqID]int{},
		CachedBlocks: len(c.index), EvictableBlocks: c.evictable,
		PrefixHits: c.hits, PrefixQueried: c.queried, Evictions: c.evictions}
	for _, r := range c.refs {
		if r > 1 {
			st.Shared++
		}
	}
	for id, s := range c.seqs {
		st.PerSeq[id] = len(s.table)
		st.Tokens[id] = len(s.tokens)
	}
	return st
}

// Seqs lists the registered sequences in increasing order.
func (c *Cache) Seqs() []flat.SeqID {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]flat.SeqID, 0, len(c.seqs))
	for id := range c.seqs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Check verifies the pool's invariants: every block's reference count
// equals the number of tables that hold it, and every block is exactly
// one of referenced, free or evictable. Tests call it as a leak check.
func (c *Cache) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	count := make([]int32, c.numBlocks)
	for _, s := range c.seqs {
		for _, b := range s.table {
			count[b]++
		}
		if len(s.table) != (len(s.tokens)+c.blockSize-1)/c.blockSize {
			return fmt.Errorf("kvcache: a sequence of %d tokens has %d blocks", len(s.tokens), len(s.table))
		}
	}
	state := make([]int, c.numBlocks) // 1 referenced, 2 free, 3 evictable
	for b, r := range c.refs {
		if r != count[b] {
			return fmt.Errorf("kvcache: block %d has %d references but is in %d tables", b, r, count[b])
		}
		if r > 0 {
			state[b] = 1
		}
	}
	for _, b := range c.free {
		if state[b] != 0 {
			return fmt.Errorf("kvcache: free block %d is also in use (state %d)", b, state[b])
		}
		state[b] = 2
	}
	n := 0
	for b := c.lruHead; b >= 0; b = c.lruNext[b] {
		if state[b] != 0 || !c.keyed[b] {
			return fmt.Errorf("kvcache: evictable block %d is in use or not cached (state %d)", b, state[b])
		}
		state[b] = 3
		n++
	}
	if n != c.evictable {
		return fmt.Errorf("kvcache: %d evictable blocks counted, %d listed", c.evictable, n)
	}
	for b, st := range state {
		if st == 0 {
			return fmt.Errorf("kvcache: block %d is leaked (not referenced, free or cached)", b)
		}
	}
	return nil
}
