package main

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a bar on a terminal (github.com/schollz/progressbar) and
// nothing anywhere else: piped or redirected output, and --quiet, get no
// bar. It is fed (done, total) pairs, as ModelOptions.OnProgress gives
// them, from one goroutine at a time.
type progress struct {
	bar  *progressbar.ProgressBar
	done bool
}

// newProgress returns a bar labelled what on w, or nil (a bar that draws
// nothing) when w is not a terminal or quiet is set.
func newProgress(w io.Writer, what string, quiet bool) *progress {
	if quiet || !isTerminal(w) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

// update moves the bar to done of total; at total it is drawn full and
// cleared.
func (p *progress) update(done, total int64) {
	if p == nil || p.done {
		return
	}
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	p.bar.Set64(done)
	if done >= total {
		p.bar.Finish()
		p.done = true
	}
}
