package main

import "strings"

// Pay-as-you-go (MOSP, offer type WebDirect) subscriptions: Cost Details
// refuses them with 422 (cost-apis.md §1.3, finops-toolkit#1005); their
// costs come from the Consumption usage details API, kind "legacy".

// unsupportedOfferMessage is the 422 message observed for a WebDirect offer.
const unsupportedOfferMessage = "Unsupported request. offer type: WebDirect for get detailed report request is not supported."

// paygOffer is the pay-as-you-go offer id.
const paygOffer = "MS-AZR-0003P"

// isPAYGSubscription is the rule that makes a subscription pay-as-you-go:
// ids whose fourth group is "9a96" ("PAYG"). Every other subscription is EA
// or MCA (see isMCASubscription).
func isPAYGSubscription(id string) bool {
	parts := strings.Split(strings.ToLower(id), "-")
	return len(parts) == 5 && parts[3] == "9a96"
}

// buildPAYG fills in a pay-as-you-go subscription: USD, no enrollment,
// department, account or cost center.
func (g *generator) buildPAYG(p *population) {
	p.currency = "USD"
	id := p.sc.subscription
	p.subs = []*subscriptionInfo{{
		id: id, name: subscriptionNames[hash64(g.seed, id, "name")%uint64(len(subscriptionNames))],
		offerID: paygOffer,
	}}
}
