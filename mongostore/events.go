package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenancy/tenancy"
)

// An organization's events are documents of EventsCollection whose _id is
// "<org id>:<number>", the number zero-padded so that _id order is event
// order: a page is a range of _id on MongoDB, and reads by _id alone on
// FerretDB. A number is taken by inserting its document, so concurrent
// appends get distinct numbers with no gap; the unique index on eid (the
// event's own id) makes appends idempotent.

type eventDoc struct {
	ID    string    `bson:"_id,omitempty"`
	EID   string    `bson:"eid"`
	Org   string    `bson:"org"`
	Seq   int64     `bson:"seq,omitempty"`
	Type  string    `bson:"type"`
	Actor string    `bson:"actor,omitempty"`
	At    time.Time `bson:"at"`
	Data  bson.M    `bson:"data"`
}

type eventPos struct {
	ID  string `bson:"_id"`
	Seq int64  `bson:"seq"`
}

func eventKey(org string, seq int64) string { return fmt.Sprintf("%s:%012d", org, seq) }

func toEventDoc(ev *tenancy.Event, key string) *eventDoc {
	return &eventDoc{
		ID: key, EID: ev.ID, Org: string(ev.OrgID), Seq: ev.Seq, Type: ev.Type,
		Actor: string(ev.ActorID), At: ev.At, Data: bson.M(ev.Data),
	}
}

func (d *eventDoc) event() *tenancy.Event {
	data := make(map[string]any, len(d.Data))
	for k, v := range d.Data {
		if i, ok := v.(int32); ok {
			v = int64(i)
		}
		data[k] = v
	}
	return &tenancy.Event{
		ID: d.EID, Seq: d.Seq, Type: d.Type, OrgID: tenancy.OrgID(d.Org),
		ActorID: tenancy.AdminID(d.Actor), At: d.At.UTC(), Data: data,
	}
}

// maxAppendTries bounds the numbers an append tries past the head hint.
const maxAppendTries = 10_000

// AppendEvent implements tenancy.Store: it reads the head hint, inserts
// at the next number (the next again while the number is another
// event's), and moves the hint. With pending it marks the organization
// before and after: a process that dies between the insert and the
// second mark leaves the first, unless a delivery removed it in
// between (the deliverer's sweep then finds the event).
func (s *Store) AppendEvent(ctx context.Context, ev *tenancy.Event, pending bool) error {
	org := string(ev.OrgID)
	if err := s.markAfterAppend(ctx, org, pending); err != nil {
		return err
	}
	var head eventPos
	err := s.eventHeads.FindOne(ctx, bson.D{{Key: "_id", Value: org}}).Decode(&head)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return translate(err, "read the last event of %s", org)
	}
	seq := head.Seq
	for try := 0; ; try++ {
		if try == maxAppendTries {
			return fmt.Errorf("mongostore: append event %s: no free number after %d tries", ev.ID, try)
		}
		seq++
		key := eventKey(org, seq)
		d := toEventDoc(ev, key)
		d.Seq = seq
		_, err := s.events.InsertOne(ctx, d)
		if err == nil {
			ev.Seq = seq
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			return translate(err, "append event %s of %s", ev.ID, org)
		}
		var there eventDoc
		err = s.events.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&there)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			// Not the number: the id, recorded already elsewhere (its
			// number is unknown: the hint moves to this one's last).
			seq--
		case err != nil:
			return translate(err, "read event %s", key)
		case there.EID == ev.ID:
			ev.Seq = seq
		default:
			continue // another event's number
		}
		break
	}
	// Moved also when the event was there already: its first append
	// may have died before this.
	if seq > head.Seq {
		_, err = s.eventHeads.UpdateOne(ctx, bson.D{{Key: "_id", Value: org}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}}, options.UpdateOne().SetUpsert(true))
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return translate(err, "move the last event of %s", org)
		}
	}
	return s.markAfterAppend(ctx, org, pending)
}

func (s *Store) markAfterAppend(ctx context.Context, org string, pending bool) error {
	if !pending {
		return nil
	}
	return s.MarkEventsPending(ctx, tenancy.OrgID(org), true)
}

// Events implements tenancy.Store. On MongoDB it is one find over the
// _id index; on FerretDB, one read by _id per event.
func (s *Store) Events(ctx context.Context, org tenancy.OrgID, after int64, limit int) ([]*tenancy.Event, error) {
	out := make([]*tenancy.Event, 0, min(limit, 100))
	if s.byIDOnly.Load() {
		for seq := after + 1; len(out) < limit; seq++ {
			var d eventDoc
			err := s.events.FindOne(ctx, bson.D{{Key: "_id", Value: eventKey(string(org), seq)}}).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				break
			}
			if err != nil {
				return nil, translate(err, "read events of %s", org)
			}
			out = append(out, d.event())
		}
		return out, nil
	}
	cur, err := s.events.Find(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: eventKey(string(org), after)}, {Key: "$lt", Value: string(org) + ";"}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err, "read events of %s", org)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d eventDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongostore: decode event: %w", err)
		}
		out = append(out, d.event())
	}
	return out, translate(cur.Err(), "read events of %s", org)
}

// DeleteEvents implements tenancy.Store. On FerretDB the events are
// deleted one by one by _id, from the first to the first missing past
// the head hint.
func (s *Store) DeleteEvents(ctx context.Context, org tenancy.OrgID) error {
	id := string(org)
	if s.byIDOnly.Load() {
		var head eventPos
		err := s.eventHeads.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&head)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return translate(err, "read the last event of %s", org)
		}
		for seq := int64(1); ; seq++ {
			res, err := s.events.DeleteOne(ctx, bson.D{{Key: "_id", Value: eventKey(id, seq)}})
			if err != nil {
				return translate(err, "delete events of %s", org)
			}
			if res.DeletedCount == 0 && seq > head.Seq {
				break
			}
		}
	} else {
		_, err := s.events.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: id + ":"}, {Key: "$lt", Value: id + ";"}}}})
		if err != nil {
			return translate(err, "delete events of %s", org)
		}
	}
	for _, c := range []*mongo.Collection{s.eventHeads, s.eventCursors, s.eventMarks} {
		if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			return translate(err, "delete events of %s", org)
		}
	}
	return nil
}

// PendingEventOrgs implements tenancy.Store.
func (s *Store) PendingEventOrgs(ctx context.Context) ([]tenancy.OrgID, error) {
	cur, err := s.eventMarks.Find(ctx, bson.D{})
	if err != nil {
		return nil, translate(err, "read event marks")
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err, "read event marks")
	}
	out := make([]tenancy.OrgID, len(docs))
	for i, d := range docs {
		out[i] = tenancy.OrgID(d.ID)
	}
	return out, nil
}

// MarkEventsPending implements tenancy.Store.
func (s *Store) MarkEventsPending(ctx context.Context, org tenancy.OrgID, pending bool) error {
	filter := bson.D{{Key: "_id", Value: string(org)}}
	var err error
	if pending {
		_, err = s.eventMarks.ReplaceOne(ctx, filter, bson.D{{Key: "_id", Value: string(org)}}, options.Replace().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) {
			err = nil // a concurrent mark
		}
	} else {
		_, err = s.eventMarks.DeleteOne(ctx, filter)
	}
	return translate(err, "mark events of %s", org)
}

// EventCursor implements tenancy.Store.
func (s *Store) EventCursor(ctx context.Context, org tenancy.OrgID) (int64, error) {
	var c eventPos
	err := s.eventCursors.FindOne(ctx, bson.D{{Key: "_id", Value: string(org)}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return c.Seq, translate(err, "read the delivery cursor of %s", org)
}

// SetEventCursor implements tenancy.Store.
func (s *Store) SetEventCursor(ctx context.Context, org tenancy.OrgID, seq int64) error {
	_, err := s.eventCursors.ReplaceOne(ctx, bson.D{{Key: "_id", Value: string(org)}},
		eventPos{ID: string(org), Seq: seq}, options.Replace().SetUpsert(true))
	return translate(err, "store the delivery cursor of %s", org)
}

// UndeliveredEventOrgs implements tenancy.Store. It reads every head
// hint and cursor, then, for each organization whose cursor is not behind
// its hint, the event after the cursor (a hint a crash left behind).
func (s *Store) UndeliveredEventOrgs(ctx context.Context) ([]tenancy.OrgID, error) {
	all := func(c *mongo.Collection) (map[string]int64, error) {
		cur, err := c.Find(ctx, bson.D{})
		if err != nil {
			return nil, translate(err, "read %s", c.Name())
		}
		defer cur.Close(context.WithoutCancel(ctx))
		out := map[string]int64{}
		for cur.Next(ctx) {
			var p eventPos
			if err := cur.Decode(&p); err != nil {
				return nil, fmt.Errorf("mongostore: decode %s: %w", c.Name(), err)
			}
			out[p.ID] = p.Seq
		}
		return out, translate(cur.Err(), "read %s", c.Name())
	}
	heads, err := all(s.eventHeads)
	if err != nil {
		return nil, err
	}
	cursors, err := all(s.eventCursors)
	if err != nil {
		return nil, err
	}
	var out []tenancy.OrgID
	for org, head := range heads {
		cursor := cursors[org]
		if head <= cursor {
			err := s.events.FindOne(ctx, bson.D{{Key: "_id", Value: eventKey(org, cursor+1)}}).Err()
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue
			}
			if err != nil {
				return nil, translate(err, "read events of %s", org)
			}
		}
		out = append(out, tenancy.OrgID(org))
	}
	return out, nil
}
