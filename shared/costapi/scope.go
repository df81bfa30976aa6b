package costapi

import (
	"fmt"
	"regexp"
	"sort"
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

// Agreement is the billing agreement a scope's path shows.
type Agreement string

// The agreements. A subscription's path does not show its agreement.
const (
	AgreementUnknown Agreement = ""
	AgreementEA      Agreement = "EA"
	AgreementMCA     Agreement = "MCA"
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

// IsSubscription tells whether s is a subscription scope. Cost Details
// counts subscription and non-subscription calls against different quotas
// (cost-apis.md §1.7).
func (s Scope) IsSubscription() bool { return s.Kind == Subscription }

// Agreement is the agreement the scope's kind implies; AgreementUnknown for
// a subscription, whose path does not say.
func (s Scope) Agreement() Agreement {
	switch s.Kind {
	case EABillingAccount, EADepartment, EAEnrollment:
		return AgreementEA
	case MCABillingAccount, MCABillingProfile, MCAInvoiceSection, MCACustomer:
		return AgreementMCA
	}
	return AgreementUnknown
}

// BillingAccount is the lower-cased id of the billing account the scope's
// path names, or "" when the path names none: a subscription (its account
// is not visible without a call to the Billing API), or an EA department or
// enrollment account written without its billingAccounts/{id} prefix.
func (s Scope) BillingAccount() string {
	m := reAccount.FindStringSubmatch(s.Key())
	if m == nil {
		return ""
	}
	return m[1]
}

// SubscriptionID is the lower-cased id of a subscription scope, "" for any
// other kind.
func (s Scope) SubscriptionID() string {
	if s.Kind != Subscription {
		return ""
	}
	_, id := s.leaf()
	return id
}

// leaf is the last segment kind and id of the scope's path, e.g.
// ("departments", "7"); ("", "") for a malformed path.
func (s Scope) leaf() (string, string) {
	parts := strings.Split(s.Key(), "/")
	if len(parts) < 2 {
		return "", ""
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

const guid = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`

// mcaAccount is an MCA billing account id: "{guid}:{guid}_{yyyy-mm-dd}".
const mcaAccount = `[0-9a-zA-Z-]+:[0-9a-zA-Z-]+(?:_\d{4}-\d{2}-\d{2})?`

const billing = `providers/microsoft\.billing/`

var reAccount = regexp.MustCompile(`^` + billing + `billingaccounts/([^/]+)`)

var scopeForms = []struct {
	kind ScopeKind
	re   *regexp.Regexp
	form string
}{
	{Subscription, regexp.MustCompile(`(?i)^subscriptions/` + guid + `$`), "subscriptions/{subscriptionId}"},
	{EABillingAccount, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber} (EA)"},
	{EADepartment, regexp.MustCompile(`(?i)^` + billing + `(billingaccounts/\d+/)?departments/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}/departments/{departmentId} (EA; also without billingAccounts/{enrollmentNumber}/)"},
	{EAEnrollment, regexp.MustCompile(`(?i)^` + billing + `(billingaccounts/\d+/)?enrollmentaccounts/\d+$`), "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}/enrollmentAccounts/{accountId} (EA; also without billingAccounts/{enrollmentNumber}/)"},
	{MCABillingAccount, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId} (MCA, {guid}:{guid}_{yyyy-mm-dd})"},
	{MCABillingProfile, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/billingprofiles/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/billingProfiles/{billingProfileId} (MCA)"},
	{MCAInvoiceSection, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/billingprofiles/[0-9a-zA-Z-]+/invoicesections/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/billingProfiles/{billingProfileId}/invoiceSections/{invoiceSectionId} (MCA)"},
	{MCACustomer, regexp.MustCompile(`(?i)^` + billing + `billingaccounts/` + mcaAccount + `/customers/[0-9a-zA-Z-]+$`), "providers/Microsoft.Billing/billingAccounts/{billingAccountId}/customers/{customerId} (MCA partner)"},
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
	forms := "accepted forms: " + strings.Join(ScopeForms(), "; ")
	switch {
	case p == "":
		return Scope{}, fmt.Errorf("invalid scope %q: empty; %s", s, forms)
	case strings.Contains(lower, "/resourcegroups/"):
		return Scope{}, fmt.Errorf("invalid scope %q: resource group scopes are not supported by Cost Details; use the subscription (%s)", s, forms)
	case strings.Contains(lower, "microsoft.management/managementgroups"):
		return Scope{}, fmt.Errorf("invalid scope %q: management group scopes are not supported by Cost Details; use the billing account or its subscriptions (%s)", s, forms)
	}
	for _, f := range scopeForms {
		if f.re.MatchString(p) {
			return Scope{Path: p, Kind: f.kind}, nil
		}
	}
	return Scope{}, fmt.Errorf("invalid scope %q: %s", s, forms)
}

// Cloud is one Azure cloud's endpoints, from one table.
type Cloud struct {
	Name string
	// ARM is the Resource Manager endpoint, without a trailing slash.
	ARM string
	// Audience is the token audience for ARM (the Azure SDK's value).
	Audience string
	// StorageSuffix is the suffix of the blob hosts that report links
	// (blobLink) may point at.
	StorageSuffix string
}

// Clouds are the clouds costsync knows, by COSTSYNC_CLOUD name. The link
// allow-list of a Client derives from its cloud: Location and nextLink on
// the ARM host, blobLink on a host ending in StorageSuffix.
var Clouds = map[string]Cloud{
	"public": {Name: "public", ARM: "https://management.azure.com", Audience: "https://management.core.windows.net/", StorageSuffix: ".blob.core.windows.net"},
	"china":  {Name: "china", ARM: "https://management.chinacloudapi.cn", Audience: "https://management.core.chinacloudapi.cn/", StorageSuffix: ".blob.core.chinacloudapi.cn"},
	"usgov":  {Name: "usgov", ARM: "https://management.usgovcloudapi.net", Audience: "https://management.core.usgovcloudapi.net/", StorageSuffix: ".blob.core.usgovcloudapi.net"},
}

// LookupCloud returns the cloud named name (case-insensitive), or an error
// that lists the names.
func LookupCloud(name string) (Cloud, error) {
	if c, ok := Clouds[strings.ToLower(strings.TrimSpace(name))]; ok {
		return c, nil
	}
	names := make([]string, 0, len(Clouds))
	for n := range Clouds {
		names = append(names, n)
	}
	sort.Strings(names)
	return Cloud{}, fmt.Errorf("unknown cloud %q: use one of %s", name, strings.Join(names, ", "))
}
