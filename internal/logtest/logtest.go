// Package logtest gives tests a sink for what a server writes (its log, its
// stdout and stderr) that they can read while the server is still writing.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that is safe to write and read concurrently.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
