package cpu

import "github.com/gollm/gollm/backend"

// Write copies n rows from src into x.
func (b *Backend) Write(x backend.Buffer, src []float32, n int) {
	copy(asMat(x).span(n), src[:n*asMat(x).cols])
}

// Err is always nil: CPU operations cannot fail once their arguments are
// checked.
func (b *Backend) Err() error { return nil }
