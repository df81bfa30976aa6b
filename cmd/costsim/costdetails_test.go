package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

const (
	subScope     = "subscriptions/00000000-0000-0000-0000-000000000001"
	eaAccount    = "providers/Microsoft.Billing/billingAccounts/8611537"
	mcaAccountID = "12345678-1234-1234-1234-123456789012:87654321-4321-4321-4321-210987654321_2019-05-31"
	mcaAccount   = "providers/Microsoft.Billing/billingAccounts/" + mcaAccountID
	mcaProfile   = mcaAccount + "/billingProfiles/AB12-CD34-EF5-GH6"
)

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, nil)
	arm := e.armHeaders()
	storageTok := map[string]string{"Authorization": "Bearer " + e.token("https://storage.azure.com")}
	coreTok := map[string]string{"Authorization": "Bearer " + e.token("https://management.core.windows.net")}
	expired, err := e.sim.mintJWT(claims{Aud: "https://management.azure.com/", Exp: e.clock.now().Add(-time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	const month = `{"metric":"ActualCost","timePeriod":{"start":"2026-10-01","end":"2026-10-31"}}`
	createPath := func(scope string) string {
		return "/" + scope + "/providers/Microsoft.CostManagement/generateCostDetailsReport?api-version=2024-08-01"
	}
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		header  map[string]string
		status  int
		code    string
		message string
	}{
		{"ok month", "POST", createPath(subScope), month, arm, 202, "", ""},
		{"ok empty body is the open month", "POST", createPath(subScope), "", arm, 202, "", ""},
		{"ok core audience without slash", "POST", createPath(subScope), month, coreTok, 202, "", ""},
		{"ok api-version 2025-03-01", "POST", strings.Replace(createPath(subScope), "2024-08-01", "2025-03-01", 1), month, arm, 202, "", ""},
		{"ok case-insensitive path", "POST", "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/PROVIDERS/microsoft.costmanagement/GenerateCostDetailsReport?api-version=2023-11-01", month, arm, 202, "", ""},
		{"ok oldest month", "POST", createPath(subScope), `{"timePeriod":{"start":"2025-10-01","end":"2025-10-31"}}`, arm, 202, "", ""},
		{"ok clamped month", "POST", createPath(subScope), `{"timePeriod":{"start":"2026-01-31","end":"2026-02-27"}}`, arm, 202, "", ""},
		{"ok EA billing period", "POST", createPath(eaAccount), `{"metric":"AmortizedCost","billingPeriod":"202610"}`, arm, 202, "", ""},
		{"ok MCA invoice", "POST", createPath(mcaProfile), `{"invoiceId":"M1234567"}`, arm, 202, "", ""},
		{"ok department", "POST", createPath("providers/Microsoft.Billing/departments/12345"), month, arm, 202, "", ""},
		{"ok enrollment account", "POST", createPath("providers/Microsoft.Billing/enrollmentAccounts/1234"), month, arm, 202, "", ""},
		{"ok invoice section", "POST", createPath(mcaProfile + "/invoiceSections/XY12-AB34-CD5-EF6"), month, arm, 202, "", ""},
		{"ok customer", "POST", createPath(mcaAccount + "/customers/13579"), month, arm, 202, "", ""},
		{"ok short MCA account", "POST", createPath("providers/Microsoft.Billing/billingAccounts/12345:6789/billingProfiles/13579"), month, arm, 202, "", ""},
		{"missing api-version", "POST", "/" + subScope + "/providers/Microsoft.CostManagement/generateCostDetailsReport", month, arm, 400, "MissingApiVersionParameter", "api-version"},
		{"unknown api-version", "POST", strings.Replace(createPath(subScope), "2024-08-01", "2019-01-01", 1), month, arm, 400, "InvalidApiVersionParameter", "2019-01-01"},
		{"no token", "POST", createPath(subScope), month, nil, 401, "InvalidAuthenticationToken", "Authorization"},
		{"storage audience", "POST", createPath(subScope), month, storageTok, 401, "InvalidAuthenticationToken", "wrong audience"},
		{"expired token", "POST", createPath(subScope), month, map[string]string{"Authorization": "Bearer " + expired}, 401, "InvalidAuthenticationToken", "expiry"},
		{"not a JWT", "POST", createPath(subScope), month, map[string]string{"Authorization": "Bearer abc"}, 401, "InvalidAuthenticationToken", "invalid"},
		{"resource group", "POST", createPath(subScope + "/resourceGroups/rg1"), month, arm, 400, "400", "Currently Resource Group and Management Group are not supported."},
		{"management group", "POST", createPath("providers/Microsoft.Management/managementGroups/mg1"), month, arm, 400, "400", "Currently Resource Group and Management Group are not supported."},
		{"bad subscription", "POST", createPath("subscriptions/not-a-guid"), month, arm, 400, "InvalidSubscriptionId", "not-a-guid"},
		{"unknown scope", "POST", createPath("providers/Microsoft.Billing/billingAccounts/abc"), month, arm, 400, "400", "Invalid scope"},
		{"malformed JSON", "POST", createPath(subScope), `{"metric":`, arm, 400, "400", "not in a json format"},
		{"unknown member", "POST", createPath(subScope), `{"metric":"ActualCost","granularity":"Daily"}`, arm, 400, "400", "invalid member"},
		{"two periods", "POST", createPath(eaAccount), `{"timePeriod":{"start":"2026-10-01","end":"2026-10-02"},"billingPeriod":"202610"}`, arm, 400, "400", "can only have either timePeriod or invoiceId or billingPeriod"},
		{"over a month", "POST", createPath(subScope), `{"timePeriod":{"start":"2026-10-01","end":"2026-11-01"}}`, arm, 400, "400", "The maximum allowed date range is 1 months."},
		{"over a clamped month", "POST", createPath(subScope), `{"timePeriod":{"start":"2026-01-31","end":"2026-02-28"}}`, arm, 400, "400", "The maximum allowed date range is 1 months."},
		{"older than 13 months", "POST", createPath(subScope), `{"timePeriod":{"start":"2025-09-30","end":"2025-10-05"}}`, arm, 400, "400", "Start date must be after 2025-09-30"},
		{"billing period too old", "POST", createPath(eaAccount), `{"billingPeriod":"202509"}`, arm, 400, "400", "Start date must be after"},
		{"end before start", "POST", createPath(subScope), `{"timePeriod":{"start":"2026-10-05","end":"2026-10-01"}}`, arm, 400, "400", "end date"},
		{"bad date", "POST", createPath(subScope), `{"timePeriod":{"start":"10/01/2026","end":"2026-10-02"}}`, arm, 400, "400", "yyyy-MM-dd"},
		{"bad metric", "POST", createPath(subScope), `{"metric":"Usage"}`, arm, 400, "400", "metric"},
		{"billing period at MCA", "POST", createPath(mcaProfile), `{"billingPeriod":"202610"}`, arm, 400, "400", "Enterprise Agreement"},
		{"bad billing period", "POST", createPath(eaAccount), `{"billingPeriod":"2026-10"}`, arm, 400, "400", "YearMonth"},
		{"invoice at subscription", "POST", createPath(subScope), `{"invoiceId":"G123"}`, arm, 400, "400", "Billing Profile or Customer"},
		{"invoice at MCA account", "POST", createPath(mcaAccount), `{"invoiceId":"G123"}`, arm, 400, "400", "Billing Profile or Customer"},
		{"GET on create", "GET", createPath(subScope), "", arm, 405, "HttpMethodNotAllowed", ""},
		{"unknown operation", "GET", "/" + subScope + "/providers/Microsoft.CostManagement/costDetailsOperationResults/00000000-0000-4000-8000-000000000000?api-version=2024-08-01", "", arm, 404, "NotFound", ""},
		{"unknown path", "GET", "/subscriptions/x/providers/Microsoft.CostManagement/forecast?api-version=2024-08-01", "", arm, 404, "NotFound", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := e.do(tt.method, tt.path, tt.body, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.status, b)
			}
			if tt.status == 202 {
				loc, err := url.Parse(resp.Header.Get("Location"))
				if err != nil || loc.Scheme != "https" || !strings.Contains(strings.ToLower(loc.Path), "/providers/microsoft.costmanagement/costdetailsoperationresults/") {
					t.Errorf("Location = %q", resp.Header.Get("Location"))
				}
				if resp.Header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After = %q, want 1", resp.Header.Get("Retry-After"))
				}
				return
			}
			var ae armError
			if err := json.Unmarshal(b, &ae); err != nil {
				t.Fatalf("error body %s: %v", b, err)
			}
			if ae.Error.Code != tt.code || !strings.Contains(ae.Error.Message, tt.message) {
				t.Errorf("error = %+v, want code %q and a message with %q", ae.Error, tt.code, tt.message)
			}
		})
	}
}

// Expected headers, copied from the real files they imitate.
var (
	// finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv
	wantEASubscriptionHeader = "BillingAccountId,BillingAccountName,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,AccountOwnerId,AccountName,SubscriptionId,SubscriptionName,Date,Product,PartNumber,MeterId,ServiceFamily,MeterCategory,MeterSubCategory,MeterRegion,MeterName,Quantity,EffectivePrice,Cost,UnitPrice,BillingCurrency,ResourceLocation,AvailabilityZone,ConsumedService,ResourceId,ResourceName,ServiceInfo1,ServiceInfo2,AdditionalInfo,Tags,InvoiceSectionId,InvoiceSection,CostCenter,UnitOfMeasure,ResourceGroup,ReservationId,ReservationName,ProductOrderId,ProductOrderName,OfferId,IsAzureCreditEligible,Term,PublisherName,PlanName,ChargeType,Frequency,PublisherType,PayGPrice,PricingModel,CostAllocationRuleName,benefitId,benefitName"
	// opencost/headersets/Enterprise.csv + benefitId,benefitName
	wantEABillingHeader = "InvoiceSectionName,AccountName,AccountOwnerId,SubscriptionId,SubscriptionName,ResourceGroup,ResourceLocation,Date,ProductName,MeterCategory,MeterSubCategory,MeterId,MeterName,MeterRegion,UnitOfMeasure,Quantity,EffectivePrice,CostInBillingCurrency,CostCenter,ConsumedService,ResourceId,Tags,OfferId,AdditionalInfo,ServiceInfo1,ServiceInfo2,ResourceName,ReservationId,ReservationName,UnitPrice,ProductOrderId,ProductOrderName,Term,PublisherType,PublisherName,ChargeType,Frequency,PricingModel,AvailabilityZone,BillingAccountId,BillingAccountName,BillingCurrencyCode,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,InvoiceSectionId,IsAzureCreditEligible,PartNumber,PayGPrice,PlanName,ServiceFamily,CostAllocationRuleName,benefitId,benefitName"
	// cost-apis.md §4.2, MCA 2023-12-01-preview
	wantMCAHeader = "invoiceId,previousInvoiceId,billingAccountId,billingAccountName,billingProfileId,billingProfileName,invoiceSectionId,invoiceSectionName,resellerName,resellerMpnId,costCenter,billingPeriodEndDate,billingPeriodStartDate,servicePeriodEndDate,servicePeriodStartDate,date,serviceFamily,productOrderId,productOrderName,consumedService,meterId,meterName,meterCategory,meterSubCategory,meterRegion,ProductId,ProductName,SubscriptionId,subscriptionName,publisherType,publisherId,publisherName,resourceGroupName,ResourceId,resourceLocation,location,effectivePrice,quantity,unitOfMeasure,chargeType,billingCurrency,pricingCurrency,costInBillingCurrency,costInPricingCurrency,costInUsd,paygCostInBillingCurrency,paygCostInUsd,exchangeRatePricingToBilling,exchangeRateDate,isAzureCreditEligible,serviceInfo1,serviceInfo2,additionalInfo,tags,PayGPrice,frequency,term,reservationId,reservationName,pricingModel,unitPrice,costAllocationRuleName,benefitId,benefitName,provider"
)

// TestFullCycle runs create → 202 → poll → 200 → download over HTTPS for
// every scope kind and checks the files against the ground truth.
func TestFullCycle(t *testing.T) {
	mcaSub := ""
	tests := []struct {
		name     string
		scope    string
		body     string
		header   string
		cost     string
		currency string
		from, to string
	}{
		{"EA subscription", subScope, `{"metric":"ActualCost","timePeriod":{"start":"2026-10-30","end":"2026-11-02"}}`, wantEASubscriptionHeader, "Cost", "USD", "2026-10-30", "2026-11-02"},
		{"EA subscription amortized", subScope, `{"metric":"AmortizedCost","timePeriod":{"start":"2026-11-01","end":"2026-11-03"}}`, wantEASubscriptionHeader, "Cost", "USD", "2026-11-01", "2026-11-03"},
		{"EA billing account billing period", eaAccount, `{"metric":"ActualCost","billingPeriod":"202610"}`, wantEABillingHeader, "CostInBillingCurrency", "USD", "2026-10-01", "2026-10-31"},
		{"EA department", "providers/Microsoft.Billing/billingAccounts/8611537/departments/4242", `{"timePeriod":{"start":"2026-11-19","end":"2026-11-22"}}`, wantEABillingHeader, "CostInBillingCurrency", "USD", "2026-11-19", "2026-11-22"},
		{"EA enrollment account", "providers/Microsoft.Billing/enrollmentAccounts/1234", `{"metric":"AmortizedCost","timePeriod":{"start":"2026-09-01","end":"2026-09-02"}}`, wantEABillingHeader, "CostInBillingCurrency", "USD", "2026-09-01", "2026-09-02"},
		{"MCA billing account", mcaAccount, `{"timePeriod":{"start":"2026-10-31","end":"2026-11-01"}}`, wantMCAHeader, "costInBillingCurrency", "EUR", "2026-10-31", "2026-11-01"},
		{"MCA billing profile amortized", mcaProfile, `{"metric":"AmortizedCost","timePeriod":{"start":"2026-11-01","end":"2026-11-02"}}`, wantMCAHeader, "costInBillingCurrency", "EUR", "2026-11-01", "2026-11-02"},
		{"MCA invoice section", mcaProfile + "/invoiceSections/XY12-AB34-CD5-EF6", `{"timePeriod":{"start":"2026-11-10","end":"2026-11-11"}}`, wantMCAHeader, "costInBillingCurrency", "EUR", "2026-11-10", "2026-11-11"},
		{"MCA customer", mcaAccount + "/customers/13579", `{"timePeriod":{"start":"2026-11-10","end":"2026-11-10"}}`, wantMCAHeader + ",partnerName,customerTenantId,customerName", "costInBillingCurrency", "EUR", "2026-11-10", "2026-11-10"},
		{"MCA subscription", "", `{"timePeriod":{"start":"2026-11-10","end":"2026-11-11"}}`, wantMCAHeader, "costInBillingCurrency", "EUR", "2026-11-10", "2026-11-11"},
	}
	e := newEnv(t, func(c *config) { c.rowsPerDay = 25 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := tt.scope
			if scope == "" {
				scope = "subscriptions/" + mcaSub
			}
			resp, b := e.create(scope, tt.body)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, e.srv.URL+"/"+scope+"/providers/Microsoft.CostManagement/costDetailsOperationResults/") || !strings.HasSuffix(loc, "?api-version=2024-08-01") {
				t.Errorf("Location = %q", loc)
			}
			for i := range 2 {
				resp, _ := e.do("GET", loc, "", e.armHeaders())
				if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Location") == "" {
					t.Fatalf("poll %d: %d %v, want 202 with Location and Retry-After", i+1, resp.StatusCode, resp.Header)
				}
			}
			resp, b = e.do("GET", loc, "", e.armHeaders())
			if resp.StatusCode != 200 {
				t.Fatalf("third poll: %d %s", resp.StatusCode, b)
			}
			checkResultShape(t, b)
			var res operationResult
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if res.Status != "Completed" || res.Manifest.ManifestVersion != "2024-08-01" || res.Manifest.BlobCount != len(res.Manifest.Blobs) ||
				res.Manifest.RequestContext.RequestScope != scope || !strings.HasSuffix(res.ID, "/costDetailsOperationResults/"+res.Name) {
				t.Errorf("result = %s", b)
			}
			var rows int
			sum := decimal.Zero
			var byteCount int64
			for _, blob := range res.Manifest.Blobs {
				resp, data := e.do("GET", blob.BlobLink, "", nil)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv" || resp.Header.Get("Content-Length") != fmt.Sprint(len(data)) {
					t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
				}
				if int64(len(data)) != blob.ByteCount {
					t.Errorf("blob byteCount %d, downloaded %d bytes", blob.ByteCount, len(data))
				}
				byteCount += int64(len(data))
				p := parseBlob(t, data)
				if got := strings.Join(p.header, ","); got != tt.header {
					t.Fatalf("header =\n%s\nwant\n%s", got, tt.header)
				}
				rows += len(p.records)
				sum = sum.Add(sumColumn(t, p, tt.cost))
				curCol := map[string]string{"Cost": "BillingCurrency", "CostInBillingCurrency": "BillingCurrencyCode", "costInBillingCurrency": "billingCurrency"}[tt.cost]
				for _, c := range column(p, curCol) {
					if c != tt.currency {
						t.Fatalf("billing currency %q, want %q", c, tt.currency)
					}
				}
				if mcaSub == "" && strings.HasPrefix(tt.header, "invoiceId") {
					mcaSub = column(p, "SubscriptionId")[0]
				}
			}
			if byteCount != res.Manifest.ByteCount {
				t.Errorf("manifest byteCount %d, blobs sum %d", res.Manifest.ByteCount, byteCount)
			}
			truth := e.truth(scope, res.Manifest.RequestContext.RequestBody.Metric, tt.from, tt.to)
			if rows != truth.Rows || !sum.Equal(decimal.RequireFromString(truth.BilledCost)) {
				t.Errorf("report has %d rows costing %s, truth %d rows costing %s", rows, sum, truth.Rows, truth.BilledCost)
			}
			if rows == 0 {
				t.Errorf("report has no rows")
			}
			dayRows := 0
			for _, d := range truth.Days {
				dayRows += d.Rows
				if d.Currency != tt.currency {
					t.Errorf("truth currency %q, want %q", d.Currency, tt.currency)
				}
			}
			if dayRows != truth.Rows {
				t.Errorf("truth days sum to %d rows, total says %d", dayRows, truth.Rows)
			}
		})
	}
}

// checkResultShape compares the JSON keys of a Completed result with the
// spec example CostDetailsOperationResultsBySubscriptionScope.json.
func checkResultShape(t *testing.T, b []byte) {
	t.Helper()
	const example = `{"id":"x","name":"x","status":"Completed","manifest":{"manifestVersion":"2024-08-01","dataFormat":"Csv","blobCount":1,"byteCount":32741,"compressData":false,"requestContext":{"requestScope":"x","requestBody":{"metric":"ActualCost"}},"blobs":[{"blobLink":"x","byteCount":32741}]},"validTill":"2022-05-10T08:08:46.1973252Z"}`
	var want, got map[string]any
	json.Unmarshal([]byte(example), &want)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var keys func(prefix string, v any) []string
	keys = func(prefix string, v any) []string {
		var out []string
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if prefix == ".manifest.requestContext.requestBody" {
					continue // echoes the request
				}
				out = append(out, prefix+"."+k)
				out = append(out, keys(prefix+"."+k, x)...)
			}
		case []any:
			if len(v) > 0 {
				out = append(out, keys(prefix+"[]", v[0])...)
			}
		}
		slices.Sort(out)
		return out
	}
	if w, g := keys("", want), keys("", got); !reflect.DeepEqual(w, g) {
		t.Errorf("result keys = %v, want %v", g, w)
	}
	vt, _ := got["validTill"].(string)
	if _, err := time.Parse(validTillLayout, vt); err != nil {
		t.Errorf("validTill %q: %v", vt, err)
	}
}

func TestReportSnapshotAndRestatement(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"metric":"ActualCost","timePeriod":{"start":"2026-11-10","end":"2026-11-10"}}`
	before := e.truth(subScope, "ActualCost", "2026-11-10", "2026-11-10")

	// A report requested before the restatement keeps the old revision.
	resp, b := e.create(subScope, body)
	if resp.StatusCode != 202 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	loc := resp.Header.Get("Location")
	resp, b = e.do("POST", "/_sim/restate", `{"scope":"/`+strings.ToUpper(subScope)+`","metric":"ActualCost","date":"2026-11-10"}`, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ActualCost":1`) {
		t.Fatalf("restate: %d %s", resp.StatusCode, b)
	}
	after := e.truth(subScope, "ActualCost", "2026-11-10", "2026-11-10")
	if after.BilledCost == before.BilledCost && after.Rows == before.Rows {
		t.Fatalf("restatement changed nothing: %+v", after)
	}
	if am := e.truth(subScope, "AmortizedCost", "2026-11-10", "2026-11-10"); am.Days[0].Rows == 0 {
		t.Fatalf("amortized truth empty")
	}
	_, b = e.pollUntilDone(loc)
	var res operationResult
	json.Unmarshal(b, &res)
	old := parseBlob(t, e.download(res.Manifest.Blobs[0].BlobLink))
	if got := sumColumn(t, old, "Cost"); !got.Equal(decimal.RequireFromString(before.BilledCost)) || len(old.records) != before.Rows {
		t.Errorf("old report: %d rows, %s; want the pre-restatement %d rows, %s", len(old.records), got, before.Rows, before.BilledCost)
	}
	res = e.report(subScope, body)
	fresh := parseBlob(t, e.download(res.Manifest.Blobs[0].BlobLink))
	if got := sumColumn(t, fresh, "Cost"); !got.Equal(decimal.RequireFromString(after.BilledCost)) || len(fresh.records) != after.Rows {
		t.Errorf("new report: %d rows, %s; want the restated %d rows, %s", len(fresh.records), got, after.Rows, after.BilledCost)
	}

	// Restating all dates and metrics of a scope.
	resp, b = e.do("POST", "/_sim/restate", `{"scope":"`+subScope+`"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("restate all: %d %s", resp.StatusCode, b)
	}
	if again := e.truth(subScope, "ActualCost", "2026-11-10", "2026-11-10"); again.BilledCost == after.BilledCost {
		t.Errorf("restating all dates did not change 2026-11-10")
	}
	for _, bad := range []string{`{"scope":"subscriptions/x/resourceGroups/y"}`, `{"scope":"` + subScope + `","metric":"Usage"}`, `{"scope":"` + subScope + `","date":"11/10/2026"}`, `{"scope":"` + subScope + `","extra":1}`} {
		if resp, b := e.do("POST", "/_sim/restate", bad, nil); resp.StatusCode != 400 {
			t.Errorf("restate %s: %d %s, want 400", bad, resp.StatusCode, b)
		}
	}
}

func TestMultiBlob(t *testing.T) {
	e := newEnv(t, func(c *config) { c.blobRows = 30 })
	res := e.report(eaAccount, `{"timePeriod":{"start":"2026-11-01","end":"2026-11-04"}}`)
	truth := e.truth(eaAccount, "ActualCost", "2026-11-01", "2026-11-04")
	want := (truth.Rows + 29) / 30
	if res.Manifest.BlobCount != want || len(res.Manifest.Blobs) != want || want < 3 {
		t.Fatalf("blobCount = %d (%d links), want %d for %d rows", res.Manifest.BlobCount, len(res.Manifest.Blobs), want, truth.Rows)
	}
	rows := 0
	sum := decimal.Zero
	for i, blob := range res.Manifest.Blobs {
		if !strings.Contains(blob.BlobLink, fmt.Sprintf("/part_%d.csv?", i)) {
			t.Errorf("blob %d link %s", i, blob.BlobLink)
		}
		p := parseBlob(t, e.download(blob.BlobLink))
		if strings.Join(p.header, ",") != wantEABillingHeader {
			t.Errorf("blob %d header %v", i, p.header)
		}
		if len(p.records) > 30 || (i < want-1 && len(p.records) != 30) {
			t.Errorf("blob %d has %d rows", i, len(p.records))
		}
		rows += len(p.records)
		sum = sum.Add(sumColumn(t, p, "CostInBillingCurrency"))
	}
	if rows != truth.Rows || !sum.Equal(decimal.RequireFromString(truth.BilledCost)) {
		t.Errorf("blobs hold %d rows costing %s, truth %d rows costing %s", rows, sum, truth.Rows, truth.BilledCost)
	}
}

func TestNoData(t *testing.T) {
	future := `{"timePeriod":{"start":"2026-12-01","end":"2026-12-05"}}`
	t.Run("NoDataFound by default", func(t *testing.T) {
		e := newEnv(t, nil)
		res := e.report(subScope, future)
		if res.Status != "NoDataFound" || res.Manifest == nil || res.Manifest.BlobCount != 0 || len(res.Manifest.Blobs) != 0 {
			t.Errorf("result = %+v", res)
		}
		if tr := e.truth(subScope, "ActualCost", "2026-12-01", "2026-12-05"); tr.Rows != 0 || tr.BilledCost != "0" || len(tr.Days) != 5 {
			t.Errorf("truth = %+v", tr)
		}
	})
	t.Run("204 on create", func(t *testing.T) {
		e := newEnv(t, func(c *config) { c.faults.NoDataAs = "204" })
		resp, b := e.create(subScope, future)
		if resp.StatusCode != http.StatusNoContent || len(b) != 0 {
			t.Errorf("create: %d %q, want 204 and no body", resp.StatusCode, b)
		}
		resp, b = e.create(subScope, `{"timePeriod":{"start":"2026-11-01","end":"2026-11-01"}}`)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("create with data: %d %s, want 202", resp.StatusCode, b)
		}
	})
	t.Run("no rows at all", func(t *testing.T) {
		e := newEnv(t, func(c *config) { c.rowsPerDay = 0 })
		if res := e.report(eaAccount, `{"billingPeriod":"202610"}`); res.Status != "NoDataFound" {
			t.Errorf("status = %q", res.Status)
		}
	})
}

func TestInvoiceID(t *testing.T) {
	e := newEnv(t, nil)
	// Find the invoice costsim issued for September and ask for it.
	res := e.report(mcaProfile, `{"timePeriod":{"start":"2026-09-05","end":"2026-09-05"}}`)
	p := parseBlob(t, e.download(res.Manifest.Blobs[0].BlobLink))
	inv := column(p, "invoiceId")[0]
	if inv == "" {
		t.Fatal("closed month has no invoiceId")
	}
	res = e.report(mcaProfile, `{"invoiceId":"`+inv+`"}`)
	if tp := res.Manifest.RequestContext.RequestBody; tp.InvoiceID != inv {
		t.Errorf("requestBody = %+v", tp)
	}
	dates := map[string]bool{}
	for _, blob := range res.Manifest.Blobs {
		for _, d := range column(parseBlob(t, e.download(blob.BlobLink)), "date") {
			dates[d[:2]+"/"+d[6:]] = true
		}
	}
	if len(dates) != 1 || !dates["09/2026"] {
		t.Errorf("invoice report months = %v, want 09/2026", dates)
	}
	// The open month has no invoice yet.
	res = e.report(mcaProfile, `{"timePeriod":{"start":"2026-11-05","end":"2026-11-05"}}`)
	if inv := column(parseBlob(t, e.download(res.Manifest.Blobs[0].BlobLink)), "invoiceId")[0]; inv != "" {
		t.Errorf("open month invoiceId = %q", inv)
	}
}
