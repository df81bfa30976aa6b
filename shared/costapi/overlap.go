package costapi

import (
	"fmt"
	"strings"
)

// Overlap examines configured scopes for costs that would be counted twice.
//
// What the paths prove, and is refused (errs):
//   - the same scope twice (case and slashes ignored);
//   - one scope inside another: a billing account and any of its
//     departments, enrollment accounts, billing profiles, invoice sections
//     or customers; a billing profile and one of its invoice sections;
//   - an EA department or enrollment account written without its
//     billingAccounts/{id} prefix next to an EA billing account, or next to
//     the same department or account written with it: the short form hides
//     the enrollment, so costsync cannot rule the overlap out, and writing
//     it in the long form settles it.
//
// What the paths cannot tell, and is only noted (notes): whether a
// subscription belongs to a configured billing scope (its billing account
// is not in its path, and start-up makes no Billing API call; ingestion
// then refuses a billing scope's window whose report holds a line of a
// configured subscription, see handlers), and whether an enrollment
// account belongs to a configured department of the same enrollment
// (departments do not appear in account paths).
func Overlap(scopes []Scope) (errs []error, notes []string) {
	for i, a := range scopes {
		for j := i + 1; j < len(scopes); j++ {
			if err := overlapPair(a, scopes[j]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var subs, billingScopes int
	var depts, accounts []Scope
	for _, s := range scopes {
		switch s.Kind {
		case Subscription:
			subs++
			continue
		case EADepartment:
			depts = append(depts, s)
		case EAEnrollment:
			accounts = append(accounts, s)
		}
		billingScopes++
	}
	if subs > 0 && billingScopes > 0 {
		notes = append(notes, fmt.Sprintf("%d subscription(s) are configured next to %d billing scope(s): a subscription's billing account is not in its path, so configuration cannot show that none of them is under a configured billing scope; if one is, every window of that billing scope is refused when its report shows a line of the subscription (remove one of the two)", subs, billingScopes))
	}
	for _, d := range depts {
		for _, a := range accounts {
			if d.BillingAccount() == "" || a.BillingAccount() == "" || d.BillingAccount() == a.BillingAccount() {
				notes = append(notes, fmt.Sprintf("department %q and enrollment account %q: costsync cannot tell from the paths whether the account is in the department; if it is, its costs are counted twice", d.Path, a.Path))
			}
		}
	}
	return errs, notes
}

func overlapPair(a, b Scope) error {
	ak, bk := a.Key(), b.Key()
	switch {
	case ak == bk:
		return fmt.Errorf("scope %q is configured twice", a.Path)
	case strings.HasPrefix(bk, ak+"/"):
		return fmt.Errorf("scope %q contains %q: its costs would be counted twice; configure one of them", a.Path, b.Path)
	case strings.HasPrefix(ak, bk+"/"):
		return fmt.Errorf("scope %q contains %q: its costs would be counted twice; configure one of them", b.Path, a.Path)
	}
	short := func(s Scope) bool {
		return (s.Kind == EADepartment || s.Kind == EAEnrollment) && s.BillingAccount() == ""
	}
	if !short(a) && !short(b) {
		return nil
	}
	if short(b) {
		a, b = b, a
	}
	// a is a department or enrollment account in the short form.
	longForm := "providers/Microsoft.Billing/billingAccounts/{enrollmentNumber}/" + strings.TrimPrefix(a.Key(), "providers/microsoft.billing/")
	switch {
	case b.Kind == EABillingAccount:
		return fmt.Errorf("scope %q does not name its enrollment, so costsync cannot tell whether it is inside %q (its costs would then be counted twice); write it as %s", a.Path, b.Path, longForm)
	case b.Kind == a.Kind:
		_, ida := a.leaf()
		_, idb := b.leaf()
		if ida == idb {
			what := "department"
			if a.Kind == EAEnrollment {
				what = "enrollment account"
			}
			return fmt.Errorf("scopes %q and %q may be the same %s written two ways (its costs would then be counted twice); write both with billingAccounts/{enrollmentNumber}/", a.Path, b.Path, what)
		}
	}
	return nil
}
