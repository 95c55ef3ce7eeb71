package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stores makes the counter store of a limiter with the given window.
type Stores func(window time.Duration) Store

// LocalStores counts in this process's memory alone.
func LocalStores(window time.Duration) Store { return NewLocal(window) }

// redisTimeout bounds every Redis call: a slow Redis must cost a request
// milliseconds, not seconds, before the fallback counts locally; and only
// the request that finds it down waits that long, as every limiter then
// counts locally until a background probe finds Redis back.
const redisTimeout = 250 * time.Millisecond

// Connect returns the stores a process's limiters count in: shared through
// the Redis at url (under prefix), each falling back to this process's
// memory while Redis is down; with url empty, this process's memory alone.
// It says on log which it is. shared reports whether Redis answers now
// (nil without a Redis); close releases the Redis client.
func Connect(ctx context.Context, url, prefix string, log *slog.Logger) (stores Stores, shared func() bool, closeFn func(), err error) {
	if url == "" {
		log.Info("rate limits are counted by this instance alone; set REDIS_URL to share them between instances")
		return LocalStores, nil, func() {}, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		// go-redis's error may quote the URL, password included.
		return nil, nil, nil, errors.New("ratelimit: the Redis URL cannot be parsed")
	}
	// A request waits for Redis at most redisTimeout, then counts locally:
	// no retries (go-redis retries three times by default, with backoff,
	// which made a stopped Redis cost a request about 1.8 s), and no waiting
	// for a pooled connection longer than for an answer.
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
	opts.PoolTimeout, opts.MaxRetries, opts.ContextTimeoutEnabled = redisTimeout, -1, true
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{log}) })
	client := redis.NewClient(opts)
	health := &Health{Log: log, Probe: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, redisTimeout)
		defer cancel()
		return client.Ping(ctx).Err()
	}}
	if err := health.Probe(ctx); err != nil {
		log.Warn("Redis does not answer: counting rate limits locally until it does", "err", err.Error())
		health.failed(err, false)
	} else {
		log.Info("rate limits are shared through Redis", "addr", opts.Addr)
	}
	redisStore := NewRedis(client, prefix)
	stores = func(window time.Duration) Store {
		return &Fallback{Primary: redisStore, Secondary: NewLocal(window), Log: log, Health: health}
	}
	return stores, health.Up, func() { health.Close(); _ = client.Close() }, nil
}

// setRedisLogger sets go-redis's logger, a process-wide variable, once: a
// second Connect (tests build many servers) must not race the first's client.
var setRedisLogger sync.Once

// redisLogger sends go-redis's own complaints to the debug log: the
// fallback store reports an outage once, as a warning.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
