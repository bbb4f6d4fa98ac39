package cpgo

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"connectrpc.com/connect"

	"cpinterop/gen/kvv1"
	"cpinterop/gen/kvv1/kvv1connect"
)

// Store mirrors connect-plugin-go's KV example store (examples/kv/impl):
// Watch first sends a {UNSPECIFIED, "_watch_started"} event, Put with an
// empty key is invalid_argument, Delete notifies only when found.
type Store struct {
	mu       sync.RWMutex
	data     map[string][]byte
	watchers []*kvWatcher
}

type kvWatcher struct {
	prefix string
	ch     chan *kvv1.WatchEvent
	ctx    context.Context
}

var _ kvv1connect.KVServiceHandler = (*Store)(nil)

func NewStore() *Store { return &Store{data: map[string][]byte{}} }

func (s *Store) Get(ctx context.Context, req *connect.Request[kvv1.GetRequest]) (*connect.Response[kvv1.GetResponse], error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, found := s.data[req.Msg.Key]
	return connect.NewResponse(&kvv1.GetResponse{Value: v, Found: found}), nil
}

func (s *Store) Put(ctx context.Context, req *connect.Request[kvv1.PutRequest]) (*connect.Response[kvv1.PutResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Msg.Key == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("key cannot be empty"))
	}
	s.data[req.Msg.Key] = req.Msg.Value
	s.notify(&kvv1.WatchEvent{Type: kvv1.EventType_EVENT_TYPE_PUT, Key: req.Msg.Key, Value: req.Msg.Value})
	return connect.NewResponse(&kvv1.PutResponse{}), nil
}

func (s *Store) Delete(ctx context.Context, req *connect.Request[kvv1.DeleteRequest]) (*connect.Response[kvv1.DeleteResponse], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := s.data[req.Msg.Key]
	delete(s.data, req.Msg.Key)
	if found {
		s.notify(&kvv1.WatchEvent{Type: kvv1.EventType_EVENT_TYPE_DELETE, Key: req.Msg.Key})
	}
	return connect.NewResponse(&kvv1.DeleteResponse{Found: found}), nil
}

func (s *Store) Watch(ctx context.Context, req *connect.Request[kvv1.WatchRequest], stream *connect.ServerStream[kvv1.WatchEvent]) error {
	w := &kvWatcher{prefix: req.Msg.Prefix, ch: make(chan *kvv1.WatchEvent, 32), ctx: ctx}
	s.mu.Lock()
	s.watchers = append(s.watchers, w)
	s.mu.Unlock()
	w.ch <- &kvv1.WatchEvent{Type: kvv1.EventType_EVENT_TYPE_UNSPECIFIED, Key: "_watch_started"}
	defer func() {
		s.mu.Lock()
		for i, x := range s.watchers {
			if x == w {
				s.watchers = append(s.watchers[:i], s.watchers[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	}()
	// connect-plugin-go's PumpToStream: forward until the caller goes away.
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (s *Store) notify(ev *kvv1.WatchEvent) {
	for _, w := range s.watchers {
		if w.prefix == "" || strings.HasPrefix(ev.Key, w.prefix) {
			select {
			case w.ch <- ev:
			case <-w.ctx.Done():
			default:
			}
		}
	}
}
