package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stores makes the counter store of a limiter with the given window.
type Stores func(window time.Duration) Store

// LocalStores counts in this process's memory alone.
func LocalStores(window time.Duration) Store { return NewLocal(window) }

// redisTimeout bounds every Redis call: a slow Redis must cost a request
// milliseconds, not seconds, before the fallback counts locally.
const redisTimeout = 250 * time.Millisecond

// Connect returns the stores a process's limiters count in: shared through
// the Redis at url (under prefix), each falling back to this process's
// memory while Redis is down; with url empty, this process's memory alone.
// It says on log which it is. shared reports whether the last Redis call
// answered (nil without Redis); closeFn releases the Redis client.
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
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = redisTimeout, redisTimeout, redisTimeout
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{log}) })
	client := redis.NewClient(opts)
	up := new(atomic.Bool)
	if err := client.Ping(ctx).Err(); err != nil {
		log.Warn("Redis does not answer: counting rate limits locally until it does", "err", err.Error())
	} else {
		up.Store(true)
		log.Info("rate limits are shared through Redis", "addr", opts.Addr)
	}
	store := NewRedis(client, prefix)
	stores = func(window time.Duration) Store {
		return &Fallback{Primary: store, Secondary: NewLocal(window), Log: log, Up: up}
	}
	return stores, up.Load, func() { _ = client.Close() }, nil
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
