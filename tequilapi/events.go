package tequilapi

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Event types published on the node's event bus and sent by GET /events.
const (
	// EventSessionStarted: a provider session was admitted (data:
	// ProviderSessionDTO).
	EventSessionStarted = "session-started"
	// EventSessionUpdated: a live provider session's counters changed
	// (data: ProviderSessionDTO).
	EventSessionUpdated = "session-updated"
	// EventSessionEnded: a provider session ended (data:
	// ProviderSessionDTO, its last state).
	EventSessionEnded = "session-ended"
	// EventConnection: the consumer connection changed (data:
	// ConnectionEvent).
	EventConnection = "connection"
	// EventEarnings: the provider's earnings changed (data: EarningsDTO).
	EventEarnings = "earnings"
)

// DefaultMaxSubscribers bounds the GET /events streams open at once.
const DefaultMaxSubscribers = 16

// subscriberBuffer is how many events a slow subscriber may lag behind
// before it is dropped (its EventSource reconnects and gets the state).
const subscriberBuffer = 64

// Event is one server-sent event.
type Event struct {
	// Type is one of the Event* constants (the SSE event name).
	Type string `json:"type"`
	// Data is the payload, sent as JSON.
	Data any `json:"data"`
}

// ConnectionEvent is the data of a connection event.
type ConnectionEvent struct {
	// Connected says whether a connection is up; Status is set when it is.
	Connected bool `json:"connected"`
	// Status is the connection status (as GET /connection).
	Status *ConnectionStatus `json:"status,omitempty"`
}

// Events is the node's event bus: parts publish state changes, GET
// /events streams them to subscribers. Events published with a key are
// retained (the latest per key) and replayed to each new subscriber, so
// a page that subscribes sees the current state first. The zero value is
// not usable; call NewEvents.
type Events struct {
	max int

	mu     sync.Mutex
	subs   map[chan Event]struct{}
	retain map[string]Event
	closed bool
}

// NewEvents returns a bus with at most maxSubs subscribers (0:
// DefaultMaxSubscribers).
func NewEvents(maxSubs int) *Events {
	if maxSubs <= 0 {
		maxSubs = DefaultMaxSubscribers
	}
	return &Events{max: maxSubs, subs: map[chan Event]struct{}{}, retain: map[string]Event{}}
}

// Publish sends ev to every subscriber without blocking: a subscriber
// whose buffer is full is dropped (its channel closed). key, when not
// empty, retains ev for new subscribers; forget, when true, removes key
// instead (a session that ended).
func (e *Events) Publish(key string, forget bool, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if key != "" {
		if forget {
			delete(e.retain, key)
		} else {
			e.retain[key] = ev
		}
	}
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// Close ends every subscription (their streams end, so a server shutting
// down does not wait for them) and refuses new ones.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for ch := range e.subs {
		delete(e.subs, ch)
		close(ch)
	}
}

// ErrEventsClosed is returned by Subscribe after Close.
var ErrEventsClosed = NewError(http.StatusServiceUnavailable, "shutting_down", "the node is shutting down")

// ErrTooManySubscribers is returned by Subscribe when the bus is full.
var ErrTooManySubscribers = NewError(http.StatusServiceUnavailable, "too_many_subscribers", "too many open event streams")

// Subscribe returns a channel that first receives the retained events
// (ordered by key) and then every published one, and a function that
// unsubscribes. The channel is closed when the subscriber falls behind.
func (e *Events) Subscribe() (<-chan Event, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, ErrEventsClosed
	}
	if len(e.subs) >= e.max {
		return nil, nil, ErrTooManySubscribers
	}
	keys := make([]string, 0, len(e.retain))
	for k := range e.retain {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ch := make(chan Event, subscriberBuffer+len(keys))
	for _, k := range keys {
		ch <- e.retain[k]
	}
	e.subs[ch] = struct{}{}
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}, nil
}

// eventsHeartbeat is how often an idle stream gets a comment line, so
// proxies and the browser keep it open.
const eventsHeartbeat = 15 * time.Second

// EventRoutes is GET /events: the bus as a text/event-stream.
func EventRoutes(bus *Events, log *slog.Logger) []Route {
	log = cmp.Or(log, slog.Default())
	return []Route{{
		Method: http.MethodGet, Path: "/events",
		Op: Operation{
			Summary: "Server-sent events (text/event-stream): session-started, session-updated, session-ended (data: ProviderSession), " +
				"connection (data: ConnectionEvent), earnings (data: Earnings); the current state is sent first",
			Tags: []string{"node"}, ContentType: "text/event-stream", Errors: []int{http.StatusServiceUnavailable},
		},
		Handler: func(w http.ResponseWriter, r *http.Request) {
			ch, unsub, err := bus.Subscribe()
			if err != nil {
				WriteError(w, log, err)
				return
			}
			defer unsub()
			rc := http.NewResponseController(w)
			// The server's write timeout is for ordinary answers.
			_ = rc.SetWriteDeadline(time.Time{})
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
			tick := time.NewTicker(eventsHeartbeat)
			defer tick.Stop()
			for {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
					if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
						return
					}
				case ev, ok := <-ch:
					if !ok {
						return // fell behind (the client reconnects) or closed
					}
					data, err := json.Marshal(ev.Data)
					if err != nil {
						log.Error("tequilapi: encode event", "type", ev.Type, "err", err)
						continue
					}
					if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data); err != nil {
						return
					}
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		},
	}}
}
