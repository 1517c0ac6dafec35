// Package kvcache is a paged key/value cache, shared by every sequence of a
// context.
//
// Attention needs, for every layer, the key and value vectors of all earlier
// positions of a sequence. Instead of giving each sequence a fixed slab of
// memory, the cache is one pool of fixed-size blocks (BlockSize tokens
// each, holding K and V for every layer). A sequence owns an append-only
// block table: its position p lives in block table[p/BlockSize] at offset
// p%BlockSize. Sequences take blocks from the pool as they grow and give
// them back when they are freed, so the context size is shared
// dynamically: one long conversation can use most of the pool while the
// others are short (this is vLLM's PagedAttention idea).
//
// Fork shares a sequence's full blocks with a new sequence by reference
// counting; a shared block is copied before it is written again (copy on
// write). Running out of blocks gives ErrKVFull to the sequence that asked
// and changes nothing else.
//
// The Cache does the bookkeeping only. The bytes live in a Storage, so that
// a GPU backend can keep them in device memory; HostStorage keeps them in
// Go slices for the CPU.
//
// Memory per token = 2 (K and V) × layers × kvHeads × headDim × element
// size. For Qwen3-8B (36 layers, 8 KV heads, head_dim 128) in F16 that is
// 2×36×8×128×2 = 147,456 bytes, so a 4096-token pool takes 576 MiB.
package kvcache

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Errors. Each is wrapped with the numbers involved.
var (
	ErrKVFull     = errors.New("kvcache: out of KV blocks")
	ErrUnknownSeq = errors.New("kvcache: unknown sequence")
	ErrSeqExists  = errors.New("kvcache: sequence already exists")
	ErrBadConfig  = errors.New("kvcache: invalid configuration")
	ErrBadLength  = errors.New("kvcache: invalid length")
)

// SeqID names a sequence inside one cache.
type SeqID int32

// Storage holds the K and V data of the pool's blocks. The Cache calls
// CopyBlock when copy-on-write needs a private copy of a shared block.
type Storage interface {
	CopyBlock(dst, src int)
}

// Config sizes a cache.
type Config struct {
	BlockSize int // tokens per block (16 or 32 are typical)
	Capacity  int // tokens in the whole pool; rounded up to whole blocks
}

// DefaultBlockSize is the block size used when Config.BlockSize is 0.
const DefaultBlockSize = 16

// seqState is one sequence's view of the pool.
type seqState struct {
	table  []int32 // block ids, append-only; table[i] holds positions [i*BS, (i+1)*BS)
	length int     // tokens stored (positions 0..length-1)
}

// Cache is the block pool plus one block table per sequence. It is safe
// for concurrent use.
type Cache struct {
	mu        sync.Mutex
	blockSize int
	numBlocks int
	refs      []int32 // (block) sequences referencing each block; 0 = free
	free      []int32 // stack of free block ids
	seqs      map[SeqID]*seqState
	store     Storage
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
		seqs:      map[SeqID]*seqState{},
		store:     store,
	}
	// Free list as a stack: pop from the end, so block 0 is handed out first.
	for i := range c.free {
		c.free[i] = int32(n - 1 - i)
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

// FreeBlocks is the number of unused blocks.
func (c *Cache) FreeBlocks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.free)
}

// AddSeq registers an empty sequence.
func (c *Cache) AddSeq(id SeqID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seqs[id]; ok {
		return fmt.Errorf("%w: %d", ErrSeqExists, id)
	}
	c.seqs[id] = &seqState{}
	return nil
}

// Len is the number of tokens stored for a sequence (0 if unknown).
func (c *Cache) Len(id SeqID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return s.length
	}
	return 0
}

// Blocks returns a copy of a sequence's block table.
func (c *Cache) Blocks(id SeqID) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return append([]int32(nil), s.table...)
	}
	return nil
}

// Table returns the sequence's block table itself, for the attention
// kernels of one forward step. It must not be modified, and it is only
// valid until the next Append, Truncate or Free of that sequence.
func (c *Cache) Table(id SeqID) []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.seqs[id]; ok {
		return s.table
	}
	return nil
}

// Slot is the physical row (block*BlockSize + offset) that holds position
// pos of a sequence, or -1 if that position is not allocated.
func (c *Cache) Slot(id SeqID, pos int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok || pos < 0 || pos >= s.length {
		return -1
	}
	return int(s.table[pos/c.blockSize])*c.blockSize + pos%c.blockSize
}

// Append allocates room for n more tokens at the end of a sequence and
// returns the first new position. It is all or nothing: when the pool
// cannot hold them it returns ErrKVFull and the sequence is unchanged.
// If the sequence's last block is shared with a fork and partly filled,
// it is first copied to a private block (copy on write).
func (c *Cache) Append(id SeqID, n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: append %d tokens", ErrBadLength, n)
	}
	start := s.length
	if n == 0 {
		return start, nil
	}
	need := (start+n+c.blockSize-1)/c.blockSize - len(s.table)
	// A shared, partly filled last block needs a private copy.
	cow := start%c.blockSize != 0 && c.refs[s.table[len(s.table)-1]] > 1
	if cow {
		need++
	}
	if need > len(c.free) {
		return 0, fmt.Errorf("%w: sequence %d needs %d more blocks (%d tokens at %d per block) for %d new tokens, %d of %d blocks are free",
			ErrKVFull, id, need, need*c.blockSize, c.blockSize, n, len(c.free), c.numBlocks)
	}
	if cow {
		last := len(s.table) - 1
		old := s.table[last]
		fresh := c.pop()
		c.store.CopyBlock(int(fresh), int(old))
		c.refs[old]--
		s.table[last] = fresh
		need--
	}
	for ; need > 0; need-- {
		s.table = append(s.table, c.pop())
	}
	s.length += n
	return start, nil
}

func (c *Cache) pop() int32 {
	b := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.refs[b] = 1
	return b
}

func (c *Cache) release(b int32) {
	c.refs[b]--
	if c.refs[b] == 0 {
		c.free = append(c.free, b)
	}
}

// Truncate cuts a sequence back to its first n tokens, returning the
// blocks it no longer needs to the pool (or dropping its reference to
// them, if they are shared).
func (c *Cache) Truncate(id SeqID, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	if n < 0 || n > s.length {
		return fmt.Errorf("%w: truncate sequence %d of %d tokens to %d", ErrBadLength, id, s.length, n)
	}
	keep := (n + c.blockSize - 1) / c.blockSize
	for _, b := range s.table[keep:] {
		c.release(b)
	}
	s.table = s.table[:keep]
	s.length = n
	return nil
}

// Free removes a sequence and returns its blocks.
func (c *Cache) Free(id SeqID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.seqs[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSeq, id)
	}
	for _, b := range s.table {
		c.release(b)
	}
	delete(c.seqs, id)
	return nil
}

// Fork makes dst a copy of src's first n tokens (n = -1: all of them). Full
// blocks are shared by reference count, never copied; a partly filled last
// block is shared too and copied on the first write by either sequence.
func (c *Cache) Fork(dst, src SeqID, n int) error {
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
		n = s.length
	}
	if n > s.length {
		return fmt.Errorf("%w: fork %d tokens of a %d-token sequence", ErrBadLength, n, s.length)
	}
	keep := (n + c.blockSize - 1) / c.blockSize
	d := &seqState{table: append([]int32(nil), s.table[:keep]...), length: n}
	for _, b := range d.table {
		c.refs[b]++
	}
	c.seqs[dst] = d
	return nil
}

// Stats is a snapshot of the pool, for tracing and tests.
type Stats struct {
	BlockSize  int
	Blocks     int           // in the pool
	FreeBlocks int           // unused
	Shared     int           // blocks referenced by more than one sequence
	PerSeq     map[SeqID]int // blocks in each sequence's table
	Tokens     map[SeqID]int // tokens in each sequence
}

// Stats returns a snapshot of the pool.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{BlockSize: c.blockSize, Blocks: c.numBlocks, FreeBlocks: len(c.free),
		PerSeq: map[SeqID]int{}, Tokens: map[SeqID]int{}}
	for _, r := range c.refs {
		if r > 1 {
			st.Shared++
		}
	}
	for id, s := range c.seqs {
		st.PerSeq[id] = len(s.table)
		st.Tokens[id] = s.length
	}
	return st
}

// Seqs lists the registered sequences in increasing order.
func (c *Cache) Seqs() []SeqID {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]SeqID, 0, len(c.seqs))
	for id := range c.seqs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	return ids
}
