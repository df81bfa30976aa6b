package main

import (
	"strings"
	"time"
)

// FocusCost exports: the FOCUS 1.0 columns of Microsoft's FocusCost dataset
// (cost-apis.md §4.8, finops-toolkit FocusCost_1.0.json), in its order. One
// row per line of the day, whichever metric has it: BilledCost is the
// line's ActualCost (0 for the amortized-only unused reservation hours),
// EffectiveCost its AmortizedCost (0 for purchases and refunds).

var focusColumns = strings.Split("BilledCost,BillingAccountId,BillingAccountName,BillingAccountType,BillingCurrency,BillingPeriodEnd,"+
	"BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,ChargePeriodEnd,ChargePeriodStart,"+
	"CommitmentDiscountCategory,CommitmentDiscountId,CommitmentDiscountName,CommitmentDiscountStatus,CommitmentDiscountType,"+
	"ConsumedQuantity,ConsumedUnit,ContractedCost,ContractedUnitPrice,EffectiveCost,InvoiceIssuerName,ListCost,ListUnitPrice,"+
	"PricingCategory,PricingQuantity,PricingUnit,ProviderName,PublisherName,RegionId,RegionName,ResourceId,ResourceName,"+
	"ResourceType,ServiceCategory,ServiceName,SkuId,SkuPriceId,SubAccountId,SubAccountName,SubAccountType,Tags,x_AccountId,"+
	"x_AccountName,x_AccountOwnerId,x_BilledCostInUsd,x_BilledUnitPrice,x_BillingAccountId,x_BillingAccountName,"+
	"x_BillingExchangeRate,x_BillingExchangeRateDate,x_BillingProfileId,x_BillingProfileName,x_ContractedCostInUsd,"+
	"x_CostAllocationRuleName,x_CostCenter,x_CustomerId,x_CustomerName,x_EffectiveCostInUsd,x_EffectiveUnitPrice,x_InvoiceId,"+
	"x_InvoiceIssuerId,x_InvoiceSectionId,x_InvoiceSectionName,x_ListCostInUsd,x_PartnerCreditApplied,x_PartnerCreditRate,"+
	"x_PricingBlockSize,x_PricingCurrency,x_PricingSubcategory,x_PricingUnitDescription,x_PublisherCategory,x_PublisherId,"+
	"x_ResellerId,x_ResellerName,x_ResourceGroupName,x_ResourceType,x_ServicePeriodEnd,x_ServicePeriodStart,x_SkuDescription,"+
	"x_SkuDetails,x_SkuIsCreditEligible,x_SkuMeterCategory,x_SkuMeterId,x_SkuMeterName,x_SkuMeterSubcategory,x_SkuOfferId,"+
	"x_SkuOrderId,x_SkuOrderName,x_SkuPartNumber,x_SkuRegion,x_SkuServiceFamily,x_SkuTerm,x_SkuTier", ",")

// focusTime is FOCUS's date-time layout.
const focusTime = "2006-01-02T15:04:05Z"

// focusRows renders every line of [from, to] at the ActualCost revisions.
func (s *sim) focusRows(sc scope, from, to, today time.Time) ([]string, [][]string) {
	p, days := s.lines(sc, "", from, to)
	var rows [][]string
	for _, d := range days {
		for _, l := range d.lines {
			v := s.gen.focusValues(p, l, today)
			row := make([]string, len(focusColumns))
			for i, c := range focusColumns {
				row[i] = v[c]
			}
			rows = append(rows, row)
		}
	}
	r := rngFor(s.gen.seed, sc.key, "focus", from.Format(time.DateOnly), to.Format(time.DateOnly), "order")
	r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	return focusColumns, rows
}

func (g *generator) focusValues(p *population, l *line, today time.Time) map[string]string {
	metric := actualCost
	if l.metricOnly == amortizedCost {
		metric = amortizedCost
	}
	v := g.values(p, l, metric, today)
	billed, effective := "0", "0"
	billedUSD, effectiveUSD := "0", "0"
	if l.metricOnly != amortizedCost {
		b, u := g.billedCost(p, l, actualCost, today)
		billed, billedUSD = money(b, l.sci), money(u, l.sci)
	}
	if l.metricOnly != actualCost {
		b, u := g.billedCost(p, l, amortizedCost, today)
		effective, effectiveUSD = money(b, l.sci), money(u, l.sci)
	}
	category, class := "Usage", ""
	switch l.chargeType {
	case "Purchase":
		category = "Purchase"
	case "Refund":
		category, class = "Purchase", "Correction"
	}
	frequency := map[string]string{"UsageBased": "Usage-Based", "Recurring": "Recurring", "OneTime": "One-Time"}[l.frequency]
	pricing := "Standard"
	switch l.pricingModel {
	case "Reservation", "SavingsPlan":
		pricing = "Committed"
	case "Spot":
		pricing = "Dynamic"
	}
	var cdCategory, cdType, cdStatus, cdID, cdName string
	if b := l.benefit; b != nil {
		cdID, cdName = strings.ToLower(b.path()), b.name
		cdCategory, cdType = "Usage", "Reservation"
		if !b.reservation {
			cdCategory, cdType = "Spend", "Savings Plan"
		}
		switch l.chargeType {
		case "Usage":
			cdStatus = "Used"
		case "UnusedReservation":
			cdStatus = "Unused"
		}
	}
	account := "/providers/Microsoft.Billing/billingAccounts/" + p.billingAccountID
	profile := v["billingProfileId"]
	if !p.mca {
		profile = v["BillingProfileId"]
	}
	rate, rateDate, pricingCurrency := "1", "", p.currency
	if p.mca {
		rate, rateDate, pricingCurrency = g.exchangeRate(l.day).String(), monthStart(l.day).Format(focusTime), "USD"
	}
	resType := ""
	if i := strings.Index(strings.ToLower(l.resourceID), "/providers/"); i >= 0 {
		parts := strings.Split(l.resourceID[i+len("/providers/"):], "/")
		if len(parts) >= 2 {
			resType = strings.ToLower(parts[0] + "/" + parts[1])
		}
	}
	tags := jsonObject(l.tags, true, false)
	if tags == "" {
		tags = "{}"
	}
	return map[string]string{
		"BilledCost": billed, "EffectiveCost": effective,
		"BillingAccountId": account, "BillingAccountName": p.billingAccountName, "BillingAccountType": map[bool]string{true: "Billing Profile", false: "Billing Account"}[p.mca],
		"BillingCurrency": p.currency, "BillingPeriodStart": monthStart(l.day).Format(focusTime), "BillingPeriodEnd": monthStart(l.day).AddDate(0, 1, 0).Format(focusTime),
		"ChargeCategory": category, "ChargeClass": class, "ChargeDescription": l.m.name, "ChargeFrequency": frequency,
		"ChargePeriodStart": l.day.Format(focusTime), "ChargePeriodEnd": l.day.AddDate(0, 0, 1).Format(focusTime),
		"CommitmentDiscountCategory": cdCategory, "CommitmentDiscountId": cdID, "CommitmentDiscountName": cdName,
		"CommitmentDiscountStatus": cdStatus, "CommitmentDiscountType": cdType,
		"ConsumedQuantity": l.qty.String(), "ConsumedUnit": l.m.unit, "ContractedCost": effective, "ContractedUnitPrice": l.unitPrice.String(),
		"InvoiceIssuerName": "Microsoft", "ListCost": l.qty.Mul(l.payg).String(), "ListUnitPrice": l.payg.String(),
		"PricingCategory": pricing, "PricingQuantity": l.qty.String(), "PricingUnit": l.m.unit, "ProviderName": "Microsoft", "PublisherName": "Microsoft",
		"RegionId": l.region.name, "RegionName": l.region.meterRegion, "ResourceId": l.resourceID, "ResourceName": l.resourceName,
		"ResourceType": resType, "ServiceCategory": l.m.family, "ServiceName": l.m.category, "SkuId": productIDs[l.m], "SkuPriceId": partNumber(l.m),
		"SubAccountId": "/subscriptions/" + l.sub.id, "SubAccountName": l.sub.name, "SubAccountType": "Subscription", "Tags": tags,
		"x_AccountName": l.sub.accountName, "x_AccountOwnerId": l.sub.accountOwner, "x_BilledCostInUsd": billedUSD,
		"x_BillingAccountId": p.billingAccountID, "x_BillingAccountName": p.billingAccountName,
		"x_BillingExchangeRate": rate, "x_BillingExchangeRateDate": rateDate, "x_BillingProfileId": profile,
		"x_CostCenter": l.sub.costCenter, "x_EffectiveCostInUsd": effectiveUSD, "x_EffectiveUnitPrice": l.effective(metric).String(),
		"x_InvoiceSectionId": l.sub.invoiceSectionID + l.sub.departmentID, "x_PricingCurrency": pricingCurrency,
		"x_PricingUnitDescription": l.m.unit, "x_ResourceGroupName": l.rg, "x_SkuDetails": jsonObject(l.info, true, false),
		"x_SkuIsCreditEligible": "true", "x_SkuMeterCategory": l.m.category, "x_SkuMeterId": meterID(l.m), "x_SkuMeterName": l.m.name,
		"x_SkuMeterSubcategory": l.m.subCategory, "x_SkuOfferId": l.sub.offerID, "x_SkuPartNumber": partNumber(l.m),
		"x_SkuRegion": l.region.meterRegion, "x_SkuServiceFamily": l.m.family, "x_SkuTerm": v["Term"] + v["term"],
		"x_ServicePeriodStart": monthStart(l.day).Format(focusTime), "x_ServicePeriodEnd": monthStart(l.day).AddDate(0, 1, 0).Format(focusTime),
	}
}
