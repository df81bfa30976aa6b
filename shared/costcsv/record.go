package costcsv

import (
	"time"

	"github.com/shopspring/decimal"
)

// Schema names the column layout a file was recognised as, from its header.
type Schema string

// The schemas the reader recognises. Detection rules are in detect (schema.go)
// and summarised on each constant.
const (
	// SchemaEA is the Enterprise Agreement cost-details layout: a Date column
	// and CostInBillingCurrency (current) or Cost (older files), with
	// BillingCurrencyCode, BillingCurrency or Currency as the currency.
	SchemaEA Schema = "ea"
	// SchemaMCA is the Microsoft Customer Agreement layout (camelCase names):
	// costInBillingCurrency plus at least one column only MCA files have
	// (billingCurrency, pricingCurrency, costInUsd, paygCostInBillingCurrency, ...).
	SchemaMCA Schema = "mca"
	// SchemaPAYG is the pay-as-you-go "usage only" layout: UsageDateTime and
	// PreTaxCost (SubscriptionGuid, InstanceId, Currency).
	SchemaPAYG Schema = "payg"
	// SchemaFOCUS10 is a FOCUS 1.0 / 1.0r2 export (BilledCost, ChargePeriodStart).
	SchemaFOCUS10 Schema = "focus-1.0"
	// SchemaFOCUS12 is a FOCUS 1.2(-preview) export: FOCUS plus a 1.2-only
	// column such as PricingCurrency, SkuPriceDetails or ServiceSubcategory.
	SchemaFOCUS12 Schema = "focus-1.2"
	// SchemaFOCUSPre is Microsoft's FOCUS 1.0-preview(v1) export: FOCUS plus
	// x_ChargeId, ChargeSubcategory or UsageQuantity, without ChargeClass.
	SchemaFOCUSPre Schema = "focus-1.0-preview"
)

// Record is one accepted source line, normalised. Field names follow FOCUS
// where a FOCUS column exists. Money is exact: every amount is a decimal parsed
// from the source text, and the text itself is kept in Raw.
//
// Source values "NULL" (any case) and empty strings both mean "no value".
type Record struct {
	// ID is deterministic: a hash of the line's canonical natural key plus its
	// occurrence number among lines identical in every identifying column
	// (32 lower-case hex characters).
	ID string
	// Occurrence counts from 1 among lines with the same natural key.
	Occurrence int
	// Line is the 1-based physical line where the record starts (header = 1).
	Line int
	// ContentHash is a hash of every source column's value: an unchanged line
	// has an unchanged hash (32 lower-case hex characters).
	ContentHash string

	// Date is the usage day (EA/MCA Date, PAYG UsageDateTime, FOCUS
	// ChargePeriodStart) as YYYY-MM-DD.
	Date string
	// ChargePeriodStart is the same instant with its time of day, in UTC:
	// midnight for daily sources, the hour for hourly FOCUS rows.
	ChargePeriodStart time.Time
	// ChargePeriodEnd is the exclusive end of the charge period, in UTC:
	// FOCUS ChargePeriodEnd (already exclusive), or the next midnight for
	// the daily EA, MCA and pay-as-you-go files. Zero when a FOCUS file
	// leaves it empty.
	ChargePeriodEnd time.Time
	// BillingPeriodStart is the first day of the billing period as
	// YYYY-MM-DD, empty where the source leaves it empty (CSP exports) or has
	// no such column (PAYG).
	BillingPeriodStart string
	// BillingPeriodEnd is the exclusive end of the billing period as
	// YYYY-MM-DD: FOCUS BillingPeriodEnd as written, or the day after the
	// last day that EA and MCA files write (BillingPeriodEndDate is
	// inclusive there). Empty where the source leaves it empty or has none.
	BillingPeriodEnd string

	// BillingCurrency is the currency of BilledCost (EA BillingCurrencyCode,
	// BillingCurrency or Currency; MCA billingCurrency; PAYG Currency; FOCUS
	// BillingCurrency). It is empty only for a file that has no currency column.
	BillingCurrency string
	// BilledCost is the cost in billing currency (EA/MCA CostInBillingCurrency
	// or Cost, PAYG PreTaxCost, FOCUS BilledCost).
	BilledCost decimal.Decimal
	// EffectiveCost is the amortized cost where the source has it (FOCUS
	// EffectiveCost); for EA/MCA files it equals BilledCost of that file.
	EffectiveCost decimal.Decimal
	// PricingCurrency is MCA pricingCurrency or FOCUS (x_)PricingCurrency;
	// empty for EA and PAYG, whose prices are in the billing currency.
	PricingCurrency string
	// CostInPricingCurrency is MCA costInPricingCurrency; nil where the
	// source has no such column or leaves it empty.
	CostInPricingCurrency *decimal.Decimal
	// CostInUSD is MCA costInUsd or FOCUS x_BilledCostInUsd; nil where the
	// source has no such column or leaves it empty.
	CostInUSD *decimal.Decimal
	// ExchangeRate is the pricing-to-billing exchange rate as written (MCA
	// exchangeRatePricingToBilling, FOCUS x_BillingExchangeRate); it is
	// checked to be a decimal.
	ExchangeRate string

	// BillingAccountID is the source's billing account id, as written.
	BillingAccountID string
	// SubAccountID is the subscription id (GUID), lower-cased; FOCUS
	// "/subscriptions/<guid>" ids are reduced to the GUID and the all-zero
	// GUID some older files write for unused commitments becomes empty.
	// Non-Azure FOCUS rows keep their own account id, lower-cased.
	SubAccountID string
	// SubAccountName is the subscription name (FOCUS SubAccountName).
	SubAccountName string
	// ResourceID is the lower-cased ARM id (EA/MCA ResourceId, PAYG
	// InstanceId, FOCUS ResourceId).
	ResourceID string
	// ResourceName is the source ResourceName as written.
	ResourceName string
	// ResourceGroup is lower-cased, from the resource group column or, where
	// that is empty or absent, parsed from ResourceID.
	ResourceGroup string
	// ResourceType is the lower-cased ARM resource type
	// ("microsoft.compute/virtualmachines"): PAYG ResourceType, FOCUS
	// x_ResourceType, else derived from ResourceID. FOCUS's display-name
	// ResourceType column stays in Raw.
	ResourceType string
	// ServiceName and ServiceCategory come from the FOCUS columns of that name
	// or, for EA/MCA/PAYG files, from Options.Services (ConsumedService and
	// ResourceType); they are empty when neither gives an answer.
	ServiceName     string
	ServiceCategory string
	// RegionID is FOCUS RegionId, or the location (ResourceLocationNormalized,
	// ResourceLocation) lower-cased with spaces removed.
	RegionID string
	// ChargeCategory is the FOCUS charge category: the FOCUS column, or mapped
	// from ChargeType as the finops-toolkit's conversion guide does: Usage,
	// Purchase, Credit and Tax stay; UnusedReservation, UnusedSavingsPlan ->
	// Usage; Refund -> Purchase; any other charge type -> Adjustment.
	// Pay-as-you-go files are usage only (Usage). Empty when ChargeType is.
	ChargeCategory string // Usage, Purchase, Tax, Credit, Adjustment (FOCUS)
	// ChargeClass is the FOCUS charge class: the FOCUS column, or
	// "Correction" for a Refund ChargeType.
	ChargeClass string
	// ChargeType is the source ChargeType/chargeType as written; FOCUS and
	// PAYG files have none.
	ChargeType string // source ChargeType/chargeType (Usage, Purchase, Refund, ...)
	// PricingModel is EA/MCA PricingModel (OnDemand, Reservation, SavingsPlan,
	// Spot) or FOCUS PricingCategory.
	PricingModel string
	// MeterID, MeterName and MeterCategory are the source meter columns as
	// written (FOCUS x_SkuMeterId, x_SkuMeterName, x_SkuMeterCategory).
	MeterID       string
	MeterName     string
	MeterCategory string
	// Quantity is in UnitOfMeasure units (EA/MCA Quantity, PAYG UsageQuantity,
	// FOCUS PricingQuantity, else ConsumedQuantity); an empty quantity is 0.
	Quantity decimal.Decimal
	// UnitOfMeasure is the source unit as written ("10K", "1 Hour"; FOCUS
	// x_PricingUnitDescription, else PricingUnit).
	UnitOfMeasure string
	// BenefitID is the lower-cased reservation / savings plan id (benefitId,
	// else ReservationId; FOCUS CommitmentDiscountId).
	BenefitID string // reservation / savings plan id
	// Tags holds the resource tags as canonical JSON (see Tags); a
	// brace-less EA fragment is read as the object it abbreviates.
	Tags Tags
	// AdditionalInfo is the AdditionalInfo (FOCUS x_SkuDetails) object as
	// canonical JSON; Map decodes it with numbers as json.Number, so no
	// digit is lost.
	AdditionalInfo Object

	// Raw holds every source column: its header name as written in the file
	// (BOM and surrounding spaces removed) and its value verbatim.
	Raw Raw
}
