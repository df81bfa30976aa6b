package costcsv

import (
	"fmt"
	"strings"
)

// role is a logical column: what a column means, whatever the schema calls it.
type role int

const (
	rDate role = iota
	rCost
	rEffectiveCost
	rCurrency
	rPricingCurrency
	rCostInPricing
	rCostInUSD
	rExchangeRate
	rBillingPeriodStart
	rBillingPeriodEnd
	rChargePeriodEnd
	rBillingAccountID
	rBillingProfileID
	rInvoiceSectionID
	rAccountOwnerID
	rSubscription
	rSubscriptionName
	rResourceID
	rResourceName
	rResourceGroup
	rResourceType
	rLocation // the location as the row identity uses it
	rRegion   // the location RegionID is made from
	rConsumedService
	rServiceName
	rServiceCategory
	rChargeType
	rChargeCategory
	rChargeClass
	rPricingModel
	rCommitmentStatus
	rMeterID
	rMeterName
	rMeterCategory
	rQuantity
	rUnit
	rBenefitID
	rReservationID
	rPartNumber
	rProductID
	rOfferID
	rCostCenter
	rServiceInfo1
	rServiceInfo2
	rSkuPriceID
	rSkuTier
	rTags
	rAdditionalInfo
	numRoles
)

// spec is one schema's column layout: the English names (lower-case) that
// may carry each role, in order of preference, what a header must have to be
// recognised as this schema, and which roles identify a line.
type spec struct {
	schema Schema
	// family is mixed into ids: every FOCUS version shares "focus", so a
	// version change alone does not change ids.
	family string
	// required lists roles whose column must be present.
	required []role
	// markers, when set, must have at least one column present: they tell
	// MCA apart from EA files that share its cost column name.
	markers []string
	names   [numRoles][]string
	key     []role
	// exclusiveEnds is true when the source's period ends are exclusive
	// (FOCUS); legacy files write the last day of the period (inclusive).
	exclusiveEnds bool
}

// legacyNames are the names EA, MCA and PAYG files share; each schema
// overrides date, cost and currency.
var legacyNames = [numRoles][]string{
	rPricingCurrency:    {"pricingcurrency"},
	rCostInPricing:      {"costinpricingcurrency"},
	rCostInUSD:          {"costinusd"},
	rExchangeRate:       {"exchangeratepricingtobilling"},
	rBillingPeriodStart: {"billingperiodstartdate"},
	rBillingPeriodEnd:   {"billingperiodenddate"},
	rBillingAccountID:   {"billingaccountid"},
	rBillingProfileID:   {"billingprofileid"},
	rInvoiceSectionID:   {"invoicesectionid"},
	rAccountOwnerID:     {"accountownerid"},
	rSubscription:       {"subscriptionid", "subscriptionguid"},
	rSubscriptionName:   {"subscriptionname"},
	rResourceID:         {"resourceid", "instanceid", "instancename"},
	rResourceName:       {"resourcename"},
	rResourceGroup:      {"resourcegroup", "resourcegroupname"},
	rResourceType:       {"resourcetype"},
	rLocation:           {"resourcelocation", "location"},
	rRegion:             {"resourcelocationnormalized", "resourcelocation", "location"},
	rConsumedService:    {"consumedservice"},
	rChargeType:         {"chargetype"},
	rPricingModel:       {"pricingmodel"},
	rMeterID:            {"meterid"},
	rMeterName:          {"metername"},
	rMeterCategory:      {"metercategory"},
	rQuantity:           {"quantity", "usagequantity", "consumedquantity"},
	rUnit:               {"unitofmeasure"},
	rBenefitID:          {"benefitid"},
	rReservationID:      {"reservationid"},
	rPartNumber:         {"partnumber"},
	rProductID:          {"productid"},
	rOfferID:            {"offerid"},
	rCostCenter:         {"costcenter"},
	rServiceInfo1:       {"serviceinfo1"},
	rServiceInfo2:       {"serviceinfo2"},
	rTags:               {"tags"},
	rAdditionalInfo:     {"additionalinfo"},
}

// legacyKey are the columns Microsoft flags as building a unique id
// (understand-usage-details-fields.md, cost-apis.md §4.6), plus the columns
// an amortized file varies on: charge type, pricing model, benefit, unit.
var legacyKey = []role{
	rDate, rResourceID, rMeterID, rChargeType, rPricingModel, rBenefitID,
	rReservationID, rSubscription, rBillingAccountID, rBillingProfileID,
	rInvoiceSectionID, rAccountOwnerID, rPartNumber, rProductID, rOfferID,
	rCostCenter, rLocation, rServiceInfo1, rServiceInfo2, rUnit, rTags,
	rAdditionalInfo,
}

// focusKey follows the finops-toolkit data dictionary's "Generating a unique
// ID" for FOCUS, plus charge category/class, pricing category, commitment
// status, unit and service name, which tell apart the non-Microsoft rows of
// a FOCUS file that have none of the x_ columns.
var focusKey = []role{
	rDate, rBillingAccountID, rSubscription, rResourceID, rResourceName,
	rLocation, rResourceGroup, rBenefitID, rCommitmentStatus, rSkuPriceID,
	rMeterID, rPartNumber, rSkuTier, rOfferID, rAccountOwnerID, rCostCenter,
	rInvoiceSectionID, rBillingProfileID, rChargeCategory, rChargeClass,
	rPricingModel, rUnit, rServiceName, rTags, rAdditionalInfo,
}

func legacySpec(s Schema, date, cost, currency []string, markers []string) *spec {
	sp := &spec{
		schema:   s,
		family:   string(s),
		required: []role{rDate, rCost},
		markers:  markers,
		names:    legacyNames,
		key:      legacyKey,
	}
	sp.names[rDate] = date
	sp.names[rCost] = cost
	sp.names[rCurrency] = currency
	return sp
}

var focusSpec = &spec{
	schema:   SchemaFOCUS10,
	family:   "focus",
	required: []role{rDate, rCost, rEffectiveCost},
	names: [numRoles][]string{
		rDate:               {"chargeperiodstart"},
		rCost:               {"billedcost"},
		rEffectiveCost:      {"effectivecost"},
		rCurrency:           {"billingcurrency"},
		rPricingCurrency:    {"pricingcurrency", "x_pricingcurrency"},
		rCostInUSD:          {"x_billedcostinusd"},
		rExchangeRate:       {"x_billingexchangerate"},
		rBillingPeriodStart: {"billingperiodstart"},
		rBillingPeriodEnd:   {"billingperiodend"},
		rChargePeriodEnd:    {"chargeperiodend"},
		rBillingAccountID:   {"billingaccountid"},
		rBillingProfileID:   {"x_billingprofileid"},
		rInvoiceSectionID:   {"x_invoicesectionid"},
		rAccountOwnerID:     {"x_accountownerid"},
		rSubscription:       {"subaccountid"},
		rSubscriptionName:   {"subaccountname"},
		rResourceID:         {"resourceid"},
		rResourceName:       {"resourcename"},
		rResourceGroup:      {"x_resourcegroupname"},
		rResourceType:       {"x_resourcetype"},
		rLocation:           {"regionid", "region"},
		rRegion:             {"regionid", "region"},
		rServiceName:        {"servicename"},
		rServiceCategory:    {"servicecategory"},
		rChargeCategory:     {"chargecategory"},
		rChargeClass:        {"chargeclass"},
		rPricingModel:       {"pricingcategory"},
		rCommitmentStatus:   {"commitmentdiscountstatus"},
		rMeterID:            {"x_skumeterid"},
		rMeterName:          {"x_skumetername"},
		rMeterCategory:      {"x_skumetercategory"},
		rQuantity:           {"pricingquantity", "consumedquantity", "usagequantity"},
		rUnit:               {"x_pricingunitdescription", "pricingunit"},
		rBenefitID:          {"commitmentdiscountid"},
		rPartNumber:         {"x_skupartnumber"},
		rOfferID:            {"x_skuofferid"},
		rCostCenter:         {"x_costcenter"},
		rSkuPriceID:         {"skupriceid"},
		rSkuTier:            {"x_skutier"},
		rTags:               {"tags"},
		rAdditionalInfo:     {"x_skudetails"},
	},
	key:           focusKey,
	exclusiveEnds: true,
}

// specs are tried in order; the first whose requirements the header meets
// wins. MCA comes before EA because both can call the cost
// costInBillingCurrency; the MCA markers decide.
var specs = []*spec{
	focusSpec,
	legacySpec(SchemaMCA,
		[]string{"date", "usagedatetime"},
		[]string{"costinbillingcurrency"},
		[]string{"billingcurrency", "billingcurrencycode", "currency"},
		[]string{"billingcurrency", "pricingcurrency", "costinpricingcurrency", "costinusd",
			"paygcostinbillingcurrency", "paygcostinusd", "exchangeratepricingtobilling",
			"exchangeratedate", "invoiceid", "previousinvoiceid", "serviceperiodstartdate"}),
	legacySpec(SchemaEA,
		[]string{"date"},
		[]string{"costinbillingcurrency", "cost"},
		[]string{"billingcurrencycode", "billingcurrency", "currency"},
		nil),
	legacySpec(SchemaPAYG,
		[]string{"usagedatetime"},
		[]string{"pretaxcost"},
		[]string{"currency", "billingcurrency"},
		nil),
}

// FOCUS columns that tell the versions apart (FocusCost_*.json metadata).
var (
	focus12Only  = []string{"pricingcurrency", "skupricedetails", "capacityreservationid", "servicesubcategory", "skumeter", "invoiceid", "commitmentdiscountquantity", "x_amortizationclass"}
	focusPreOnly = []string{"x_chargeid", "chargesubcategory", "usagequantity", "x_ondemandcost"}
)

// englishName returns the lower-case English name of a header cell: a
// localized "Localized name (EnglishName)" becomes "englishname".
func englishName(h string) string {
	h = strings.TrimSpace(h)
	if strings.HasSuffix(h, ")") {
		if i := strings.LastIndexByte(h, '('); i > 0 {
			if inner := strings.TrimSpace(h[i+1 : len(h)-1]); inner != "" {
				h = inner
			}
		}
	}
	return strings.ToLower(h)
}

// layout is a recognised header: the schema and, for every role, the index
// of its column or -1.
type layout struct {
	spec   *spec
	schema Schema
	col    [numRoles]int
}

// detect recognises a header (names as written, BOM removed). It returns
// *HeaderError when no schema fits.
func detect(file string, header []string) (*layout, error) {
	index := make(map[string]int, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if seen[h] {
			return nil, &HeaderError{File: file, Reason: fmt.Sprintf("duplicate column %q", h)}
		}
		seen[h] = true
		name := englishName(h)
		if _, ok := index[name]; !ok {
			index[name] = i
		}
	}
	herr := &HeaderError{File: file}
	for _, sp := range specs {
		missing := sp.missing(index)
		if len(missing) > 0 {
			herr.Tried = append(herr.Tried, SchemaMissing{Schema: sp.schema, Missing: missing})
			if herr.Missing == nil || len(missing) < len(herr.Missing) {
				herr.Missing = missing
			}
			continue
		}
		l := &layout{spec: sp, schema: sp.schema}
		for r := range numRoles {
			l.col[r] = -1
			for _, n := range sp.names[r] {
				if i, ok := index[n]; ok {
					l.col[r] = i
					break
				}
			}
		}
		if sp == focusSpec {
			switch {
			case hasAny(index, focus12Only):
				l.schema = SchemaFOCUS12
			case hasAny(index, focusPreOnly) && !hasAny(index, []string{"chargeclass"}):
				l.schema = SchemaFOCUSPre
			}
		}
		return l, nil
	}
	return nil, herr
}

// missing lists what a header lacks for this schema, each entry naming the
// accepted columns ("CostInBillingCurrency or Cost").
func (sp *spec) missing(index map[string]int) []string {
	var out []string
	for _, r := range sp.required {
		if !hasAny(index, sp.names[r]) {
			out = append(out, strings.Join(sp.names[r], " or "))
		}
	}
	if len(sp.markers) > 0 && !hasAny(index, sp.markers) {
		out = append(out, "one of "+strings.Join(sp.markers, ", "))
	}
	return out
}

func hasAny(index map[string]int, names []string) bool {
	for _, n := range names {
		if _, ok := index[n]; ok {
			return true
		}
	}
	return false
}
