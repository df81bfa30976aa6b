package costcsv

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// eaColumns is the EA cost-details layout of version 2024-08-01 (57
// columns, cost-apis.md §4.1).
var eaColumns = strings.Split("InvoiceSectionName,AccountName,AccountOwnerId,SubscriptionId,SubscriptionName,ResourceGroup,ResourceLocation,Date,ProductName,MeterCategory,MeterSubCategory,MeterId,MeterName,MeterRegion,UnitOfMeasure,Quantity,EffectivePrice,CostInBillingCurrency,CostCenter,ConsumedService,ResourceId,Tags,OfferId,AdditionalInfo,ServiceInfo1,ServiceInfo2,ResourceName,ReservationId,ReservationName,UnitPrice,ProductOrderId,ProductOrderName,Term,PublisherType,PublisherName,ChargeType,Frequency,PricingModel,AvailabilityZone,BillingAccountId,BillingAccountName,BillingCurrencyCode,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,InvoiceSectionId,IsAzureCreditEligible,PartNumber,PayGPrice,PlanName,ServiceFamily,CostAllocationRuleName,benefitId,benefitName,AccountId,ResourceLocationNormalized", ",")

// genEA generates an EA file of n data lines, shaped like the real ones
// (quoted tag fragments, AdditionalInfo JSON, 28-digit and exponent
// amounts, a quoted field with a comma, now and then one with a newline).
// Values come from small pools so that lines collide on their natural key;
// dupPercent of the lines repeat an earlier line exactly. It returns the
// header line and the data lines (each ending in "\n").
func genEA(seed uint64, n, dupPercent int) (header string, lines []string) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	subs := []string{"1caaa5a3-2b66-438e-8ab4-bce37d518c5d", "ED570627-0265-4620-BB42-BAE06BCFA914", "64e355d7-997c-491d-b0c1-8414dccfcf42"}
	amount := func() string {
		switch rng.IntN(6) {
		case 0:
			return "0"
		case 1:
			return fmt.Sprintf("%d.%028d", rng.IntN(3), rng.Int64N(1e18))
		case 2:
			return fmt.Sprintf("%d.%dE-0%d", 1+rng.IntN(9), rng.IntN(100), 1+rng.IntN(8))
		case 3:
			return fmt.Sprintf("-%d.%02d", rng.IntN(5), rng.IntN(100))
		default:
			return fmt.Sprintf("%d.%0*d", rng.IntN(40), 1+rng.IntN(15), rng.Int64N(1e15))
		}
	}
	header = strings.Join(eaColumns, ",") + "\n"
	var b strings.Builder
	for len(lines) < n {
		if len(lines) > 0 && rng.IntN(100) < dupPercent {
			lines = append(lines, lines[rng.IntN(len(lines))])
			continue
		}
		sub := pick(subs...)
		rg := pick("AHBTest", "databricks-rg-PeskyData", "CapRes_Test")
		typ := pick("Microsoft.Compute/virtualMachines", "Microsoft.Storage/storageAccounts", "Microsoft.Sql/servers")
		rid := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/res%d", sub, rg, typ, rng.IntN(4))
		tags := `"""CostCenter"": ""1234"",""env"": ""` + pick("prod", "dev") + `"""`
		if rng.IntN(50) == 0 {
			tags = "\"\"\"note\"\": \"\"multi\"\",\n\"\"env\"\": \"\"prod\"\"\"" // a newline between members
		}
		info := `"{""UsageType"":""ComputeHR"",""VCPUs"":` + pick("2", "4") + `,""ConsumedQuantity"":1.0}"`
		chargeType := pick("Usage", "Usage", "Usage", "Purchase", "Refund", "UnusedReservation")
		values := map[string]string{
			"InvoiceSectionName": "Unassigned", "AccountName": "ACM Team", "AccountOwnerId": "acm@testea.onmicrosoft.com",
			"SubscriptionId": sub, "SubscriptionName": "Cost Management Research", "ResourceGroup": rg,
			"ResourceLocation": pick("EastUS2", "uksouth", "West US 2"), "Date": fmt.Sprintf("09/%02d/2023", 1+rng.IntN(3)),
			"ProductName": `"Virtual Machines BS Series - B1s, UK South"`, "MeterCategory": "Virtual Machines",
			"MeterSubCategory": "BS Series", "MeterId": pick("f31064a2-ed95-4e11-8b69-270f2fc4fbdd", "aaaef613-418a-4a5f-af72-d224d7dee2c6"),
			"MeterName": "B1s", "MeterRegion": "UK South", "UnitOfMeasure": pick("1 Hour", "10K"), "Quantity": amount(),
			"EffectivePrice": amount(), "CostInBillingCurrency": amount(), "CostCenter": pick("ACM9000", "acm9000"),
			"ConsumedService": strings.Split(typ, "/")[0], "ResourceId": rid, "Tags": tags, "OfferId": "MS-AZR-0017P",
			"AdditionalInfo": info, "ResourceName": "res", "UnitPrice": amount(), "Term": "36", "PublisherType": "Azure",
			"PublisherName": "Microsoft", "ChargeType": chargeType, "Frequency": "UsageBased",
			"PricingModel": pick("OnDemand", "Reservation", "SavingsPlan"), "BillingAccountId": "8611537",
			"BillingAccountName": "Trey Research", "BillingCurrencyCode": "USD", "BillingPeriodStartDate": "09/01/2023",
			"BillingPeriodEndDate": "09/30/2023", "BillingProfileId": "8611537", "BillingProfileName": "Trey Research",
			"IsAzureCreditEligible": "True", "PartNumber": "AAA-88134", "PayGPrice": amount(), "ServiceFamily": "Compute",
			"AccountId": "123", "ResourceLocationNormalized": "uksouth",
		}
		if chargeType != "Usage" {
			values["ReservationId"] = "49ed0e4d-8e0c-4f1f-af2c-67c865056615"
			values["benefitId"] = "/providers/Microsoft.Capacity/reservationOrders/49ed0e4d-8e0c-4f1f-af2c-67c865056615/reservations/"
		}
		b.Reset()
		for i, c := range eaColumns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(values[c])
		}
		b.WriteByte('\n')
		lines = append(lines, b.String())
	}
	return header, lines
}
