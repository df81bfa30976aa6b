// Package costcsv reads Azure cost files (Cost Details reports, exports, portal
// downloads) as a stream of normalised records with exact money and stable ids.
package costcsv

import (
	"github.com/shopspring/decimal"
)

// Schema names the column layout a file was recognised as, from its header.
type Schema string

// The schemas the reader recognises.
const (
	SchemaEA       Schema = "ea"        // Enterprise Agreement, PascalCase columns
	SchemaMCA      Schema = "mca"       // Microsoft Customer Agreement, camelCase columns
	SchemaPAYG     Schema = "payg"      // pay-as-you-go usage files (UsageDateTime, PreTaxCost)
	SchemaFOCUS10  Schema = "focus-1.0" // FOCUS 1.0 / 1.0r2 exports
	SchemaFOCUS12  Schema = "focus-1.2" // FOCUS 1.2(-preview) exports
	SchemaFOCUSPre Schema = "focus-1.0-preview"
)

// Record is one accepted source line, normalised. Field names follow FOCUS
// where a FOCUS column exists. Money is exact: every amount is a decimal parsed
// from the source text, and the text itself is kept in Raw.
type Record struct {
	// ID is deterministic: a hash of the line's canonical natural key plus its
	// occurrence number among lines identical in every identifying column.
	ID string
	// Occurrence counts from 1 among lines with the same natural key.
	Occurrence int
	// Line is the 1-based physical line where the record starts (header = 1).
	Line int
	// ContentHash is a hash of every source column's value: an unchanged line
	// has an unchanged hash.
	ContentHash string

	// Date is the usage day (EA/MCA Date, PAYG UsageDateTime, FOCUS
	// ChargePeriodStart) as YYYY-MM-DD.
	Date string

	BillingCurrency string
	// BilledCost is the cost in billing currency (EA/MCA CostInBillingCurrency
	// or Cost, PAYG PreTaxCost, FOCUS BilledCost).
	BilledCost decimal.Decimal
	// EffectiveCost is the amortized cost where the source has it (FOCUS
	// EffectiveCost); for EA/MCA files it equals BilledCost of that file.
	EffectiveCost   decimal.Decimal
	PricingCurrency string
	// CostInPricingCurrency and CostInUSD are nil where the source has no such column.
	CostInPricingCurrency *decimal.Decimal
	CostInUSD             *decimal.Decimal
	ExchangeRate          string

	BillingAccountID string
	SubAccountID     string // subscription id (GUID), lower-cased
	SubAccountName   string
	ResourceID       string // lower-cased ARM id
	ResourceName     string
	ResourceGroup    string // lower-cased
	ResourceType     string
	ServiceName      string
	ServiceCategory  string
	RegionID         string
	ChargeCategory   string // Usage, Purchase, Tax, Credit, Adjustment (FOCUS)
	ChargeType       string // source ChargeType/chargeType (Usage, Purchase, Refund, ...)
	PricingModel     string
	MeterID          string
	MeterName        string
	MeterCategory    string
	Quantity         decimal.Decimal
	UnitOfMeasure    string
	BenefitID        string // reservation / savings plan id
	Tags             map[string]string
	AdditionalInfo   map[string]any

	// Raw holds every source column, keyed by its header name as written in
	// the file (BOM and surrounding spaces removed), with the value verbatim.
	Raw map[string]string
}
