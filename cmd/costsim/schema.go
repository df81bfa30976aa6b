package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// schema is one report column set.
type schema struct {
	name     string
	columns  []string
	cost     string // the cost-in-billing-currency column
	currency string // the billing currency column
}

// eaSubscriptionSchema is the column set of the real EA file
// finops-toolkit/powershell-test-assets/EA_ActualCost_Small.csv (55 columns,
// legacy names Cost, BillingCurrency, Product, InvoiceSection).
var eaSubscriptionSchema = &schema{
	name: "ea-subscription",
	columns: strings.Split("BillingAccountId,BillingAccountName,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,"+
		"AccountOwnerId,AccountName,SubscriptionId,SubscriptionName,Date,Product,PartNumber,MeterId,ServiceFamily,MeterCategory,"+
		"MeterSubCategory,MeterRegion,MeterName,Quantity,EffectivePrice,Cost,UnitPrice,BillingCurrency,ResourceLocation,"+
		"AvailabilityZone,ConsumedService,ResourceId,ResourceName,ServiceInfo1,ServiceInfo2,AdditionalInfo,Tags,InvoiceSectionId,"+
		"InvoiceSection,CostCenter,UnitOfMeasure,ResourceGroup,ReservationId,ReservationName,ProductOrderId,ProductOrderName,OfferId,"+
		"IsAzureCreditEligible,Term,PublisherName,PlanName,ChargeType,Frequency,PublisherType,PayGPrice,PricingModel,"+
		"CostAllocationRuleName,benefitId,benefitName", ","),
	cost: "Cost", currency: "BillingCurrency",
}

// eaBillingSchema is the EA layout of opencost/headersets/Enterprise.csv (53
// columns) plus benefitId and benefitName: the 55-column EA schema version
// 2023-12-01-preview (cost-apis.md §4.1).
var eaBillingSchema = &schema{
	name: "ea-billing",
	columns: strings.Split("InvoiceSectionName,AccountName,AccountOwnerId,SubscriptionId,SubscriptionName,ResourceGroup,ResourceLocation,"+
		"Date,ProductName,MeterCategory,MeterSubCategory,MeterId,MeterName,MeterRegion,UnitOfMeasure,Quantity,EffectivePrice,"+
		"CostInBillingCurrency,CostCenter,ConsumedService,ResourceId,Tags,OfferId,AdditionalInfo,ServiceInfo1,ServiceInfo2,"+
		"ResourceName,ReservationId,ReservationName,UnitPrice,ProductOrderId,ProductOrderName,Term,PublisherType,PublisherName,"+
		"ChargeType,Frequency,PricingModel,AvailabilityZone,BillingAccountId,BillingAccountName,BillingCurrencyCode,"+
		"BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,InvoiceSectionId,IsAzureCreditEligible,"+
		"PartNumber,PayGPrice,PlanName,ServiceFamily,CostAllocationRuleName,benefitId,benefitName", ","),
	cost: "CostInBillingCurrency", currency: "BillingCurrencyCode",
}

// mcaColumns is the 65-column MCA schema (2021-10-01 / 2023-12-01-preview,
// cost-apis.md §4.2), with its real mixed casing.
const mcaColumns = "invoiceId,previousInvoiceId,billingAccountId,billingAccountName,billingProfileId,billingProfileName," +
	"invoiceSectionId,invoiceSectionName,resellerName,resellerMpnId,costCenter,billingPeriodEndDate,billingPeriodStartDate," +
	"servicePeriodEndDate,servicePeriodStartDate,date,serviceFamily,productOrderId,productOrderName,consumedService,meterId," +
	"meterName,meterCategory,meterSubCategory,meterRegion,ProductId,ProductName,SubscriptionId,subscriptionName,publisherType," +
	"publisherId,publisherName,resourceGroupName,ResourceId,resourceLocation,location,effectivePrice,quantity,unitOfMeasure," +
	"chargeType,billingCurrency,pricingCurrency,costInBillingCurrency,costInPricingCurrency,costInUsd,paygCostInBillingCurrency," +
	"paygCostInUsd,exchangeRatePricingToBilling,exchangeRateDate,isAzureCreditEligible,serviceInfo1,serviceInfo2,additionalInfo," +
	"tags,PayGPrice,frequency,term,reservationId,reservationName,pricingModel,unitPrice,costAllocationRuleName,benefitId," +
	"benefitName,provider"

var mcaSchema = &schema{
	name:    "mca",
	columns: strings.Split(mcaColumns, ","),
	cost:    "costInBillingCurrency", currency: "billingCurrency",
}

// mcaCustomerSchema is the MCA schema plus the partner columns of
// opencost/headersets/EnterpriseCamel.csv, for customer scopes.
var mcaCustomerSchema = &schema{
	name:    "mca-customer",
	columns: strings.Split(mcaColumns+",partnerName,customerTenantId,customerName", ","),
	cost:    "costInBillingCurrency", currency: "billingCurrency",
}

// Date layouts of the real files.
const (
	usDate      = "01/02/2006" // MM/dd/yyyy
	shortUSDate = "1/2/06"     // M/d/yy (older MCA exchangeRateDate)
)

// money writes a money value: plain decimal, or for tiny values of lines
// marked sci, exponent form such as 1.5E-05 (both exact).
func money(d decimal.Decimal, sci bool) string {
	if sci && !d.IsZero() && d.Abs().LessThan(decimal.New(1, -4)) {
		return sciString(d)
	}
	return d.String()
}

// sciString writes d exactly in exponent form: 1.5E-05.
func sciString(d decimal.Decimal) string {
	c := new(big.Int).Abs(d.Coefficient())
	digits := c.String()
	exp := int(d.Exponent())
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	digits = trimmed
	if digits == "" {
		return "0"
	}
	e := exp + len(digits) - 1
	mant := digits[:1]
	if len(digits) > 1 {
		mant += "." + digits[1:]
	}
	sign := ""
	if d.Sign() < 0 {
		sign = "-"
	}
	esign := "+"
	if e < 0 {
		esign, e = "-", -e
	}
	return fmt.Sprintf("%s%sE%s%02d", sign, mant, esign, e)
}

// jsonString is s as a JSON string, without HTML escaping.
func jsonString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jsonObject writes kvs as a JSON object, compact or with the spaces some
// producers put in; braces false writes the EA fragment form ("k": "v",…).
func jsonObject(kvs []kv, braces, spaced bool) string {
	if len(kvs) == 0 {
		return ""
	}
	var b strings.Builder
	if braces {
		b.WriteByte('{')
	}
	for i, p := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		if spaced {
			b.WriteString("  ")
		}
		b.WriteString(jsonString(p.k))
		b.WriteByte(':')
		if !braces || spaced {
			b.WriteByte(' ')
		}
		if p.raw {
			b.WriteString(p.v)
		} else {
			b.WriteString(jsonString(p.v))
		}
	}
	if braces {
		b.WriteByte('}')
	}
	return b.String()
}

// exchangeRate is the month's pricing-to-billing rate (USD → EUR), 13
// decimals like 0.9234567890123.
func (g *generator) exchangeRate(day time.Time) decimal.Decimal {
	h := hash64(g.seed, "exchange-rate", monthStart(day).Format("2006-01"))
	return decimal.New(9_000_000_000_000+int64(h%500_000_000_000), -13)
}

// invoiceID is the MCA invoice of a billing profile's month, "" while the
// month is open.
func (g *generator) invoiceID(profile string, month, today time.Time) string {
	if !monthStart(month).Before(monthStart(today)) {
		return ""
	}
	return fmt.Sprintf("G%09d", hash64(g.seed, "invoice", strings.ToUpper(profile), monthStart(month).Format("200601"))%1_000_000_000)
}

// values are a line's column values for metric, keyed by column name.
func (g *generator) values(p *population, l *line, metric string, today time.Time) map[string]string {
	if p.mca {
		return g.mcaValues(p, l, metric, today)
	}
	return g.eaValues(p, l, metric)
}

// meterIDs, partNumbers and productIDs are fixed per meter, like the real
// ones (they do not depend on the seed).
var meterIDs, partNumbers, productIDs = func() (ids, parts, products map[*meter]string) {
	ids, parts, products = map[*meter]string{}, map[*meter]string{}, map[*meter]string{}
	for _, m := range meters {
		ids[m] = stableGUID(0, "meter", m.key)
		parts[m] = fmt.Sprintf("AA%c-%05d", 'A'+byte(hash64(0, "part", m.key)%8), hash64(0, "partnumber", m.key)%100000)
		h := hash64(0, "product", m.key)
		products[m] = fmt.Sprintf("DZH318Z0%04X%04d", h%0xffff, (h>>16)%10000)
	}
	return
}()

func meterID(m *meter) string { return meterIDs[m] }

func partNumber(m *meter) string { return partNumbers[m] }

// benefitColumns are the reservation/savings plan columns of a line.
func benefitColumns(l *line) (resID, resName, orderID, orderName, term, benefitID, benefitName string) {
	b := l.benefit
	if b == nil {
		return
	}
	orderID, orderName, term, benefitID, benefitName = b.orderID, b.productOrderName, b.term, b.path(), b.name
	if b.reservation {
		resID, resName = b.id, b.name
		if l.chargeType == "Purchase" || l.chargeType == "Refund" {
			// Purchases and refunds name the order and a benefit path
			// without the reservation id, as in the real EA file.
			resID = b.orderID
			benefitID = "/providers/Microsoft.Capacity/reservationOrders/" + b.orderID + "/reservations/"
		}
	}
	return
}

func (g *generator) eaValues(p *population, l *line, metric string) map[string]string {
	resID, resName, orderID, orderName, term, benefitID, benefitName := benefitColumns(l)
	sub := l.sub
	product := l.m.product + " - " + l.region.meterRegion
	cost := money(l.cost(metric), l.sci)
	publisher, plan := "Microsoft", l.m.name
	if l.chargeType != "Usage" {
		publisher, plan = "", ""
	}
	offer := sub.offerID
	if l.chargeType == "Purchase" || l.chargeType == "Refund" {
		offer = ""
	}
	v := map[string]string{
		"BillingAccountId": p.billingAccountID, "BillingAccountName": p.billingAccountName,
		"BillingPeriodStartDate": monthStart(l.day).Format(usDate), "BillingPeriodEndDate": monthEnd(l.day).Format(usDate),
		"BillingProfileId": p.billingAccountID, "BillingProfileName": p.billingAccountName,
		"AccountOwnerId": sub.accountOwner, "AccountName": sub.accountName,
		"SubscriptionId": sub.id, "SubscriptionName": sub.name, "Date": l.day.Format(usDate),
		"Product": product, "ProductName": product, "PartNumber": partNumber(l.m), "MeterId": meterID(l.m),
		"ServiceFamily": l.m.family, "MeterCategory": l.m.category, "MeterSubCategory": l.m.subCategory,
		"MeterRegion": l.region.meterRegion, "MeterName": l.m.name, "Quantity": l.qty.String(),
		"EffectivePrice": l.effective(metric).String(), "Cost": cost, "CostInBillingCurrency": cost,
		"UnitPrice": l.unitPrice.String(), "BillingCurrency": p.currency, "BillingCurrencyCode": p.currency,
		"ResourceLocation": l.location, "AvailabilityZone": l.zone, "ConsumedService": l.service,
		"ResourceId": l.resourceID, "ResourceName": l.resourceName, "ServiceInfo1": "", "ServiceInfo2": l.serviceInfo2,
		"AdditionalInfo": jsonObject(l.info, true, l.spacedInfo), "Tags": jsonObject(l.tags, false, false),
		"InvoiceSectionId": sub.departmentID, "InvoiceSection": sub.department, "InvoiceSectionName": sub.department,
		"CostCenter": sub.costCenter, "UnitOfMeasure": l.m.unit, "ResourceGroup": l.rg,
		"ReservationId": resID, "ReservationName": resName, "ProductOrderId": orderID, "ProductOrderName": orderName,
		"OfferId": offer, "IsAzureCreditEligible": "True", "Term": term, "PublisherName": publisher, "PlanName": plan,
		"ChargeType": l.chargeType, "Frequency": l.frequency, "PublisherType": "Azure",
		"PayGPrice": l.payg.String(), "PricingModel": l.pricingModel, "CostAllocationRuleName": "",
		"benefitId": benefitID, "benefitName": benefitName,
	}
	return v
}

func (g *generator) mcaValues(p *population, l *line, metric string, today time.Time) map[string]string {
	resID, resName, orderID, orderName, term, benefitID, benefitName := benefitColumns(l)
	sub := l.sub
	if orderID == "" {
		orderID, orderName = sub.azurePlanID, "Azure plan"
	}
	rate := g.exchangeRate(l.day)
	costPricing := l.cost(metric)
	costBilling := costPricing.Mul(rate).Round(24)
	paygPricing := l.qty.Mul(l.payg)
	paygBilling := paygPricing.Mul(rate).Round(24)
	rateDate := monthStart(l.day).Format(usDate)
	if sub.shortRateDate {
		rateDate = monthStart(l.day).Format(shortUSDate)
	}
	periodStart, periodEnd := monthStart(l.day).Format(usDate), monthEnd(l.day).Format(usDate)
	if p.noBillingPeriod {
		periodStart, periodEnd = "", ""
	}
	product := l.m.product + " - " + l.region.meterRegion
	publisherType := "Microsoft"
	if l.chargeType != "Usage" {
		publisherType = "Azure"
	}
	v := map[string]string{
		"invoiceId": g.invoiceID(sub.billingProfileID, l.day, today), "previousInvoiceId": "",
		"billingAccountId": p.billingAccountID, "billingAccountName": p.billingAccountName,
		"billingProfileId": sub.billingProfileID, "billingProfileName": sub.billingProfileName,
		"invoiceSectionId": sub.invoiceSectionID, "invoiceSectionName": sub.invoiceSectionName,
		"resellerName": "", "resellerMpnId": "", "costCenter": sub.costCenter,
		"billingPeriodEndDate": periodEnd, "billingPeriodStartDate": periodStart,
		"servicePeriodEndDate": monthEnd(l.day).Format(usDate), "servicePeriodStartDate": monthStart(l.day).Format(usDate),
		"date": l.day.Format(usDate), "serviceFamily": l.m.family, "productOrderId": orderID, "productOrderName": orderName,
		"consumedService": l.service, "meterId": meterID(l.m), "meterName": l.m.name, "meterCategory": l.m.category,
		"meterSubCategory": l.m.subCategory, "meterRegion": l.region.meterRegion,
		"ProductId": productIDs[l.m], "ProductName": product,
		"SubscriptionId": sub.id, "subscriptionName": sub.name, "publisherType": publisherType, "publisherId": "",
		"publisherName": "Microsoft", "resourceGroupName": l.rg, "ResourceId": l.resourceID,
		"resourceLocation": l.location, "location": l.region.meterRegion,
		"effectivePrice": l.effective(metric).String(), "quantity": l.qty.String(), "unitOfMeasure": l.m.unit,
		"chargeType": l.chargeType, "billingCurrency": p.currency, "pricingCurrency": "USD",
		"costInBillingCurrency": money(costBilling, l.sci), "costInPricingCurrency": money(costPricing, l.sci),
		"costInUsd": money(costPricing, l.sci), "paygCostInBillingCurrency": money(paygBilling, l.sci),
		"paygCostInUsd": money(paygPricing, l.sci), "exchangeRatePricingToBilling": rate.String(),
		"exchangeRateDate": rateDate, "isAzureCreditEligible": "True", "serviceInfo1": "", "serviceInfo2": l.serviceInfo2,
		"additionalInfo": jsonObject(l.info, true, l.spacedInfo), "tags": jsonObject(l.tags, true, false),
		"PayGPrice": l.payg.String(), "frequency": l.frequency, "term": term, "reservationId": resID,
		"reservationName": resName, "pricingModel": l.pricingModel, "unitPrice": l.unitPrice.String(),
		"costAllocationRuleName": "", "benefitId": benefitID, "benefitName": benefitName, "provider": "Azure",
		"partnerName": p.partnerName, "customerTenantId": p.customerTenantID, "customerName": p.customerName,
	}
	return v
}

// row renders a line in the schema's column order.
func (g *generator) row(p *population, l *line, metric string, today time.Time) []string {
	v := g.values(p, l, metric, today)
	out := make([]string, len(p.schema.columns))
	for i, c := range p.schema.columns {
		out[i] = v[c]
	}
	return out
}

// reportRows renders every line of the days in [start, end] for metric at
// the revisions rev gives, in a deterministic shuffled order (real files are
// not sorted).
func (g *generator) reportRows(sc scope, metric string, start, end, today time.Time, rev func(time.Time) int) (*schema, [][]string) {
	p := g.population(sc)
	var rows [][]string
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		for _, l := range forMetric(g.dayLines(p, d, today, rev(d)), metric) {
			rows = append(rows, g.row(p, l, metric, today))
		}
	}
	r := rngFor(g.seed, sc.key, metric, start.Format(time.DateOnly), end.Format(time.DateOnly), "order")
	r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	return p.schema, rows
}

// utf8BOM starts every blob, as in the real files.
const utf8BOM = "\ufeff"

// blobs splits rows into CSV blobs of at most perBlob data rows (0: one
// blob), each with a BOM and the header line. RFC 4180 quoting, LF line ends.
func blobs(s *schema, rows [][]string, perBlob int) ([][]byte, error) {
	if perBlob <= 0 || perBlob > len(rows) {
		perBlob = max(len(rows), 1)
	}
	var out [][]byte
	for i := 0; i < len(rows) || i == 0; i += perBlob {
		part := rows[i:min(i+perBlob, len(rows))]
		var b bytes.Buffer
		b.WriteString(utf8BOM)
		w := csv.NewWriter(&b)
		if err := w.Write(s.columns); err != nil {
			return nil, fmt.Errorf("write header: %w", err)
		}
		if err := w.WriteAll(part); err != nil {
			return nil, fmt.Errorf("write rows: %w", err)
		}
		out = append(out, b.Bytes())
		if len(rows) == 0 {
			break
		}
	}
	return out, nil
}

// dayTruth is one day of ground truth.
type dayTruth struct {
	Date       string `json:"date"`
	Currency   string `json:"currency"`
	Rows       int    `json:"rows"`
	BilledCost string `json:"billedCost"`
	// UsageRows and UsageQuantity are the day's metered usage as Commerce
	// UsageAggregates reports it (daily, with details): the Usage lines of
	// the ActualCost truth and the exact sum of their quantities.
	UsageRows     int    `json:"usageRows"`
	UsageQuantity string `json:"usageQuantity"`
}

// truth computes the rows and exact billed cost (the sum of the schema's
// cost-in-billing-currency column, parsed from the rendered text) of each day
// in [from, to]. Every day of the range is listed, days without rows too
// (rows 0, billedCost "0").
func (g *generator) truth(sc scope, metric string, from, to, today time.Time, rev func(time.Time) int) ([]dayTruth, error) {
	p := g.population(sc)
	idx := -1
	for i, c := range p.schema.columns {
		if c == p.schema.cost {
			idx = i
		}
	}
	var out []dayTruth
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		sum := decimal.Zero
		lines := forMetric(g.dayLines(p, d, today, rev(d)), metric)
		for _, l := range lines {
			text := g.row(p, l, metric, today)[idx]
			v, err := decimal.NewFromString(text)
			if err != nil {
				return nil, fmt.Errorf("parse generated cost %q: %w", text, err)
			}
			sum = sum.Add(v)
		}
		out = append(out, dayTruth{Date: d.Format(time.DateOnly), Currency: p.currency, Rows: len(lines), BilledCost: sum.String()})
	}
	return out, nil
}
