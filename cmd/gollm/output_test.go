package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestLineHandler: the command line's notices are one "gollm: " line per
// record, attributes in parentheses, records below the level dropped.
func TestLineHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(newLineHandler(&b, slog.LevelInfo))
	log.Debug("routine", "path", "m.gguf")
	log.Info("no GPU used; running on the CPU", "reason", errors.New("cuda: no CUDA driver"))
	log.With("model", "m.gguf").Warn("split", "gpu_layers", 20, "layers", 32)
	log.Info("plain")
	want := "gollm: no GPU used; running on the CPU (reason: cuda: no CUDA driver)\n" +
		"gollm: split (model: m.gguf, gpu_layers: 20, layers: 32)\n" +
		"gollm: plain\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	slog.New(newLineHandler(&b, slog.LevelDebug)).Debug("routine", "path", "m.gguf")
	if b.String() != "gollm: routine (path: m.gguf)\n" {
		t.Errorf("at Debug: %q", b.String())
	}
}

// TestWriteBlocks: the piped form of run's answers, case by case: the
// thoughts in <think> tags (only when shown), an answer cut short with its
// reason, a prompt with no answer, prompt numbers when prompts outnumber
// sequences, and a long multi-line prompt shortened to one header line.
func TestWriteBlocks(t *testing.T) {
	long := "line one\n\tline two " + strings.Repeat("x", 80)
	answers := []answer{
		{Prompt: "Hi", Thoughts: "\nThe user greets me.\n", Answer: "\n\nHello!", Finish: "eog", Sequence: 1, GeneratedIDs: []int32{1}},
		{Prompt: long, Answer: "partial", Finish: "length", Sequence: 2, GeneratedIDs: []int32{1}},
		{Prompt: "esc\x1b[2J", Finish: "error", Error: "too long", Sequence: 1},
	}
	var b bytes.Buffer
	writeBlocks(&b, answers, true, true)
	header2 := "line one line two " + strings.Repeat("x", headerMax-1-len("line one line two ")) + "…"
	want := "--- prompt 1 (sequence 1): Hi ---\n<think>\nThe user greets me.\n</think>\nHello!\n" +
		"\n--- prompt 2 (sequence 2): " + header2 + " ---\npartial\n[length]\n" +
		"\n--- prompt 3 (sequence 1): esc\\x1b[2J ---\n(no answer: error)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeBlocks(&b, answers[:1], false, false)
	if want := "--- sequence 1: Hi ---\nHello!\n"; b.String() != want {
		t.Errorf("thoughts hidden, one prompt per sequence: got %q, want %q", b.String(), want)
	}
}
