package store

import (
	"strings"

	"github.com/costsync/costsync/shared/costcsv"
	"github.com/shopspring/decimal"
)

// Cost is the document stored for one source line in the costs container.
// Field names follow FOCUS where a FOCUS column exists. Money is kept as the
// exact decimal text (the *Exact fields); the float64 fields are for queries
// only and must never be summed for reconciliation.
type Cost struct {
	ID string `json:"id"`
	// PK is [CostPK] of Scope, Metric and Date.
	PK          string `json:"pk"`
	Scope       string `json:"scope"`
	Metric      string `json:"metric"`
	Date        string `json:"date"`
	WindowID    string `json:"windowId"`
	Generation  int64  `json:"generation"`
	ContentHash string `json:"contentHash"`
	File        string `json:"file"`
	Line        int    `json:"line"`

	BillingCurrency            string  `json:"billingCurrency"`
	BilledCost                 float64 `json:"billedCost"`
	BilledCostExact            string  `json:"billedCostExact"`
	EffectiveCost              float64 `json:"effectiveCost"`
	EffectiveCostExact         string  `json:"effectiveCostExact"`
	PricingCurrency            string  `json:"pricingCurrency,omitempty"`
	CostInPricingCurrencyExact string  `json:"costInPricingCurrencyExact,omitempty"`
	CostInUSDExact             string  `json:"costInUsdExact,omitempty"`
	ExchangeRate               string  `json:"exchangeRate,omitempty"`

	BillingAccountID string            `json:"billingAccountId,omitempty"`
	SubAccountID     string            `json:"subAccountId,omitempty"`
	SubAccountName   string            `json:"subAccountName,omitempty"`
	ResourceID       string            `json:"resourceId,omitempty"`
	ResourceName     string            `json:"resourceName,omitempty"`
	ResourceGroup    string            `json:"resourceGroup,omitempty"`
	ResourceType     string            `json:"resourceType,omitempty"`
	ServiceName      string            `json:"serviceName,omitempty"`
	ServiceCategory  string            `json:"serviceCategory,omitempty"`
	RegionID         string            `json:"regionId,omitempty"`
	ChargeCategory   string            `json:"chargeCategory,omitempty"`
	ChargeType       string            `json:"chargeType,omitempty"`
	PricingModel     string            `json:"pricingModel,omitempty"`
	MeterID          string            `json:"meterId,omitempty"`
	MeterName        string            `json:"meterName,omitempty"`
	MeterCategory    string            `json:"meterCategory,omitempty"`
	QuantityExact    string            `json:"quantityExact"`
	UnitOfMeasure    string            `json:"unitOfMeasure,omitempty"`
	BenefitID        string            `json:"benefitId,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	AdditionalInfo   map[string]any    `json:"additionalInfo,omitempty"`

	// Raw holds every source column, keyed by its header name.
	Raw map[string]string `json:"raw"`
}

// NewCost builds the document for rec, read from file for the window
// windowID of generation generation. The scope is lower-cased.
func NewCost(rec *costcsv.Record, scope, metric, windowID string, generation int64, file string) Cost {
	scope = strings.ToLower(scope)
	return Cost{
		ID:          rec.ID,
		PK:          CostPK(scope, metric, rec.Date),
		Scope:       scope,
		Metric:      metric,
		Date:        rec.Date,
		WindowID:    windowID,
		Generation:  generation,
		ContentHash: rec.ContentHash,
		File:        file,
		Line:        rec.Line,

		BillingCurrency:            rec.BillingCurrency,
		BilledCost:                 rec.BilledCost.InexactFloat64(),
		BilledCostExact:            rec.BilledCost.String(),
		EffectiveCost:              rec.EffectiveCost.InexactFloat64(),
		EffectiveCostExact:         rec.EffectiveCost.String(),
		PricingCurrency:            rec.PricingCurrency,
		CostInPricingCurrencyExact: optionalExact(rec.CostInPricingCurrency),
		CostInUSDExact:             optionalExact(rec.CostInUSD),
		ExchangeRate:               rec.ExchangeRate,

		BillingAccountID: rec.BillingAccountID,
		SubAccountID:     rec.SubAccountID,
		SubAccountName:   rec.SubAccountName,
		ResourceID:       rec.ResourceID,
		ResourceName:     rec.ResourceName,
		ResourceGroup:    rec.ResourceGroup,
		ResourceType:     rec.ResourceType,
		ServiceName:      rec.ServiceName,
		ServiceCategory:  rec.ServiceCategory,
		RegionID:         rec.RegionID,
		ChargeCategory:   rec.ChargeCategory,
		ChargeType:       rec.ChargeType,
		PricingModel:     rec.PricingModel,
		MeterID:          rec.MeterID,
		MeterName:        rec.MeterName,
		MeterCategory:    rec.MeterCategory,
		QuantityExact:    rec.Quantity.String(),
		UnitOfMeasure:    rec.UnitOfMeasure,
		BenefitID:        rec.BenefitID,
		Tags:             rec.Tags.Map(),
		AdditionalInfo:   rec.AdditionalInfo.Map(),
		Raw:              rec.Raw.Map(),
	}
}

func optionalExact(d *decimal.Decimal) string {
	if d == nil {
		return ""
	}
	return d.String()
}
