package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/costsync/costsync/shared/store"
	"github.com/costsync/costsync/shared/store/storetest"
	"github.com/shopspring/decimal"
)

// benchDocs returns n documents over five days, shaped like a Cost Details
// line (about 60 source columns); tag changes ids and hashes.
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

// roundTrip is the latency the proxy adds to every request: a Cosmos DB
// region's, next to which the emulator answers at once.
const roundTrip = 5 * time.Millisecond

// BenchmarkCosmosWriter writes through a proxy that adds 5 ms to every round
// trip in front of the emulator: our writer (partition reads, batches of up
// to 100, bounded concurrency) and, in the same run, a naive writer that
// upserts one document at a time. It reports both rates, their ratio (the
// budget is at least 10), the average stored document size, and how many
// documents re-ingesting the same window under a new generation writes
// (none, or the content hash is not doing its job).
func BenchmarkCosmosWriter(b *testing.B) {
	env := storetest.StartEnv(b)
	proxied := delayProxy(b, env, roundTrip)
	s := storetest.NewCosmos(b, proxied, nil)
	c, err := store.CosmosClient(s).NewContainer(s.Database(), store.CostsContainer)
	if err != nil {
		b.Fatal(err)
	}
	const (
		oursN  = 6000
		naiveN = 300
		flush  = 2000 // documents per Write, as the ingestion handler flushes
	)
	var oursTime, naiveTime time.Duration
	var rewrites, oursDocs, naiveDocs int
	round := 0
	for b.Loop() {
		round++
		docs := benchDocs(oursN, fmt.Sprintf("ours%d", round), 1)
		start := time.Now()
		w := s.NewCostWriter()
		for lo := 0; lo < len(docs); lo += flush {
			st, err := w.Write(b.Context(), docs[lo:min(lo+flush, len(docs))])
			if err != nil || st.Written != min(flush, len(docs)-lo) {
				b.Fatalf("our writer: %+v, %v", st, err)
			}
		}
		oursTime += time.Since(start)
		oursDocs += len(docs)

		naive := benchDocs(naiveN, fmt.Sprintf("naive%d", round), 1)
		start = time.Now()
		for i := range naive {
			body, err := json.Marshal(&naive[i])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.UpsertItem(b.Context(), azcosmos.NewPartitionKeyString(naive[i].PK), body, nil); err != nil {
				b.Fatalf("naive writer: %v", err)
			}
		}
		naiveTime += time.Since(start)
		naiveDocs += len(naive)

		// The same window again, as tomorrow's re-pull of an unchanged day.
		again := benchDocs(oursN, fmt.Sprintf("ours%d", round), 2)
		st, err := s.NewCostWriter().Write(b.Context(), again)
		if err != nil {
			b.Fatal(err)
		}
		rewrites += st.Written
	}
	size := averageSize(b, c, benchDocs(1, "ours1", 1)[0].PK)
	ours := float64(oursDocs) / oursTime.Seconds()
	naive := float64(naiveDocs) / naiveTime.Seconds()
	b.ReportMetric(ours, "docs/s")
	b.ReportMetric(naive, "naive-docs/s")
	b.ReportMetric(ours/naive, "x-naive")
	b.ReportMetric(size, "bytes/doc")
	b.ReportMetric(float64(rewrites), "rewrites")
	b.Logf("through a %s proxy: our writer %.0f docs/s, naive writer %.0f docs/s (%.1fx; budget 10x); average stored document %.0f bytes; re-ingesting %d unchanged documents wrote %d",
		roundTrip, ours, naive, ours/naive, size, oursN*b.N, rewrites)
	if ours < 10*naive {
		b.Errorf("our writer is %.1fx the naive one, below the 10x budget", ours/naive)
	}
	if rewrites != 0 {
		b.Errorf("re-ingesting an unchanged window wrote %d documents, want 0", rewrites)
	}
}

// BenchmarkMemoryWriter measures the writer's own cost without a network:
// decisions, JSON and batching.
func BenchmarkMemoryWriter(b *testing.B) {
	s := store.NewMemory()
	round := 0
	for b.Loop() {
		round++
		if _, err := s.UpsertCosts(b.Context(), benchDocs(2000, fmt.Sprint(round), 1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "docs/s")
}

// averageSize is the mean length of the stored JSON of the documents of
// partition pk, system properties included.
func averageSize(b *testing.B, c *azcosmos.ContainerClient, pk string) float64 {
	pager := c.NewQueryItemsPager("SELECT * FROM c WHERE c.pk = @pk", azcosmos.NewPartitionKeyString(pk),
		&azcosmos.QueryOptions{QueryParameters: []azcosmos.QueryParameter{{Name: "@pk", Value: pk}}})
	total, n := 0, 0
	for pager.More() {
		page, err := pager.NextPage(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range page.Items {
			total += len(it)
			n++
		}
	}
	if n == 0 {
		b.Fatal("no stored documents to measure")
	}
	return float64(total) / float64(n)
}

// delayProxy serves env's Cosmos DB through an HTTPS reverse proxy that
// waits d before forwarding each request. It rewrites the account's
// locations in the answer to GET / so that the SDK, which sends requests
// to those locations, keeps going through the proxy.
func delayProxy(b *testing.B, env storetest.Env, d time.Duration) storetest.Env {
	target, err := url.Parse(env.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	next := http.DefaultTransport
	if hc, ok := env.Transport.(*http.Client); ok && hc.Transport != nil {
		next = hc.Transport
	}
	var self string
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		Transport: delayed{next: next, d: d},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/" || resp.Request.Method != http.MethodGet {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			body = bytes.ReplaceAll(body, []byte(target.Host), []byte(self))
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
	}
	srv := httptest.NewTLSServer(proxy)
	b.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	self = u.Host
	return storetest.Env{Endpoint: srv.URL + "/", Transport: srv.Client()}
}

type delayed struct {
	next http.RoundTripper
	d    time.Duration
}

func (t delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(t.d)
	return t.next.RoundTrip(r)
}
