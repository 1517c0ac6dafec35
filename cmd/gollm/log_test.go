package main

import (
	"bytes"
	"errors"
	"log/slog"
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
