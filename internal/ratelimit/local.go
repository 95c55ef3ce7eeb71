package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go-chi/httprate"
)

// Local counts in memory, in httprate's counter; one mutex makes the
// estimate and the increment a single step.
type Local struct {
	mu      sync.Mutex
	counter httprate.LimitCounter
}

// NewLocal returns an in-memory store for windows of the given length.
func NewLocal(window time.Duration) *Local {
	return &Local{counter: httprate.NewLocalLimitCounter(window)}
}

// Take implements Store.
func (s *Local) Take(_ context.Context, key string, win time.Time, window time.Duration, limit int, weight float64) (bool, int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	curr, prev, err := s.counter.Get(key, win, win.Add(-window))
	if err != nil {
		return false, 0, 0, err
	}
	if !fits(curr, prev, limit, weight) {
		return false, curr, prev, nil
	}
	return true, curr + 1, prev, s.counter.IncrementBy(key, win, 1)
}

// Peek implements Store.
func (s *Local) Peek(_ context.Context, key string, win time.Time, window time.Duration) (int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter.Get(key, win, win.Add(-window))
}

// Add implements Store.
func (s *Local) Add(_ context.Context, key string, win time.Time, _ time.Duration, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counter.IncrementBy(key, win, n)
}

// fits is httprate's rule: one more request fits while the rounded
// estimate stays within the limit.
func fits(curr, prev, limit int, weight float64) bool {
	return int(math.Round(float64(prev)*weight+float64(curr)))+1 <= limit
}
