package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// emulatorCompat works around two bugs of @vercel/cosmosdb-server 1.0.1, the
// emulator the local stack and the tests use. It must run per retry, after
// the SDK has set the partition key header. It is never installed against
// real Cosmos DB.
//
//  1. A point read of a missing item (or of an item in another partition)
//     answers 500 instead of 404. With the cross-partition header the server
//     looks the item up by id and partition key and answers 404.
//  2. A transactional batch fails because the server wants the partition key
//     inside every operation, and the SDK sends it only as a header.
type emulatorCompat struct{}

func (emulatorCompat) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	if raw.Method == http.MethodGet && isDocPath(raw.URL.Path) {
		raw.Header.Set("x-ms-documentdb-query-enablecrosspartition", "true")
	}
	if strings.EqualFold(raw.Header.Get("x-ms-cosmos-is-batch-request"), "true") && req.Body() != nil {
		pk := raw.Header.Get("x-ms-documentdb-partitionkey")
		body, err := io.ReadAll(req.Body())
		if err != nil {
			return nil, fmt.Errorf("emulator compat: read batch body: %w", err)
		}
		var ops []map[string]any
		if err := json.Unmarshal(body, &ops); err != nil {
			return nil, fmt.Errorf("emulator compat: decode batch body: %w", err)
		}
		for _, op := range ops {
			op["partitionKey"] = pk
		}
		if body, err = json.Marshal(ops); err != nil {
			return nil, fmt.Errorf("emulator compat: encode batch body: %w", err)
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), raw.Header.Get("Content-Type")); err != nil {
			return nil, fmt.Errorf("emulator compat: set batch body: %w", err)
		}
	}
	return req.Next()
}

// isDocPath reports whether p is /dbs/{db}/colls/{coll}/docs/{id}.
func isDocPath(p string) bool {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	return len(parts) == 6 && parts[0] == "dbs" && parts[2] == "colls" && parts[4] == "docs"
}
