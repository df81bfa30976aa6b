package config

import (
	"strings"
	"testing"
)

func TestLegacyExports(t *testing.T) {
	m := valid()
	m[KeyLegacyExports] = "DailyActual=ActualCost@subscriptions/00000000-0000-0000-0000-000000000001; focus=FocusCost@/providers/Microsoft.Billing/billingAccounts/12345/"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LegacyExports["dailyactual"]; got.Dataset != "ActualCost" || got.Scope != "subscriptions/00000000-0000-0000-0000-000000000001" {
		t.Errorf("dailyactual = %+v", got)
	}
	if got := c.LegacyExports["focus"]; got.Scope != "providers/Microsoft.Billing/billingAccounts/12345" {
		t.Errorf("focus = %+v", got)
	}
	for _, bad := range []string{"noequals", "x=PriceSheet@subscriptions/s", "x=ActualCost@nowhere", "x=ActualCost"} {
		m[KeyLegacyExports] = bad
		_, err := Load(env(m))
		if err == nil || !strings.Contains(err.Error(), KeyLegacyExports) {
			t.Errorf("%q: got %v, want an error naming %s", bad, err, KeyLegacyExports)
		}
	}
}
