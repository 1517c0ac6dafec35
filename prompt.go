package gollm

import (
	"strings"

	"github.com/gollm/gollm/chat"
)

// ChatPrompt renders a conversation with the model's chat template and
// tokenizes it, exactly as ChatSession does for its turns (so that a
// server, or any caller holding whole conversations, gives the model the
// same tokens a session would):
//
//   - special-token text that came from the messages stays text (typing
//     <|im_end|> cannot forge a turn boundary) while the template's own
//     markup is special, unless parseSpecial;
//   - a template that writes the BOS token itself gets no second one
//     from a vocabulary that adds BOS (Llama 3).
//
// rendered is the template's text.
func (m *Model) ChatPrompt(msgs []chat.Message, o chat.RenderOptions, parseSpecial bool) (ids []int32, rendered string, err error) {
	rendered, literal, err := m.renderChat(msgs, o, parseSpecial)
	if err != nil {
		return nil, "", err
	}
	return m.tokenizePrompt(rendered, literal), rendered, nil
}

// renderChat renders msgs with the model's template and returns, unless
// parseSpecial, the byte ranges of the text where special-token text came
// from the messages (see chat.Template.RenderLiteral). With parseSpecial
// the ranges are nil: every special-token text is a control token.
func (m *Model) renderChat(msgs []chat.Message, o chat.RenderOptions, parseSpecial bool) (string, [][2]int, error) {
	tmpl, err := m.Template()
	if err != nil {
		return "", nil, err
	}
	if parseSpecial {
		text, err := tmpl.Render(msgs, o)
		return text, nil, err
	}
	return tmpl.RenderLiteral(msgs, o, m.tok.SpecialTexts())
}

// tokenizePrompt tokenizes a whole prompt: special-token text is matched
// as control tokens except inside the literal byte ranges, and BOS is
// added if the vocabulary asks for it.
func (m *Model) tokenizePrompt(text string, literal [][2]int) []int32 {
	// A template that writes the BOS token itself (Llama 3's starts with
	// {{ bos_token }}) must not get a second one from a vocabulary that
	// adds BOS: llama.cpp drops the template's leading BOS text when it
	// will add BOS itself (common/chat.cpp), and so does this.
	if bos := m.tok.BOS(); m.tok.AddBOS() && bos >= 0 {
		if tok := m.tok.TokenText(bos); startsWithToken(text, tok, literal) {
			text = text[len(tok):]
			shifted := make([][2]int, len(literal))
			for i, r := range literal {
				shifted[i] = [2]int{r[0] - len(tok), r[1] - len(tok)}
			}
			literal = shifted
		}
	}
	return m.tok.TokenizeLiteral(text, true, literal)
}

// startsWithToken reports whether text starts with the special token
// text tok written by the template (not inside a literal range, where the
// caller's text stays text).
func startsWithToken(text, tok string, literal [][2]int) bool {
	if tok == "" || !strings.HasPrefix(text, tok) {
		return false
	}
	for _, r := range literal {
		if r[0] < len(tok) && r[1] > 0 {
			return false
		}
	}
	return true
}
