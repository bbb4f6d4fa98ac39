package cpgo

// Follows connect-plugin-go's ratelimit.go: a token bucket per key, its
// Connect interceptor (resource_exhausted) and HTTP wrapper (429). The
// original declares ServeConfig.RateLimiter but Serve never applies it;
// its hosts are not rate limited unless they wrap handlers themselves (the
// platform host does with --rate-limit). Kept: two first requests of a new
// key may race and create two buckets (the last one wins); buckets idle
// 5 min are dropped each minute.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
)

type Rate struct {
	RequestsPerSecond float64
	Burst             int
}

type RateLimiter interface {
	Allow(key string, limit Rate) bool
	Close()
}

type TokenBucketLimiter struct {
	mu      sync.RWMutex
	buckets map[string]*bucket
	stopCh  chan struct{}
	stopped bool
}

type bucket struct {
	mu         sync.Mutex
	tokens     float64
	capacity   float64
	refillRate float64
	lastRefill time.Time
}

func NewTokenBucketLimiter() *TokenBucketLimiter {
	l := &TokenBucketLimiter{buckets: map[string]*bucket{}, stopCh: make(chan struct{})}
	go l.cleanup()
	return l
}

func (l *TokenBucketLimiter) Allow(key string, limit Rate) bool {
	l.mu.RLock()
	b, ok := l.buckets[key]
	l.mu.RUnlock()
	if !ok {
		b = &bucket{tokens: float64(limit.Burst), capacity: float64(limit.Burst),
			refillRate: limit.RequestsPerSecond, lastRefill: time.Now()}
		l.mu.Lock()
		l.buckets[key] = b
		l.mu.Unlock()
	}
	return b.take(limit)
}

func (l *TokenBucketLimiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		close(l.stopCh)
		l.stopped = true
	}
}

func (l *TokenBucketLimiter) cleanup() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-l.stopCh:
			return
		case <-t.C:
			l.mu.Lock()
			threshold := time.Now().Add(-5 * time.Minute)
			for k, b := range l.buckets {
				b.mu.Lock()
				if b.lastRefill.Before(threshold) {
					delete(l.buckets, k)
				}
				b.mu.Unlock()
			}
			l.mu.Unlock()
		}
	}
}

func (b *bucket) take(limit Rate) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capacity = float64(limit.Burst)
	b.refillRate = limit.RequestsPerSecond
	now := time.Now()
	b.tokens += now.Sub(b.lastRefill).Seconds() * b.refillRate
	if b.tokens > b.capacity {
		b.tokens = b.capacity
	}
	b.lastRefill = now
	if b.tokens >= 1.0 {
		b.tokens--
		return true
	}
	return false
}

// RateLimitInterceptor: unary calls only (streams pass unlimited).
func RateLimitInterceptor(limiter RateLimiter, keyOf func(connect.AnyRequest) string, limit Rate) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			key := keyOf(req)
			if !limiter.Allow(key, limit) {
				return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limit exceeded for %s", key))
			}
			return next(ctx, req)
		}
	}
}

func RateLimitHTTPHandler(h http.Handler, limiter RateLimiter, keyOf func(*http.Request) string, limit Rate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limiter.Allow(keyOf(r), limit) {
			http.Error(w, "Rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// DefaultRateLimitKeyExtractor: "runtime:" + the (unauthenticated) header,
// else "ip:" + the peer address (host and port: every connection of an
// anonymous caller gets its own bucket).
func DefaultRateLimitKeyExtractor(req connect.AnyRequest) string {
	if id := req.Header().Get("X-Plugin-Runtime-ID"); id != "" {
		return "runtime:" + id
	}
	return "ip:" + req.Peer().Addr
}

func HTTPRateLimitKeyExtractor(r *http.Request) string {
	if id := r.Header.Get("X-Plugin-Runtime-ID"); id != "" {
		return "runtime:" + id
	}
	return "ip:" + r.RemoteAddr
}
