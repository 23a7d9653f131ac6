package memstore

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/tenancy/tenancy"
)

// orgEvents are an organization's events and their delivery.
type orgEvents struct {
	list    []*tenancy.Event // list[i].Seq == i+1
	ids     map[string]bool
	cursor  int64
	pending bool
}

func copyEvent(ev *tenancy.Event) *tenancy.Event {
	if ev == nil {
		return nil
	}
	c := *ev
	c.Data = maps.Clone(ev.Data)
	return &c
}

// AppendEvent implements tenancy.Store.
func (s *Store) AppendEvent(ctx context.Context, ev *tenancy.Event, pending bool) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e := s.events[ev.OrgID]
	if e == nil {
		e = &orgEvents{ids: map[string]bool{}}
		s.events[ev.OrgID] = e
	}
	if !e.ids[ev.ID] {
		ev.Seq = int64(len(e.list)) + 1
		e.list = append(e.list, copyEvent(ev))
		e.ids[ev.ID] = true
	}
	e.pending = e.pending || pending
	return nil
}

// Events implements tenancy.Store.
func (s *Store) Events(ctx context.Context, org tenancy.OrgID, after int64, limit int) ([]*tenancy.Event, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e := s.events[org]
	if e == nil || after >= int64(len(e.list)) {
		return nil, nil
	}
	page := e.list[max(after, 0):]
	page = page[:min(len(page), limit)]
	out := make([]*tenancy.Event, len(page))
	for i, ev := range page {
		out[i] = copyEvent(ev)
	}
	return out, nil
}

// DeleteEvents implements tenancy.Store.
func (s *Store) DeleteEvents(ctx context.Context, org tenancy.OrgID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.events, org)
	return nil
}

// PendingEventOrgs implements tenancy.Store.
func (s *Store) PendingEventOrgs(ctx context.Context) ([]tenancy.OrgID, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []tenancy.OrgID
	for org, e := range s.events {
		if e.pending {
			out = append(out, org)
		}
	}
	slices.SortFunc(out, func(a, b tenancy.OrgID) int { return strings.Compare(string(a), string(b)) })
	return out, nil
}

// MarkEventsPending implements tenancy.Store.
func (s *Store) MarkEventsPending(ctx context.Context, org tenancy.OrgID, pending bool) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if e := s.events[org]; e != nil {
		e.pending = pending
	}
	return nil
}

// EventCursor implements tenancy.Store.
func (s *Store) EventCursor(ctx context.Context, org tenancy.OrgID) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if e := s.events[org]; e != nil {
		return e.cursor, nil
	}
	return 0, nil
}

// SetEventCursor implements tenancy.Store.
func (s *Store) SetEventCursor(ctx context.Context, org tenancy.OrgID, seq int64) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if e := s.events[org]; e != nil {
		e.cursor = seq
	}
	return nil
}

// UndeliveredEventOrgs implements tenancy.Store.
func (s *Store) UndeliveredEventOrgs(ctx context.Context) ([]tenancy.OrgID, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []tenancy.OrgID
	for org, e := range s.events {
		if int64(len(e.list)) > e.cursor {
			out = append(out, org)
		}
	}
	slices.SortFunc(out, func(a, b tenancy.OrgID) int { return strings.Compare(string(a), string(b)) })
	return out, nil
}
