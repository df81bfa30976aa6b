package store

import (
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// CostsIndexingPolicy is the indexing policy of the costs container. It is
// opt-in: the root path is excluded and only the paths the store's and the
// status queries filter or order on are indexed.
//
//   - /pk/? — every store query is pinned to one partition with
//     "c.pk = @pk" (the emulator ignores the partition key option, so the
//     WHERE clause repeats it).
//   - /generation/? — the sweep: "c.generation != @keep" within a day.
//   - /windowId/? — documents of one window within a day.
//   - /scope/?, /metric/?, /date/? — coverage and freshness per scope and
//     day across partitions.
//
// id and _ts are indexed by Cosmos DB whatever the policy says, which covers
// the "ARRAY_CONTAINS(@ids, c.id)" look-up UpsertCosts makes. Everything
// else — the raw source columns under /raw/*, /tags/*, /additionalInfo/*,
// the money and resource fields — is excluded by /*: a document has a
// hundred or more properties, each indexed property costs request units on
// every write, and the store never filters on them. Ad-hoc analysis of those
// fields belongs in a downstream copy (Synapse Link, Fabric mirroring), not
// in queries against the ingestion container.
func CostsIndexingPolicy() *azcosmos.IndexingPolicy {
	return &azcosmos.IndexingPolicy{
		Automatic:    true,
		IndexingMode: azcosmos.IndexingModeConsistent,
		IncludedPaths: []azcosmos.IncludedPath{
			{Path: "/pk/?"},
			{Path: "/generation/?"},
			{Path: "/windowId/?"},
			{Path: "/scope/?"},
			{Path: "/metric/?"},
			{Path: "/date/?"},
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
// are never filtered on: /days/*, /totals/* and /errors/*.
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
			{Path: `/"_etag"/?`},
		},
	}
}
