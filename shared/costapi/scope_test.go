package costapi

import (
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind ScopeKind
		err  string
	}{
		{"subscriptions/00000000-0000-0000-0000-000000000000", Subscription, ""},
		{"/Subscriptions/00000000-0000-0000-0000-000000000000/", Subscription, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345", EABillingAccount, ""},
		{"providers/Microsoft.Billing/departments/12345", EADepartment, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345/departments/6", EADepartment, ""},
		{"providers/Microsoft.Billing/enrollmentAccounts/1234", EAEnrollment, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789", MCABillingAccount, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/billingProfiles/13579", MCABillingProfile, ""},
		{"providers/Microsoft.Billing/billingAccounts/aaaa-bb:cccc-dd_2019-05-31/billingProfiles/AB12-CD/invoiceSections/XY-1", MCAInvoiceSection, ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/customers/13579", MCACustomer, ""},
		{"subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg", "", "resource group"},
		{"providers/Microsoft.Management/managementGroups/mg", "", "management group"},
		{"subscriptions/not-a-guid", "", "accepted forms"},
		{"", "", "empty"},
	} {
		s, err := ParseScope(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseScope(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || s.Kind != tc.kind {
			t.Errorf("ParseScope(%q) = %+v, %v; want kind %s", tc.in, s, err, tc.kind)
		}
	}
}
