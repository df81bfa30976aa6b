package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Consumption usage details, cost-apis.md §3.1:
// GET {scope}/providers/Microsoft.Consumption/usageDetails, pageable with
// nextLink ($skiptoken), records of kind "legacy" (EA, pay-as-you-go) or
// "modern" (MCA); 429 with x-ms-ratelimit-microsoft.consumption-retry-after.

var consumptionAPIVersions = []string{"2019-10-01", "2021-10-01", "2023-03-01", "2023-05-01", "2023-11-01", "2024-08-01"}

// usageDetailsMaxTop bounds $top, as the service does.
const usageDetailsMaxTop = 1000

// jsonField is one member of an ordered JSON object.
type jsonField struct {
	k string
	v any
}

// jsonObj is a JSON object that keeps its members' order, as the service
// writes them.
type jsonObj []jsonField

// MarshalJSON writes the members in order.
func (o jsonObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", f.k, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// usageFilter is what a usage details request selects.
type usageFilter struct {
	from, to      time.Time
	resourceGroup string
	chargeType    string
}

var (
	reFilterClause = regexp.MustCompile(`(?i)^\s*properties/(\w+)\s+(eq|ge|le|gt|lt)\s+'([^']*)'\s*$`)
	reFilterAnd    = regexp.MustCompile(`(?i)\s+and\s+`)
)

// parseUsageFilter reads the legacy $filter (usageStart ge, usageEnd le,
// resourceGroup eq, chargeType eq, joined by "and") or the MCA startDate
// and endDate parameters. msg is the 400 message when the request is bad.
func parseUsageFilter(q url.Values, sc scope, today time.Time) (f usageFilter, msg string) {
	f.from, f.to = monthStart(today), today
	filter := q.Get("$filter")
	if sc.mca {
		if filter != "" && strings.Contains(strings.ToLower(filter), "usage") {
			return f, "The $filter parameter on usage dates isn't supported for Microsoft Customer Agreement scopes; use startDate and endDate."
		}
		if s := q.Get("startDate"); s != "" {
			t, ok := parseDate(s)
			if !ok {
				return f, fmt.Sprintf("Invalid startDate '%s'.", s)
			}
			f.from = t
		}
		if s := q.Get("endDate"); s != "" {
			t, ok := parseDate(s)
			if !ok {
				return f, fmt.Sprintf("Invalid endDate '%s'.", s)
			}
			f.to = t
		}
	}
	if filter != "" {
		for _, clause := range reFilterAnd.Split(filter, -1) {
			m := reFilterClause.FindStringSubmatch(clause)
			if m == nil {
				return f, fmt.Sprintf("Invalid $filter clause '%s'. Supported: properties/usageStart ge, properties/usageEnd le, properties/resourceGroup eq, properties/chargeType eq, joined by 'and'.", strings.TrimSpace(clause))
			}
			field, op, v := strings.ToLower(m[1]), strings.ToLower(m[2]), m[3]
			switch {
			case field == "usagestart" && op == "ge":
				t, ok := parseDate(v)
				if !ok {
					return f, fmt.Sprintf("Invalid date '%s' in $filter.", v)
				}
				f.from = t
			case field == "usageend" && op == "le":
				t, ok := parseDate(v)
				if !ok {
					return f, fmt.Sprintf("Invalid date '%s' in $filter.", v)
				}
				f.to = t
			case field == "resourcegroup" && op == "eq":
				f.resourceGroup = v
			case field == "chargetype" && op == "eq":
				f.chargeType = v
			default:
				return f, fmt.Sprintf("Unsupported $filter clause '%s'.", strings.TrimSpace(clause))
			}
		}
	}
	switch {
	case f.to.Before(f.from):
		return f, "The usage end date is before the usage start date."
	case f.to.Sub(f.from) > maxTruthDays*24*time.Hour:
		return f, fmt.Sprintf("costsim answers at most %d days per request.", maxTruthDays)
	}
	return f, ""
}

func (f usageFilter) match(l *line) bool {
	return (f.resourceGroup == "" || strings.EqualFold(f.resourceGroup, l.rg)) &&
		(f.chargeType == "" || strings.EqualFold(f.chargeType, l.chargeType))
}

// serveUsageDetails is GET {scope}/providers/Microsoft.Consumption/usageDetails.
func (s *sim) serveUsageDetails(w http.ResponseWriter, r *http.Request, rawScope string) {
	if r.Method != http.MethodGet {
		writeARMError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "The requested method is not allowed; use GET.")
		return
	}
	if _, ok := s.checkARMVersions(w, r, consumptionAPIVersions); !ok {
		return
	}
	sc, err := parseScope(rawScope)
	if err != nil {
		writeScopeError(w, err)
		return
	}
	q := r.URL.Query()
	var metric string
	switch strings.ToLower(q.Get("metric")) {
	case "", "actualcost", "usage":
		metric = actualCost
	case "amortizedcost":
		metric = amortizedCost
	default:
		writeARMError(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid metric '%s'. Valid values are actualcost, amortizedcost and usage.", q.Get("metric")))
		return
	}
	f, msg := parseUsageFilter(q, sc, s.today())
	if msg != "" {
		writeARMError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	top, ok := pageSize(w, r, min(s.cfg.pageRows, usageDetailsMaxTop), usageDetailsMaxTop)
	if !ok {
		return
	}
	expand := strings.ToLower(q.Get("$expand"))
	bindSum := sha256.Sum256([]byte(strings.Join([]string{sc.key, metric, q.Get("$filter"), q.Get("startDate"), q.Get("endDate"), expand}, "\x00")))
	bind := hex.EncodeToString(bindSum[:8])
	offset := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		if offset, ok = decodePageToken(tok, bind); !ok {
			writeARMError(w, http.StatusBadRequest, "BadRequest", "Invalid $skiptoken.")
			return
		}
	}
	pop, days := s.lines(sc, metric, f.from, f.to)
	var all []*line
	for _, d := range days {
		for _, l := range d.lines {
			if f.match(l) {
				all = append(all, l)
			}
		}
	}
	end := min(offset+top, len(all))
	today := s.today()
	records := make([]jsonObj, 0, end-min(offset, end))
	for _, l := range all[min(offset, end):end] {
		records = append(records, s.gen.usageDetail(pop, l, metric, today, expand))
	}
	body := jsonObj{{"value", records}}
	if end < len(all) {
		nq := url.Values{}
		for k, vs := range q {
			if k != "$skiptoken" {
				nq[k] = vs
			}
		}
		nq.Set("$skiptoken", pageToken{Offset: end, Bind: bind}.encode())
		body = append(body, jsonField{"nextLink", "https://" + r.Host + "/" + sc.path + "/providers/Microsoft.Consumption/usageDetails?" + nq.Encode()})
	}
	writeJSON(w, http.StatusOK, body)
}

// usageDetail is one UsageDetail record: legacy for EA and pay-as-you-go,
// modern for MCA. Amounts are JSON numbers with the cost files' digits.
func (g *generator) usageDetail(p *population, l *line, metric string, today time.Time, expand string) jsonObj {
	v := g.values(p, l, metric, today)
	num := func(k string) json.Number { return json.Number(v[k]) }
	day := func(t time.Time) string { return t.Format(armTime) }
	name := stableGUID(g.seed, p.sc.key, metric, l.key)
	rec := jsonObj{
		{"id", "/" + p.sc.path + "/providers/Microsoft.Consumption/usageDetails/" + name},
		{"name", name},
		{"type", "Microsoft.Consumption/usageDetails"},
	}
	var tags map[string]string
	if len(l.tags) > 0 {
		tags = map[string]string{}
		for _, t := range l.tags {
			tags[t.k] = t.v
		}
	}
	info := jsonObject(l.info, true, l.spacedInfo)
	var props jsonObj
	if p.mca {
		rec = append(rec, jsonField{"kind", "modern"})
		periodStart, periodEnd := day(monthStart(l.day)), day(monthEnd(l.day))
		if p.noBillingPeriod {
			periodStart, periodEnd = "", ""
		}
		props = jsonObj{
			{"billingAccountId", v["billingAccountId"]}, {"billingAccountName", v["billingAccountName"]},
			{"billingPeriodStartDate", periodStart}, {"billingPeriodEndDate", periodEnd},
			{"billingProfileId", v["billingProfileId"]}, {"billingProfileName", v["billingProfileName"]},
			{"subscriptionGuid", v["SubscriptionId"]}, {"subscriptionName", v["subscriptionName"]},
			{"date", day(l.day)}, {"product", v["ProductName"]}, {"meterId", v["meterId"]},
			{"meterName", v["meterName"]}, {"meterRegion", v["meterRegion"]}, {"meterCategory", v["meterCategory"]},
			{"meterSubCategory", v["meterSubCategory"]}, {"serviceFamily", v["serviceFamily"]},
			{"quantity", num("quantity")}, {"unitOfMeasure", v["unitOfMeasure"]}, {"instanceName", v["ResourceId"]},
			{"costInUSD", num("costInUsd")}, {"unitPrice", num("unitPrice")}, {"billingCurrencyCode", v["billingCurrency"]},
			{"resourceLocation", v["resourceLocation"]}, {"consumedService", v["consumedService"]},
			{"serviceInfo1", v["serviceInfo1"]}, {"serviceInfo2", v["serviceInfo2"]},
			{"invoiceSectionId", v["invoiceSectionId"]}, {"invoiceSectionName", v["invoiceSectionName"]},
			{"costCenter", v["costCenter"]}, {"resourceGroup", v["resourceGroupName"]},
			{"reservationId", v["reservationId"]}, {"reservationName", v["reservationName"]},
			{"productOrderId", v["productOrderId"]}, {"productOrderName", v["productOrderName"]},
			{"isAzureCreditEligible", true}, {"publisherName", v["publisherName"]}, {"publisherType", v["publisherType"]},
			{"chargeType", v["chargeType"]}, {"frequency", v["frequency"]},
			{"costInBillingCurrency", num("costInBillingCurrency")}, {"costInPricingCurrency", num("costInPricingCurrency")},
			{"exchangeRateDate", day(monthStart(l.day))}, {"exchangeRatePricingToBilling", num("exchangeRatePricingToBilling")},
			{"invoiceId", v["invoiceId"]}, {"previousInvoiceId", v["previousInvoiceId"]},
			{"pricingCurrencyCode", v["pricingCurrency"]}, {"productIdentifier", v["ProductId"]},
			{"resourceLocationNormalized", v["location"]},
			{"servicePeriodStartDate", day(monthStart(l.day))}, {"servicePeriodEndDate", day(monthEnd(l.day))},
			{"customerTenantId", v["customerTenantId"]}, {"customerName", v["customerName"]},
			{"partnerName", v["partnerName"]}, {"term", v["term"]}, {"pricingModel", v["pricingModel"]},
			{"paygCostInBillingCurrency", num("paygCostInBillingCurrency")}, {"paygCostInUSD", num("paygCostInUsd")},
			{"payGPrice", num("PayGPrice")}, {"benefitId", v["benefitId"]}, {"benefitName", v["benefitName"]},
			{"additionalInfo", info},
		}
	} else {
		rec = append(rec, jsonField{"kind", "legacy"})
		var meterDetails any
		if strings.Contains(expand, "properties/meterdetails") {
			meterDetails = jsonObj{{"meterName", v["MeterName"]}, {"meterCategory", v["MeterCategory"]},
				{"meterSubCategory", v["MeterSubCategory"]}, {"unitOfMeasure", v["UnitOfMeasure"]}, {"serviceFamily", v["ServiceFamily"]}}
		}
		props = jsonObj{
			{"billingAccountId", v["BillingAccountId"]}, {"billingAccountName", v["BillingAccountName"]},
			{"billingPeriodStartDate", day(monthStart(l.day))}, {"billingPeriodEndDate", day(monthEnd(l.day))},
			{"billingProfileId", v["BillingProfileId"]}, {"billingProfileName", v["BillingProfileName"]},
			{"accountOwnerId", v["AccountOwnerId"]}, {"accountName", v["AccountName"]},
			{"subscriptionId", v["SubscriptionId"]}, {"subscriptionName", v["SubscriptionName"]},
			{"date", day(l.day)}, {"product", v["Product"]}, {"partNumber", v["PartNumber"]},
			{"meterId", v["MeterId"]}, {"meterDetails", meterDetails}, {"quantity", num("Quantity")},
			{"effectivePrice", num("EffectivePrice")}, {"cost", num("Cost")}, {"unitPrice", num("UnitPrice")},
			{"billingCurrency", v["BillingCurrency"]}, {"resourceLocation", v["ResourceLocation"]},
			{"consumedService", v["ConsumedService"]}, {"resourceId", v["ResourceId"]}, {"resourceName", v["ResourceName"]},
			{"serviceInfo1", v["ServiceInfo1"]}, {"serviceInfo2", v["ServiceInfo2"]},
			{"invoiceSection", v["InvoiceSection"]}, {"costCenter", v["CostCenter"]}, {"resourceGroup", v["ResourceGroup"]},
			{"reservationId", v["ReservationId"]}, {"reservationName", v["ReservationName"]},
			{"productOrderId", v["ProductOrderId"]}, {"productOrderName", v["ProductOrderName"]},
			{"offerId", v["OfferId"]}, {"isAzureCreditEligible", true}, {"term", v["Term"]},
			{"publisherName", v["PublisherName"]}, {"publisherType", v["PublisherType"]}, {"planName", v["PlanName"]},
			{"chargeType", v["ChargeType"]}, {"frequency", v["Frequency"]}, {"payGPrice", num("PayGPrice")},
			{"pricingModel", v["PricingModel"]}, {"benefitId", v["benefitId"]}, {"benefitName", v["benefitName"]},
		}
		if strings.Contains(expand, "properties/additionalinfo") {
			props = append(props, jsonField{"additionalInfo", info})
		}
	}
	if tags != nil {
		rec = append(rec, jsonField{"tags", tags})
	}
	return append(rec, jsonField{"properties", props})
}
