package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Errors in OpenAI's shape:
//
//	HTTP/1.1 400 Bad Request
//	{"error": {"message": "max_tokens must be at least 1, not -5",
//	           "type": "invalid_request_error", "param": "max_tokens", "code": null}}
//
// The type follows the status, as OpenAI's and llama-server's do:
//
//	400, 404, 405, 413  invalid_request_error (404 for an unknown model has
//	                    code "model_not_found", an unknown URL "unknown_url")
//	401                 invalid_request_error, code "invalid_api_key"
//	429                 rate_limit_error, code "queue_full", with Retry-After
//	500                 server_error
//	503                 unavailable_error (draining, closing)
//	504                 timeout_error (Options.Timeout)
//
// param names the request field at fault ("messages[2].role"), or is null.

// apiError is an error to send to the client.
type apiError struct {
	Status  int
	Message string
	Type    string
	Param   string // "" is sent as null
	Code    string // "" is sent as null
	retry   int    // seconds, for Retry-After
}

func (e *apiError) Error() string { return e.Message }

// errorf makes an apiError with the type that goes with status.
func errorf(status int, param, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...), Type: errorType(status), Param: param, Code: code}
}

// badRequest is the common 400.
func badRequest(param, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, param, "", format, args...)
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusServiceUnavailable:
		return "unavailable_error"
	case status == http.StatusGatewayTimeout:
		return "timeout_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// errorBody is the JSON of an error.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	b := errorBody{Error: errorFields{Message: e.Message, Type: e.Type}}
	if e.Param != "" {
		b.Error.Param = &e.Param
	}
	if e.Code != "" {
		b.Error.Code = &e.Code
	}
	return b
}

// writeError sends e.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retry))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gollm"`)
	}
	writeJSON(w, e.Status, e.body())
}

// writeJSON sends v as the whole response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil { // only our own types are sent: a bug
		status, data = http.StatusInternalServerError, []byte(`{"error":{"message":"cannot encode the response","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// shorten cuts s to at most n characters for a message, saying how long
// it was.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n {
			break
		}
		k++
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(s))
}
