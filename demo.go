package gollm

import (
	"context"

	"github.com/gollm/gollm/internal/demo"
)

// DemoModelPath returns the path of the built-in demonstration model, the
// one `gollm run` uses when no --model is given: a small Qwen3 (4 layers,
// width 256) with the real DeepSeek-R1-0528-Qwen3 tokenizer and chat
// template, and random weights. It runs anywhere in a moment and shows
// every part of the engine at work, but its text is noise.
//
// The model is synthesized on first use (a second or so; ctx stops it,
// leaving no partial file) and cached in a directory of the user's own:
// gollm under os.UserCacheDir. A cached file that is not the user's own,
// or that others can write to, is refused rather than loaded.
func DemoModelPath(ctx context.Context) (string, error) {
	path, _, err := demo.PathContext(ctx)
	return path, err
}
