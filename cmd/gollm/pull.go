package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/gollm/gollm/internal/hub"
)

func init() {
	register(command{name: "pull", summary: "download a GGUF model from Hugging Face (REPO:QUANT) or a URL into the cache", run: runPull})
	register(command{name: "ls", summary: "list the models in the cache", run: runLs})
	register(command{name: "rm", summary: "remove a model from the cache", run: runRm})
}

const pullHelp = `Usage: gollm pull [--quiet] [--sha256 HEX] [--endpoint URL] REPO[:QUANT] | URL

Downloads a GGUF model into the model cache (under the user's cache
directory: gollm/models) and prints its path on stdout. REPO is a
Hugging Face repository, OWNER/NAME; QUANT picks the .gguf file whose
name contains it, ignoring case (Q4_K_M, q8_0, IQ4_XS); without it, the
repository's only GGUF file, or its Q4_K_M. A URL downloads that .gguf.

The download resumes where an interrupted one stopped (HTTP Range), is
checked against the SHA-256 the hub publishes (nothing is kept on a
mismatch), and is renamed into place only when complete. A different
file already in the cache is never overwritten (gollm rm it first).

Then: gollm run --model hf:REPO:QUANT (no network needed).

Environment: HF_TOKEN, a Hugging Face token for gated or private
repositories (sent to the hub only); GOLLM_HF_ENDPOINT, the hub's URL
(like huggingface_hub's HF_ENDPOINT; --endpoint wins).

Example: gollm pull Qwen/Qwen3-8B-GGUF:Q4_K_M

Flags:
`

// hubEndpoint is --endpoint, else $GOLLM_HF_ENDPOINT, else the hub.
func hubEndpoint(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if e := os.Getenv("GOLLM_HF_ENDPOINT"); e != "" {
		return e
	}
	return hub.DefaultEndpoint
}

// parseOneArg parses flags around exactly one positional argument (flags
// may come before or after it) and returns it.
func parseOneArg(fs *pflag.FlagSet, args []string, what string) (string, error) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(expandArgs(fs, args)) // pflag takes flags on either side of the argument
	fs.SetOutput(out)
	if err == nil && fs.NArg() == 1 {
		return fs.Arg(0), nil
	}
	switch {
	case errors.Is(err, pflag.ErrHelp):
		fs.Usage()
		return "", err
	case err != nil:
		return "", fmt.Errorf("%w: %s (see %s -h)", errUsage, flagErrorText(err), fs.Name())
	case fs.NArg() == 0:
		return "", fmt.Errorf("%w: %s is required (see %s -h)", errUsage, what, fs.Name())
	}
	return "", fmt.Errorf("%w: unexpected argument %s (see %s -h)", errUsage, quote(fs.Arg(0)), fs.Name())
}

func runPull(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pull", stderr)
	fs.Usage = func() { printHelp(fs, pullHelp) }
	quiet := fs.Bool("quiet", false, "print nothing but the path (and errors)")
	want := fs.String("sha256", "", "the SHA-256 the file must have (for URLs whose server publishes none)")
	endpoint := fs.String("endpoint", "", "the hub's base URL (default: $GOLLM_HF_ENDPOINT, else "+hub.DefaultEndpoint+")")
	arg, err := parseOneArg(fs, args, "a model (REPO[:QUANT] or URL)")
	if err != nil {
		return err
	}
	ref, err := hub.ParseRef(arg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *want != "" && !isSHA256(*want) {
		return fmt.Errorf("%w: --sha256 is 64 hex digits, not %s", errUsage, quote(*want))
	}
	ep := hubEndpoint(*endpoint)
	if !strings.HasPrefix(ep, "https://") && !strings.HasPrefix(ep, "http://") {
		return fmt.Errorf("%w: the hub endpoint is an http(s) URL, not %s", errUsage, quote(ep))
	}
	st, err := hub.DefaultStore()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	c := &hub.Client{Endpoint: ep, Token: os.Getenv("HF_TOKEN"), Retries: 5}
	if !*quiet {
		c.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if isTerminal(stderr) {
			p := &progressLine{w: stderr, name: arg}
			c.Progress = p.update
			defer p.end()
		} else {
			fmt.Fprintf(stderr, "gollm pull: getting %s\n", arg)
		}
	}
	res, err := c.Pull(ctx, st, ref, strings.ToLower(*want))
	if err != nil {
		return err
	}
	if !*quiet {
		switch {
		case res.Already:
			fmt.Fprintf(stderr, "gollm pull: already in the cache (%s, %s)\n", sizeText(res.Size), shortSHA(res.SHA256))
		default:
			fmt.Fprintf(stderr, "gollm pull: done: %s, %s\n", sizeText(res.Size), shortSHA(res.SHA256))
		}
		if ref.URL == "" {
			fmt.Fprintf(stderr, "gollm pull: run it with: gollm run --model %s\n", res.Ref)
		}
	}
	fmt.Fprintln(stdout, res.Path)
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func shortSHA(s string) string {
	if s == "" {
		return "no SHA-256 published, not verified"
	}
	return "SHA-256 " + s[:12] + "… verified"
}

// sizeText is n bytes in the largest binary unit under 1024 of it.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// progressLine redraws one line on a terminal: the model, the percentage
// and the bytes, at most ten times a second.
type progressLine struct {
	w     io.Writer
	name  string
	last  time.Time
	drawn bool
}

func (p *progressLine) update(done, total int64) {
	if done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(p.w, "\r\x1b[2Kpulling %s: %5.1f%% of %s", visible(p.name, false), pct, sizeText(total))
	p.drawn = true
}

func (p *progressLine) end() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

const lsHelp = `Usage: gollm ls

Lists the models in the model cache (what gollm pull downloaded): the
repository, the quantization, the size and the file. Use one with
gollm run --model hf:REPO:QUANT; remove one with gollm rm REPO:QUANT (or
url:HOST/FILE for a model pulled from a URL).

Example: gollm ls

Flags:
`

func runLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ls", stderr)
	fs.Usage = func() { printHelp(fs, lsHelp) }
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	st, err := hub.DefaultStore()
	if err != nil {
		return err
	}
	ents, err := st.List()
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		fmt.Fprintf(stderr, "gollm ls: no models in %s; get one with: gollm pull REPO:QUANT\n", st.Dir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REPO\tQUANT\tSIZE\tFILE")
	for _, e := range ents {
		repo := e.Repo
		if strings.HasPrefix(e.Ref, "url:") {
			repo = "url:" + e.Repo
		}
		q := e.Quant
		if q == "" {
			q = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", visible(repo, false), visible(q, false), sizeText(e.Size), visible(e.File, false))
	}
	return tw.Flush()
}

const rmHelp = `Usage: gollm rm REPO[:QUANT] | URL | url:HOST/FILE

Removes a model from the model cache (and any unfinished download of
it). REPO:QUANT is as in gollm pull (hf: in front is fine); gollm ls
shows what there is.

Example: gollm rm Qwen/Qwen3-8B-GGUF:Q4_K_M

Flags:
`

func runRm(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rm", stderr)
	fs.Usage = func() { printHelp(fs, rmHelp) }
	arg, err := parseOneArg(fs, args, "a model (REPO[:QUANT], URL or url:HOST/FILE)")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(arg, "url:") {
		if _, err := hub.ParseRef(arg); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	st, err := hub.DefaultStore()
	if err != nil {
		return err
	}
	p, err := st.Remove(arg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %s\n", p)
	return nil
}
