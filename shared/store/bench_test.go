package store_test

import (
	"fmt"
	"testing"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
	"github.com/shopspring/decimal"
)

// benchDocs returns n documents over five days; tag changes ids and hashes.
func benchDocs(n int, tag string, gen int64) []store.Cost {
	out := make([]store.Cost, n)
	for i := range out {
		rec := &costcsv.Record{
			ID:              fmt.Sprintf("%s-%06d", tag, i),
			Line:            i + 2,
			ContentHash:     fmt.Sprintf("%s-h%06d", tag, i),
			Date:            fmt.Sprintf("2026-10-%02d", i%5+1),
			BillingCurrency: "EUR",
			BilledCost:      decimal.New(int64(i)*1234567, -7),
			EffectiveCost:   decimal.New(int64(i)*1234567, -7),
			Quantity:        decimal.NewFromInt(1),
			ResourceID:      "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm",
			Tags:            costcsv.NewTags(map[string]string{"env": "prod", "owner": "team-a"}),
		}
		names, values := make([]string, 60), make([]string, 60)
		for c := range 60 { // a Cost Details line has about 60 columns
			names[c], values[c] = fmt.Sprintf("Column%02d", c), fmt.Sprintf("value-%d-%d", i, c)
		}
		rec.Raw = costcsv.NewRaw(names, values)
		out[i] = store.NewCost(rec, "/subscriptions/s", "ActualCost", "w", gen, "part.csv")
	}
	return out
}

// benchUpsert measures full writes (new ids every round), skips (the same
// documents again) and generation patches (unchanged content, a new
// generation every round), and reports documents per second.
func benchUpsert(b *testing.B, s storetest.Store) {
	const n = 500
	run := func(b *testing.B, docs func(round int) []store.Cost, check func(store.WriteStats) bool) {
		var rc float64
		for round := 0; b.Loop(); round++ {
			b.StopTimer()
			ds := docs(round)
			b.StartTimer()
			st, err := s.UpsertCosts(b.Context(), ds)
			if err != nil {
				b.Fatal(err)
			}
			if !check(st) {
				b.Fatalf("round %d: unexpected stats %+v", round, st)
			}
			rc += st.RequestCharge
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "docs/s")
		b.ReportMetric(rc/float64(n*b.N), "RU/doc")
	}
	b.Run("write", func(b *testing.B) {
		run(b, func(round int) []store.Cost { return benchDocs(n, fmt.Sprintf("w%d", round), 1) },
			func(st store.WriteStats) bool { return st.Written == n })
	})
	same := benchDocs(n, "s", 1)
	if _, err := s.UpsertCosts(b.Context(), same); err != nil {
		b.Fatal(err)
	}
	b.Run("skip", func(b *testing.B) {
		run(b, func(int) []store.Cost { return same }, func(st store.WriteStats) bool { return st.Skipped == n })
	})
	b.Run("patch", func(b *testing.B) {
		run(b, func(round int) []store.Cost { return benchDocs(n, "s", int64(round+2)) },
			func(st store.WriteStats) bool { return st.Patched == n })
	})
}

func BenchmarkMemoryUpsert(b *testing.B) {
	benchUpsert(b, store.NewMemory())
}

func BenchmarkCosmosUpsert(b *testing.B) {
	benchUpsert(b, newTestCosmos(b, newCosmosEnv(b), nil))
}
