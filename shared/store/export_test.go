package store

import "github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

// CosmosClient exposes the SDK client to the external tests.
func CosmosClient(s *Cosmos) *azcosmos.Client { return s.client }

var SummaryQuery = summaryQuery
