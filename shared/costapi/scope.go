package costapi

import (
	"fmt"
	"regexp"
	"strings"
)

// ScopeKind names the kind of a Cost Management scope.
type ScopeKind string

// The scope kinds Cost Details accepts.
const (
	Subscription      ScopeKind = "subscription"
	EABillingAccount  ScopeKind = "ea-billing-account"
	EADepartment      ScopeKind = "ea-department"
	EAEnrollment      ScopeKind = "ea-enrollment-account"
	MCABillingAccount ScopeKind = "mca-billing-account"
	MCABillingProfile ScopeKind = "mca-billing-profile"
	MCAInvoiceSection ScopeKind = "mca-invoice-section"
	MCACustomer       ScopeKind = "mca-customer"
)

// Scope is a validated Cost Management scope. Path has no leading slash and
// keeps the case it was given in; Key is its lower-cased form, used in ids.
type Scope struct {
	Path string
	Kind ScopeKind
}

// Key is the scope's canonical form for ids and partition keys.
func (s Scope) Key() string { return strings.ToLower(s.Path) }

// String returns the scope path.
func (s Scope) String() string { return s.Path }

const guid = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`

// mcaAccount is an MCA billing account id: "{guid}:{guid}_{yyyy-mm-dd}".
const mcaAccount = `[0-9a-zA-Z-]+:[0-9a-zA-Z-]+(_\d{4}-\d{2}-\d{2})?`

const billing = `providers/microsoft\.billing/`

var scopeForms = []struct {
	kind ScopeKind
	re   *regexp.Regexp
	form string
}{
	{Subscription, regexp.MustCompile(`(?i)^subscriptions/` + guid + `$`), "subscriptions/{subscriptionId}"},
	{EABillingAccount, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}"},
	{EADepartment, regexp.MustCompile(`(?i)^` + billing + `(billingaccounts/\d+/)?departments/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}/departments/{departmentId}"},
	{EAEnrollment, regexp.MustCompile(`(?i)^` + billing + `(billingaccounts/\d+/)?enrollmentaccounts/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}/enrollmentAccounts/{accountId}"},
	{MCABillingAccount, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}"},
	{MCABillingProfile, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/billingprofiles/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/billingProfiles/{billingProfileId}"},
	{MCAInvoiceSection, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/billingprofiles/[0-9a-zA-Z-]+/invoicesections/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/billingProfiles/{billingProfileId}/invoiceSections/{invoiceSectionId}"},
	{MCACustomer, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/customers/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/customers/{customerId}"},
}

// ScopeForms lists the accepted scope forms, for error messages and help.
func ScopeForms() []string {
	out := make([]string, len(scopeForms))
	for i, f := range scopeForms {
		out[i] = f.form
	}
	return out
}

// ParseScope validates s as a Cost Details scope. A leading slash is allowed.
// Resource groups and management groups are refused: Cost Details does not
// support them.
func ParseScope(s string) (Scope, error) {
	p := strings.Trim(strings.TrimSpace(s), "/")
	lower := strings.ToLower(p)
	switch {
	case p == "":
		return Scope{}, fmt.Errorf("invalid scope %q: empty; accepted forms: %s", s, strings.Join(ScopeForms(), ", "))
	case strings.Contains(lower, "/resourcegroups/"):
		return Scope{}, fmt.Errorf("invalid scope %q: resource group scopes are not supported by Cost Details; use the subscription", s)
	case strings.Contains(lower, "microsoft.management/managementgroups"):
		return Scope{}, fmt.Errorf("invalid scope %q: management group scopes are not supported by Cost Details; use the billing account or its subscriptions", s)
	}
	for _, f := range scopeForms {
		if f.re.MatchString(p) {
			return Scope{Path: p, Kind: f.kind}, nil
		}
	}
	return Scope{}, fmt.Errorf("invalid scope %q: accepted forms: %s", s, strings.Join(ScopeForms(), ", "))
}

// Cloud is one Azure cloud's endpoints, from one table.
type Cloud struct {
	Name string
	// ARM is the Resource Manager endpoint, without a trailing slash.
	ARM string
	// Audience is the token audience for ARM.
	Audience string
	// StorageSuffix is the suffix of blob hosts that report links may use.
	StorageSuffix string
}

// Clouds are the clouds costsync knows.
var Clouds = map[string]Cloud{
	"public": {Name: "public", ARM: "https://management.azure.com", Audience: "https://management.azure.com/", StorageSuffix: ".blob.core.windows.net"},
	"china":  {Name: "china", ARM: "https://management.chinacloudapi.cn", Audience: "https://management.chinacloudapi.cn/", StorageSuffix: ".blob.core.chinacloudapi.cn"},
	"usgov":  {Name: "usgov", ARM: "https://management.usgovcloudapi.net", Audience: "https://management.usgovcloudapi.net/", StorageSuffix: ".blob.core.usgovcloudapi.net"},
}
