package costapi

import (
	"strings"
	"testing"
)

func mustScope(t *testing.T, s string) Scope {
	t.Helper()
	sc, err := ParseScope(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in        string
		kind      ScopeKind
		agreement Agreement
		account   string
		err       string
	}{
		{"subscriptions/00000000-0000-0000-0000-000000000000", Subscription, AgreementUnknown, "", ""},
		{"/Subscriptions/00000000-0000-0000-0000-000000000000/", Subscription, AgreementUnknown, "", ""},
		{"providers/Microsoft.Billing/billingAccounts/12345", EABillingAccount, AgreementEA, "12345", ""},
		{"providers/Microsoft.Billing/departments/12345", EADepartment, AgreementEA, "", ""},
		{"providers/Microsoft.Billing/billingAccounts/12345/departments/6", EADepartment, AgreementEA, "12345", ""},
		{"providers/Microsoft.Billing/enrollmentAccounts/1234", EAEnrollment, AgreementEA, "", ""},
		{"PROVIDERS/microsoft.billing/BillingAccounts/12345/enrollmentAccounts/1234", EAEnrollment, AgreementEA, "12345", ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789", MCABillingAccount, AgreementMCA, "12345:6789", ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/billingProfiles/13579", MCABillingProfile, AgreementMCA, "12345:6789", ""},
		{"providers/Microsoft.Billing/billingAccounts/aaaa-BB:cccc-dd_2019-05-31/billingProfiles/AB12-CD/invoiceSections/XY-1", MCAInvoiceSection, AgreementMCA, "aaaa-bb:cccc-dd_2019-05-31", ""},
		{"providers/Microsoft.Billing/billingAccounts/12345:6789/customers/13579", MCACustomer, AgreementMCA, "12345:6789", ""},
		{"subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg", "", "", "", "resource group"},
		{"providers/Microsoft.Management/managementGroups/mg", "", "", "", "management group"},
		{"subscriptions/not-a-guid", "", "", "", "accepted forms"},
		{"providers/Microsoft.Billing/billingAccounts/abc", "", "", "", "accepted forms"},
		{"providers/Microsoft.Billing/billingAccounts/12345/billingProfiles/1", "", "", "", "accepted forms"},
		{"providers/Microsoft.Billing/billingAccounts/1:2/departments/3", "", "", "", "accepted forms"},
		{"", "", "", "", "empty"},
	} {
		s, err := ParseScope(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseScope(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			// Every refusal lists the accepted forms.
			if err != nil && !strings.Contains(err.Error(), "billingProfiles/{billingProfileId}/invoiceSections/{invoiceSectionId}") {
				t.Errorf("ParseScope(%q) err = %v does not list the forms", tc.in, err)
			}
			continue
		}
		if err != nil || s.Kind != tc.kind || s.Agreement() != tc.agreement || s.BillingAccount() != tc.account || s.IsSubscription() != (tc.kind == Subscription) {
			t.Errorf("ParseScope(%q) = %+v (%s, account %q), %v; want kind %s, %s, account %q", tc.in, s, s.Agreement(), s.BillingAccount(), err, tc.kind, tc.agreement, tc.account)
		}
		if tc.in != "" && s.Path != strings.Trim(tc.in, "/") {
			t.Errorf("ParseScope(%q).Path = %q: the case must be kept", tc.in, s.Path)
		}
	}
}

func TestOverlap(t *testing.T) {
	const (
		ea    = "providers/Microsoft.Billing/billingAccounts/12345"
		mca   = "providers/Microsoft.Billing/billingAccounts/1111:2222_2019-05-31"
		subA  = "subscriptions/00000000-0000-0000-0000-00000000000a"
		subB  = "subscriptions/00000000-0000-0000-0000-00000000000b"
		short = "providers/Microsoft.Billing/departments/7"
	)
	for _, tc := range []struct {
		name   string
		scopes []string
		errs   []string // substrings, one per refused pair
		notes  []string
	}{
		{"distinct subscriptions", []string{subA, subB}, nil, nil},
		{"two enrollments", []string{ea, "providers/Microsoft.Billing/billingAccounts/999/departments/7"}, nil, nil},
		{"duplicate", []string{subA, "/SUBSCRIPTIONS/00000000-0000-0000-0000-00000000000A/"}, []string{"configured twice"}, nil},
		{"account and its department", []string{ea + "/departments/7", ea}, []string{"contains"}, nil},
		{"account and its enrollment account", []string{ea, ea + "/enrollmentAccounts/3"}, []string{"contains"}, nil},
		{"MCA account and profile", []string{mca, mca + "/billingProfiles/P1"}, []string{"contains"}, nil},
		{"MCA profile and invoice section", []string{mca + "/billingProfiles/P1", mca + "/billingProfiles/P1/invoiceSections/S1"}, []string{"contains"}, nil},
		{"MCA account and customer", []string{mca + "/customers/C1", mca}, []string{"contains"}, nil},
		{"MCA account, profile and section", []string{mca, mca + "/billingProfiles/P1", mca + "/billingProfiles/P1/invoiceSections/S1"}, []string{"contains", "contains", "contains"}, nil},
		{"two profiles", []string{mca + "/billingProfiles/P1", mca + "/billingProfiles/P2"}, nil, nil},
		{"short department next to an account", []string{short, ea}, []string{"does not name its enrollment"}, nil},
		{"short and long department", []string{short, ea + "/departments/7"}, []string{"may be the same department"}, nil},
		{"short and long other department", []string{short, ea + "/departments/8"}, nil, nil},
		{"subscription and billing scope", []string{subA, ea}, nil, []string{"is refused when its report shows a line of the subscription"}},
		{"department and account", []string{ea + "/departments/7", ea + "/enrollmentAccounts/3"}, nil, []string{"cannot tell"}},
		{"department and account of another enrollment", []string{ea + "/departments/7", "providers/Microsoft.Billing/billingAccounts/9/enrollmentAccounts/3"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var scopes []Scope
			for _, s := range tc.scopes {
				scopes = append(scopes, mustScope(t, s))
			}
			errs, notes := Overlap(scopes)
			if len(errs) != len(tc.errs) || len(notes) != len(tc.notes) {
				t.Fatalf("errs %v, notes %v; want %d errors and %d notes", errs, notes, len(tc.errs), len(tc.notes))
			}
			for i, want := range tc.errs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("error %q, want %q", errs[i], want)
				}
			}
			for i, want := range tc.notes {
				if !strings.Contains(notes[i], want) {
					t.Errorf("note %q, want %q", notes[i], want)
				}
			}
		})
	}
}
