package validator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/tap"
)

// FuzzReadAnswer feeds the back office's answer hostile bytes: it never
// panics, a 200 yields an Ack or an error, never both, and a refusal's
// error text is bounded.
func FuzzReadAnswer(f *testing.F) {
	ack, _ := json.Marshal(tap.Ack{Stored: []uuid.UUID{uuid.Must(uuid.NewV7())}, Duplicates: 1})
	ref, _ := json.Marshal(tap.Refusal{Error: "bad", Items: []tap.ItemError{{Index: 3, ID: "x", Error: "tap: invalid record"}}})
	f.Add(200, "", ack)
	f.Add(400, "", ref)
	f.Add(429, "7", ref)
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte("{"))
	f.Add(413, "", []byte(nil))
	f.Add(200, "", []byte(`{"stored":["not-a-uuid"]}`))
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		a, ue := readAnswer(status, retry, body, now)
		if (a == nil) == (ue == nil) {
			t.Fatalf("status %d: ack %v and error %v", status, a, ue)
		}
		if ue != nil {
			if ue.RetryAfter < 0 || ue.RetryAfter > maxRetryAfter {
				t.Fatalf("Retry-After %q gave %v", retry, ue.RetryAfter)
			}
			if len(ue.Error()) > 1000 {
				t.Fatalf("unbounded error: %d bytes", len(ue.Error()))
			}
		}
		if status != http.StatusOK && a != nil {
			t.Fatal("an Ack from a refusal")
		}
	})
}

func TestInBatch(t *testing.T) {
	a, b, c := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	got := inBatch([]uuid.UUID{a, c, a}, []tap.Record{{ID: a}, {ID: b}})
	require.Equal(t, []uuid.UUID{a}, got, "no id outside the batch, none twice")
}
