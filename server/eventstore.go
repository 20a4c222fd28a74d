package server

import (
	"container/list"
	"context"
	"fmt"
	"iter"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// eventStore keeps the recent SSE events of each session so a client can
// resume a stream with Last-Event-ID (2025-11-25 resumability).
//
// go-sdk's MemoryEventStore keeps an entry for every stream a session ever
// opened (one per POST) and, once over its byte budget, walks all of them on
// every append: a long session makes each call slower. This store bounds
// both: whole streams are dropped oldest first when a session has more than
// maxStreams or all sessions together hold more than maxBytes, in O(1) per
// event. A dropped stream can no longer be resumed (the client gets the
// SDK's "data purged" answer and re-sends), which only affects streams many
// calls old.
type eventStore struct {
	mu        sync.Mutex
	maxBytes  int
	maxPerSes int
	nBytes    int
	order     *list.List // of *eventStream, oldest first
	sessions  map[string]map[string]*eventStream
}

type eventStream struct {
	session, id string
	first       int      // index of data[0]
	data        [][]byte // retained events
	size        int
	lost        bool // appended to after being dropped: indexes unknown
	elem        *list.Element
}

var _ mcp.EventStore = (*eventStore)(nil)

func newEventStore(maxBytes, maxStreamsPerSession int) *eventStore {
	return &eventStore{maxBytes: maxBytes, maxPerSes: maxStreamsPerSession, order: list.New(), sessions: map[string]map[string]*eventStream{}}
}

func (s *eventStore) stream(session, id string, create bool) *eventStream {
	streams := s.sessions[session]
	if st := streams[id]; st != nil || !create {
		return st
	}
	if streams == nil {
		streams = map[string]*eventStream{}
		s.sessions[session] = streams
	}
	st := &eventStream{session: session, id: id}
	st.elem = s.order.PushBack(st)
	streams[id] = st
	if len(streams) > s.maxPerSes {
		s.dropOldestOf(session)
	}
	return st
}

// dropOldestOf drops the session's oldest stream (streams of one session
// are in creation order within the global list).
func (s *eventStore) dropOldestOf(session string) {
	for e := s.order.Front(); e != nil; e = e.Next() {
		if st := e.Value.(*eventStream); st.session == session {
			s.drop(st)
			return
		}
	}
}

func (s *eventStore) drop(st *eventStream) {
	s.order.Remove(st.elem)
	s.nBytes -= st.size
	delete(s.sessions[st.session], st.id)
	if len(s.sessions[st.session]) == 0 {
		delete(s.sessions, st.session)
	}
}

func (s *eventStore) Open(_ context.Context, session, stream string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream(session, stream, true)
	return nil
}

func (s *eventStore) Append(_ context.Context, session, stream string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(session, stream, false)
	if st == nil {
		// Dropped while still in use: keep going, but never claim to know
		// where its events start.
		st = s.stream(session, stream, true)
		st.lost = true
	}
	st.data = append(st.data, data)
	st.size += len(data)
	s.nBytes += len(data)
	for s.nBytes > s.maxBytes && s.order.Len() > 1 {
		oldest := s.order.Front().Value.(*eventStream)
		if oldest == st {
			break
		}
		s.drop(oldest)
	}
	return nil
}

func (s *eventStore) After(_ context.Context, session, stream string, index int) iter.Seq2[[]byte, error] {
	s.mu.Lock()
	st := s.stream(session, stream, false)
	var out [][]byte
	var err error
	switch {
	case st == nil || st.lost:
		err = fmt.Errorf("stream %s of session %s: %w", stream, session, mcp.ErrEventsPurged)
	case index+1 < st.first:
		err = fmt.Errorf("stream %s of session %s, after event %d: %w", stream, session, index, mcp.ErrEventsPurged)
	case index+1-st.first < len(st.data):
		out = append(out, st.data[index+1-st.first:]...)
	}
	s.mu.Unlock()
	return func(yield func([]byte, error) bool) {
		if err != nil {
			yield(nil, err)
			return
		}
		for _, d := range out {
			if !yield(d, nil) {
				return
			}
		}
	}
}

func (s *eventStore) SessionClosed(_ context.Context, session string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.sessions[session] {
		s.order.Remove(st.elem)
		s.nBytes -= st.size
	}
	delete(s.sessions, session)
	return nil
}

// len reports the retained streams and bytes (tests).
func (s *eventStore) len() (streams, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len(), s.nBytes
}
