package store

import (
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// CostsIndexingPolicy is the indexing policy of the costs container. It is
// opt-in: the root path is excluded and only /pk/? is indexed, because every
// query the store makes of this container has one shape,
//
//	SELECT c.id, c.contentHash, c.generation, c.billingCurrency, c.billedCostExact
//	FROM c WHERE c.pk = @pk
//
// (the writer's read of what is stored, the sweep, the count and the
// verification all read one day's partition and filter in Go). The filter
// on /pk repeats the partition key because the emulator ignores the
// partition key option; projections need no index. id and _ts are indexed
// by Cosmos DB whatever the policy says, and point reads and writes use no
// index at all.
//
// Everything else — the raw source columns under /raw/*, /tags/*,
// /additionalInfo/*, the money and resource fields, generation, windowId —
// is excluded by /*: a document has a hundred or more properties, each
// indexed property costs request units on every write, and the store never
// filters on them. Ad-hoc analysis of those fields belongs in a downstream
// copy (Synapse Link, Fabric mirroring) or a deliberate index change
// (Cosmos DB re-indexes online), not in every ingestion write.
func CostsIndexingPolicy() *azcosmos.IndexingPolicy {
	return &azcosmos.IndexingPolicy{
		Automatic:    true,
		IndexingMode: azcosmos.IndexingModeConsistent,
		IncludedPaths: []azcosmos.IncludedPath{
			{Path: "/pk/?"},
		},
		ExcludedPaths: []azcosmos.ExcludedPath{
			{Path: "/*"},
			{Path: `/"_etag"/?`},
		},
	}
}

// LedgerIndexingPolicy is the indexing policy of the ledger container. The
// ledger holds a few documents per window, read and written rarely, and its
// queries select by kind, scope, state and time in ways the status pages
// will keep adding to, so it indexes everything except the bulky arrays that
// are never filtered on: /days/*, /totals/*, /errors/* and /partsIn/*.
func LedgerIndexingPolicy() *azcosmos.IndexingPolicy {
	return &azcosmos.IndexingPolicy{
		Automatic:    true,
		IndexingMode: azcosmos.IndexingModeConsistent,
		IncludedPaths: []azcosmos.IncludedPath{
			{Path: "/*"},
		},
		ExcludedPaths: []azcosmos.ExcludedPath{
			{Path: "/days/*"},
			{Path: "/totals/*"},
			{Path: "/errors/*"},
			{Path: "/partsIn/*"},
			{Path: `/"_etag"/?`},
		},
	}
}
