package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// devKey reads the development key file at path with parse, creating it
// first from generate when it does not exist, so what it signs or seals
// survives a restart. Production never calls it. The file is written
// aside (mode 600, in a directory of mode 700) and linked into place: of
// two instances starting together one key wins whole, and the other
// reads it.
func devKey[K any](path string, generate func() ([]byte, error), parse func(raw []byte) (K, error)) (K, error) {
	var none K
	raw, err := os.ReadFile(path)
	if err == nil {
		return parse(raw)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return none, err
	}
	content, err := generate()
	if err != nil {
		return none, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return none, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return none, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(content); err != nil {
		f.Close()
		return none, err
	}
	if err := f.Close(); err != nil {
		return none, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return none, err
	}
	if raw, err = os.ReadFile(path); err != nil {
		return none, err
	}
	return parse(raw)
}
