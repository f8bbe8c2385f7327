package validator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/faregate/faregate/tap"
	"github.com/faregate/faregate/validator"
)

// A gate journals a decided tap before it opens, then marks it uploaded
// once the back office's acknowledgement names it.
func ExampleJournal() {
	dir, _ := os.MkdirTemp("", "journal-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	j, err := validator.OpenJournal(ctx, filepath.Join(dir, "journal.db"), validator.JournalOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()

	at := time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)
	r := &tap.Record{ID: uuid.Must(uuid.NewV7()), Gate: "G-1", Time: at, Kind: tap.KindEMV,
		Decision: tap.Reject, Reason: "oda_failed", ODA: tap.ODA{Method: "fDDA"}}
	if err := j.Append(ctx, r); err != nil { // committed with fsync: now the gate may signal
		fmt.Println(err)
		return
	}
	fmt.Println("seq", r.Seq, "unsent", j.Stats().Unsent)

	n, _ := j.MarkUploaded(ctx, []uuid.UUID{r.ID}, at.Add(time.Minute))
	fmt.Println("acknowledged", n, "unsent", j.Stats().Unsent)
	// Output:
	// seq 1 unsent 1
	// acknowledged 1 unsent 0
}
