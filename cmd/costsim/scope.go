package main

import (
	"fmt"
	"regexp"
	"strings"
)

// scopeKind is the kind of a Cost Details scope.
type scopeKind string

const (
	scopeSubscription      scopeKind = "subscription"
	scopeEABillingAccount  scopeKind = "ea-billing-account"
	scopeEADepartment      scopeKind = "ea-department"
	scopeEAEnrollment      scopeKind = "ea-enrollment-account"
	scopeMCABillingAccount scopeKind = "mca-billing-account"
	scopeMCABillingProfile scopeKind = "mca-billing-profile"
	scopeMCAInvoiceSection scopeKind = "mca-invoice-section"
	scopeMCACustomer       scopeKind = "mca-customer"
)

// scope is a parsed Cost Details scope. Path has no leading slash and keeps
// the case it was given in; key is its lower-cased form, which every
// generated value derives from (ARM paths are case-insensitive).
type scope struct {
	path string
	key  string
	kind scopeKind
	mca  bool
	payg bool // a pay-as-you-go (WebDirect) subscription: no Cost Details

	subscription      string // lower case
	billingAccount    string
	billingProfile    string
	invoiceSection    string
	customer          string
	department        string
	enrollmentAccount string
}

const (
	reGUID       = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	reMCAAccount = `[0-9a-z-]+:[0-9a-z-]+(?:_\d{4}-\d{2}-\d{2})?`
	reBilling    = `providers/microsoft\.billing/`
	reID         = `[0-9a-z-]+`
)

var (
	reSubscription      = regexp.MustCompile(`^subscriptions/(` + reGUID + `)$`)
	reEABillingAccount  = regexp.MustCompile(`^` + reBilling + `billingaccounts/(\d+)$`)
	reEADepartment      = regexp.MustCompile(`^` + reBilling + `(?:billingaccounts/(\d+)/)?departments/(\d+)$`)
	reEAEnrollment      = regexp.MustCompile(`^` + reBilling + `(?:billingaccounts/(\d+)/)?enrollmentaccounts/(\d+)$`)
	reMCABillingAccount = regexp.MustCompile(`^` + reBilling + `billingaccounts/(` + reMCAAccount + `)$`)
	reMCABillingProfile = regexp.MustCompile(`^` + reBilling + `billingaccounts/(` + reMCAAccount + `)/billingprofiles/(` + reID + `)$`)
	reMCAInvoiceSection = regexp.MustCompile(`^` + reBilling + `billingaccounts/(` + reMCAAccount + `)/billingprofiles/(` + reID + `)/invoicesections/(` + reID + `)$`)
	reMCACustomer       = regexp.MustCompile(`^` + reBilling + `billingaccounts/(` + reMCAAccount + `)/customers/(` + reID + `)$`)
	reGUIDOnly          = regexp.MustCompile(`^(?i)` + reGUID + `$`)
)

// unsupportedScopeMessage is the spec's text for resource group and
// management group scopes.
const unsupportedScopeMessage = "The ARM Resource ID for subscription, billing account, or other billing scopes. Currently Resource Group and Management Group are not supported."

// scopeError is a scope the service refuses, with ARM's code.
type scopeError struct {
	code    string
	message string
}

func (e *scopeError) Error() string { return e.message }

// parseScope parses a Cost Details scope; a leading slash is allowed.
func parseScope(p string) (scope, error) {
	p = strings.Trim(p, "/")
	k := strings.ToLower(p)
	s := scope{path: p, key: k}
	if strings.Contains(k, "/resourcegroups/") || strings.Contains(k, "microsoft.management/managementgroups") {
		return scope{}, &scopeError{"400", fmt.Sprintf("Invalid scope '%s'. %s", p, unsupportedScopeMessage)}
	}
	if m := reSubscription.FindStringSubmatch(k); m != nil {
		s.kind, s.subscription = scopeSubscription, m[1]
		s.mca = isMCASubscription(m[1])
		s.payg = isPAYGSubscription(m[1])
		return s, nil
	}
	if strings.HasPrefix(k, "subscriptions/") {
		id, _, _ := strings.Cut(strings.TrimPrefix(p, "subscriptions/"), "/")
		return scope{}, &scopeError{"InvalidSubscriptionId", fmt.Sprintf("The provided subscription identifier '%s' is malformed or invalid.", id)}
	}
	switch m := match(k); {
	case m.re == reEABillingAccount:
		s.kind, s.billingAccount = scopeEABillingAccount, m.sub[1]
	case m.re == reEADepartment:
		s.kind, s.billingAccount, s.department = scopeEADepartment, m.sub[1], m.sub[2]
	case m.re == reEAEnrollment:
		s.kind, s.billingAccount, s.enrollmentAccount = scopeEAEnrollment, m.sub[1], m.sub[2]
	case m.re == reMCABillingAccount:
		s.kind, s.mca, s.billingAccount = scopeMCABillingAccount, true, m.sub[1]
	case m.re == reMCABillingProfile:
		s.kind, s.mca, s.billingAccount, s.billingProfile = scopeMCABillingProfile, true, m.sub[1], m.sub[2]
	case m.re == reMCAInvoiceSection:
		s.kind, s.mca, s.billingAccount, s.billingProfile, s.invoiceSection = scopeMCAInvoiceSection, true, m.sub[1], m.sub[2], m.sub[3]
	case m.re == reMCACustomer:
		s.kind, s.mca, s.billingAccount, s.customer = scopeMCACustomer, true, m.sub[1], m.sub[2]
	default:
		return scope{}, &scopeError{"400", fmt.Sprintf("Invalid scope '%s'. %s", p, "The scope must be a subscription, an EA billing account, department or enrollment account, or an MCA billing account, billing profile, invoice section or customer.")}
	}
	return s, nil
}

type scopeMatch struct {
	re  *regexp.Regexp
	sub []string
}

func match(k string) scopeMatch {
	for _, re := range []*regexp.Regexp{reEABillingAccount, reEADepartment, reEAEnrollment, reMCABillingAccount, reMCABillingProfile, reMCAInvoiceSection, reMCACustomer} {
		if m := re.FindStringSubmatch(k); m != nil {
			return scopeMatch{re, m}
		}
	}
	return scopeMatch{}
}

// isMCASubscription is the rule that makes a subscription scope MCA:
// subscription ids that costsim generates under MCA scopes have "8ca0" as
// their fourth group; every other subscription is EA.
func isMCASubscription(id string) bool {
	parts := strings.Split(strings.ToLower(id), "-")
	return len(parts) == 5 && parts[3] == "8ca0"
}

// isGUID reports whether s is a GUID.
func isGUID(s string) bool { return reGUIDOnly.MatchString(s) }

// invoiceScope reports whether invoiceId may be used at s.
func (s scope) invoiceScope() bool {
	return s.kind == scopeMCABillingProfile || s.kind == scopeMCACustomer
}
