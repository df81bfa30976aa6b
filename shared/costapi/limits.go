package costapi

// The documented Cost Details rate limits (cost-apis.md §1.7, from
// automate/api-latency-rate-limits.md), for a rate governor. Which buckets a
// request draws from follows from its scope: every scope has its own
// (Scope.Key); subscription scopes also share one per tenant and one per
// billing account, other scopes one per billing account
// (Scope.IsSubscription, Scope.BillingAccount, which is "" when the path does
// not name the account); all calls share one per client application.
const (
	ScopeCallsPerMinute              = 2
	ScopeCallsPerHour                = 10
	ScopeCallsPerDay                 = 50
	OperationPollsPerMinute          = 2
	SubscriptionCallsPerTenantMinute = 10
	// SubscriptionCallsPerAccountMinute is across all subscriptions of one
	// billing account.
	SubscriptionCallsPerAccountMinute = 10
	// BillingScopeCallsPerAccountMinute is across all non-subscription
	// scopes of one billing account.
	BillingScopeCallsPerAccountMinute = 5
	ClientAppCallsPerMinute           = 30
)
