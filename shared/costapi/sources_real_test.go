package costapi

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/costsync/costsync/internal/realdata"
	"github.com/costsync/costsync/shared/costcsv"
)

// The spec's own examples (azure-rest-api-specs, in the shared real data)
// go through the same decoding, CSV landing and parsing as live pages.

// exampleBody returns responses.200.body of a spec example.
func exampleBody(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(realdata.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	return ex.Responses["200"].Body
}

func TestQueryExamplesTyped(t *testing.T) {
	for _, tc := range []struct {
		file      string
		rows      int
		firstDate string
		first     string
		next      bool
	}{
		{"azure-rest-api-specs/cost-management-2024-08-01/SubscriptionQuery.json", 4, "2018-03-31", "2.10333307059661", false},
		{"azure-rest-api-specs/cost-management-2024-08-01/BillingAccountQuery.json", 4, "2018-03-31", "19.545363672276512", true},
		{"azure-rest-api-specs/cost-management-2024-08-01/SubscriptionQueryGrouping.json", 4, "", "0.009865586851323632", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := DecodeQueryPage(exampleBody(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if (p.NextLink != "") != tc.next {
				t.Errorf("nextLink %q", p.NextLink)
			}
			rows, err := p.TypedRows()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.rows {
				t.Fatalf("%d rows, want %d", len(rows), tc.rows)
			}
			r := rows[0]
			if r.Date != tc.firstDate || r.Currency != "USD" || r.Values["PreTaxCost"].String() != tc.first {
				t.Errorf("first row %+v, want date %q, USD, PreTaxCost %s exactly", r, tc.firstDate, tc.first)
			}
			if r.Dimensions["ResourceGroup"] == "" {
				t.Errorf("no ResourceGroup dimension in %v", r.Dimensions)
			}
		})
	}
}

func TestQueryRowErrorsNameTheColumn(t *testing.T) {
	p, err := DecodeQueryPage([]byte(`{"properties":{"nextLink":null,"columns":[{"name":"Cost","type":"Number"},{"name":"UsageDate","type":"Number"},{"name":"Currency","type":"String"}],"rows":[[1.5,20240131,"EUR"],[2,"2024-01-31","EUR"]]}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.TypedRows()
	if err == nil || !strings.Contains(err.Error(), "row 2 column UsageDate") {
		t.Fatalf("got %v, want an error naming row 2 column UsageDate", err)
	}
	if _, err := DecodeQueryPage([]byte(`{"properties":{"columns":[{"name":"Cost","type":"Number"}],"rows":[[1,2]]}}`)); err == nil {
		t.Fatal("a row with more values than columns was accepted")
	}
}

func TestUsageDetailsExamplesParse(t *testing.T) {
	for _, tc := range []struct {
		file     string
		schema   costcsv.Schema
		cost     string
		currency string
		resource string
	}{
		{"azure-rest-api-specs/consumption-2023-11-01/UsageDetailsListForBillingPeriodByBillingAccount.json", costcsv.SchemaEA, "0.000342194841184", "CAD",
			"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/resource group 1/providers/microsoft.storage/storageaccounts/resource name 1"},
		{"azure-rest-api-specs/consumption-2023-11-01/UsageDetailsListByMCABillingAccount.json", costcsv.SchemaMCA, "1.84763819095477", "USD",
			"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/resource group 1/providers/microsoft.storage/storageaccounts/resource name 1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var page struct {
				Value []UsageDetail `json:"value"`
			}
			if err := json.Unmarshal(exampleBody(t, tc.file), &page); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := (&UsageDetailsPage{Records: page.Value}).WriteCSV(&b); err != nil {
				t.Fatal(err)
			}
			rd, err := costcsv.NewReader(&b, &costcsv.Options{File: "page.csv"})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			if rd.Schema() != tc.schema {
				t.Errorf("schema %s, want %s", rd.Schema(), tc.schema)
			}
			rec, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec.BilledCost.String() != tc.cost || rec.BillingCurrency != tc.currency || rec.ResourceID != tc.resource {
				t.Errorf("record cost %s %s resource %q; want %s %s %q", rec.BilledCost, rec.BillingCurrency, rec.ResourceID, tc.cost, tc.currency, tc.resource)
			}
			if rec.Date != "2019-03-30" && rec.Date != "2019-10-30" {
				t.Errorf("date %q", rec.Date)
			}
			if tags := rec.Tags.Map(); tags["env"] != "newcrp" || tags["dev"] != "tools" {
				t.Errorf("record-level tags lost: %v", rec.Tags)
			}
			if tc.schema == costcsv.SchemaMCA && rec.AdditionalInfo.Map()["ServiceType"] != "Standard_D1" {
				t.Errorf("additionalInfo (a JSON string in the record) lost: %v", rec.AdditionalInfo)
			}
			if kind, _ := rec.Raw.Get("kind"); kind == "" || rec.Raw.Map()["name"] != "usageDetails_Id1" {
				t.Errorf("record fields missing from Raw: %v", rec.Raw)
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Errorf("second record: %v, want EOF", err)
			}
		})
	}
}

func TestUsageAggregatesExampleParses(t *testing.T) {
	var page struct {
		Value []UsageAggregate `json:"value"`
	}
	if err := json.Unmarshal(exampleBody(t, "azure-rest-api-specs/commerce-2015-06-01-preview/GetUsageAggregatesList.json"), &page); err != nil {
		t.Fatal(err)
	}
	// The ARM form, with instanceData as a JSON string (the shape of
	// MicrosoftDocs' billing-usage-rate-card-partner-solution-cloudcruiser.md).
	var arm UsageAggregate
	if err := json.Unmarshal([]byte(`{"id":"/subscriptions/s/providers/Microsoft.Commerce/UsageAggregates/Daily_BRSDT_20150623_0000","name":"Daily_BRSDT_20150623_0000","properties":{
		"subscriptionId":"f68815e6-3c41-45ef-bbd8-5f83303c396b","usageStartTime":"2015-06-22T00:00:00+00:00","usageEndTime":"2015-06-23T00:00:00+00:00",
		"meterName":"Compute Hours","meterCategory":"Virtual Machines","unit":"Hours","meterId":"9e77b43e-1234",
		"instanceData":"{\"Microsoft.Resources\":{\"resourceUri\":\"/subscriptions/f68815e6-3c41-45ef-bbd8-5f83303c396b/resourceGroups/DEMOUSAGEAPI/providers/Microsoft.Compute/virtualMachines/MyDockerVM\",\"location\":\"eastus\",\"tags\":{\"Department\":\"Sales\"},\"additionalInfo\":{\"ImageType\":\"Canonical\",\"ServiceType\":\"Standard_D1\"}}}",
		"quantity":0.000000000000000000000001}}`), &arm); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := (&UsageAggregatesPage{Records: append(page.Value, arm)}).WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rd, err := costcsv.NewUsageReader(&b, &costcsv.Options{File: "usage.csv"})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	// Attributed by usage time (2015-03-03), though reported on 2014-05-01.
	if legacy.Date != "2015-03-03" || legacy.Quantity.String() != "0.057865" || legacy.RegionID != "westus" || legacy.ResourceName != "devtestvhdsd37a7bb567f9" {
		t.Errorf("legacy record: date %s qty %s region %q name %q", legacy.Date, legacy.Quantity, legacy.RegionID, legacy.ResourceName)
	}
	if !legacy.BilledCost.IsZero() || legacy.BillingCurrency != "" {
		t.Errorf("usage has no cost: %s %q", legacy.BilledCost, legacy.BillingCurrency)
	}
	rec, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	want := decimal.RequireFromString("0.000000000000000000000001")
	if rec.Date != "2015-06-22" || !rec.Quantity.Equal(want) || rec.ResourceGroup != "demousageapi" || rec.Tags.Map()["Department"] != "Sales" || rec.AdditionalInfo.Map()["ServiceType"] != "Standard_D1" || rec.RegionID != "eastus" {
		t.Errorf("ARM record: %+v", rec)
	}
	if rec.ID == legacy.ID {
		t.Error("two different records share an id")
	}
}
