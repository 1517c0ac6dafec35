package chat

import (
	"fmt"
)

// Reading conversations from JSON, in OpenAI's chat format as Hugging Face
// accepts it:
//
//	{"role": "assistant", "content": "", "tool_calls": [
//	    {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}

// UnmarshalJSON reads one message. content and reasoning_content may be
// null (read as ""); keys other than role, content, reasoning_content and
// tool_calls go to Extra in order.
func (m *Message) UnmarshalJSON(data []byte) error {
	v, err := DecodeJSON(data)
	if err != nil {
		return err
	}
	msg, err := messageFromValue(v)
	if err != nil {
		return err
	}
	*m = msg
	return nil
}

func messageFromValue(v any) (Message, error) {
	obj, ok := v.(Object)
	if !ok {
		return Message{}, fmt.Errorf("%w: a message must be an object, not %T", ErrInvalidJSON, v)
	}
	var m Message
	for _, f := range obj {
		var err error
		switch f.Key {
		case "role":
			m.Role, err = optionalString(f)
		case "content":
			m.Content, err = optionalString(f)
		case "reasoning_content":
			m.ReasoningContent, err = optionalString(f)
		case "tool_calls":
			m.ToolCalls, err = toolCallsFromValue(f.Value)
		default:
			m.Extra = append(m.Extra, f)
		}
		if err != nil {
			return Message{}, err
		}
	}
	return m, nil
}

func optionalString(f Field) (string, error) {
	switch s := f.Value.(type) {
	case nil:
		return "", nil
	case string:
		return s, nil
	}
	return "", fmt.Errorf("%w: %q must be a string, not %T", ErrInvalidJSON, f.Key, f.Value)
}

func toolCallsFromValue(v any) ([]ToolCall, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: tool_calls must be a list", ErrInvalidJSON)
	}
	calls := make([]ToolCall, len(list))
	for i, item := range list {
		obj, ok := item.(Object)
		if !ok {
			return nil, fmt.Errorf("%w: tool call %d must be an object", ErrInvalidJSON, i)
		}
		c := &calls[i]
		for _, f := range obj {
			var err error
			switch f.Key {
			case "id":
				c.ID, err = optionalString(f)
			case "type":
				c.Type, err = optionalString(f)
			case "function":
				fn, ok := f.Value.(Object)
				if !ok {
					return nil, fmt.Errorf("%w: tool call %d: function must be an object", ErrInvalidJSON, i)
				}
				for _, ff := range fn {
					switch ff.Key {
					case "name":
						c.Function.Name, err = optionalString(ff)
					case "arguments":
						c.Function.Arguments = ff.Value
					}
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return calls, nil
}

// Request is a render request in the shape of the chat golden cases:
//
//	{"messages": [...], "add_generation_prompt": true,
//	 "options": {"enable_thinking": false, "tools": [...]}}
//
// options become template variables (RenderOptions.Extra; "tools" is
// passed as the tools). add_generation_prompt may also be given inside
// options; the top-level key wins.
type Request struct {
	Messages []Message
	Options  RenderOptions
}

// ParseRequest reads a Request from JSON.
func ParseRequest(data []byte) (Request, error) {
	v, err := DecodeJSON(data)
	if err != nil {
		return Request{}, err
	}
	obj, ok := v.(Object)
	if !ok {
		return Request{}, fmt.Errorf("%w: a request must be an object", ErrInvalidJSON)
	}
	var req Request
	raw, ok := obj.Get("messages")
	list, isList := raw.([]any)
	if !ok || !isList {
		return Request{}, fmt.Errorf("%w: \"messages\" must be a list", ErrInvalidJSON)
	}
	for i, item := range list {
		m, err := messageFromValue(item)
		if err != nil {
			return Request{}, fmt.Errorf("message %d: %w", i, err)
		}
		req.Messages = append(req.Messages, m)
	}
	if opts, ok := obj.Get("options"); ok && opts != nil {
		o, ok := opts.(Object)
		if !ok {
			return Request{}, fmt.Errorf("%w: \"options\" must be an object", ErrInvalidJSON)
		}
		req.Options.Extra = map[string]any{}
		for _, f := range o {
			req.Options.Extra[f.Key] = f.Value
		}
	}
	agp, ok := obj.Get("add_generation_prompt")
	if !ok {
		agp, ok = req.Options.Extra["add_generation_prompt"]
	}
	if ok {
		b, isBool := agp.(bool)
		if !isBool {
			return Request{}, fmt.Errorf("%w: add_generation_prompt must be true or false", ErrInvalidJSON)
		}
		req.Options.AddGenerationPrompt = b
	}
	delete(req.Options.Extra, "add_generation_prompt")
	return req, nil
}
