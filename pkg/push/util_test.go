package push

import (
	"bytes"
	"io"
	"net/http"
)

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

// readAllAndRestore reads r's body and puts an identical one back.
func readAllAndRestore(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
