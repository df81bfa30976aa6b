package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// The generator: report content is a pure function of (seed, scope, metric,
// date, revision). A scope's population (subscriptions, resource groups,
// resources, benefits) derives from (seed, scope); a day's lines from (seed,
// scope, date); revision r > 0 edits them with streams derived from (seed,
// scope, date, r); the metric decides which lines appear and what they cost.

// generator draws report lines.
type generator struct {
	seed       uint64
	rowsPerDay int

	pops sync.Map // scope key → *population
}

// Metrics.
const (
	actualCost    = "ActualCost"
	amortizedCost = "AmortizedCost"
)

// population is everything a scope's lines are drawn from.
type population struct {
	sc                 scope
	mca                bool
	schema             *schema
	currency           string // billing currency
	billingAccountID   string
	billingAccountName string
	subs               []*subscriptionInfo
	resources          []*resource
	reservation        *benefit
	savingsPlan        *benefit
	// MCA partner (customer scope) and EA fields.
	customerTenantID string
	customerName     string
	partnerName      string
	noBillingPeriod  bool // billingPeriodStart/EndDate empty, as in real Azure plan (CSP) exports
}

// subscriptionInfo is one subscription and where it sits in the hierarchy.
type subscriptionInfo struct {
	id, name string
	// EA
	accountName, accountOwner string
	departmentID, department  string
	costCenter, offerID       string
	// MCA
	billingProfileID, billingProfileName string
	invoiceSectionID, invoiceSectionName string
	azurePlanID                          string
	shortRateDate                        bool // exchangeRateDate as M/d/yy
}

// resource is one Azure resource with the meters it bills.
type resource struct {
	sub      *subscriptionInfo
	kind     resourceKind
	rg       string
	name     string
	id       string // as usually written
	altID    string // another casing of the same id
	region   *region
	lowerLoc bool
	tags     []kv
	pricing  string // OnDemand, Reservation, SavingsPlan, Spot (for VM meters)
	zone     string
}

// benefit is a reservation or savings plan.
type benefit struct {
	reservation      bool
	orderID, id      string
	name             string
	productOrderName string
	term             string
	sub              *subscriptionInfo
	meter            *meter
	region           *region
}

// path is the benefit's ARM id (benefitId column).
func (b *benefit) path() string {
	if b.reservation {
		return "/providers/Microsoft.Capacity/reservationOrders/" + b.orderID + "/reservations/" + b.id
	}
	return "/providers/Microsoft.BillingBenefits/savingsPlanOrders/" + b.orderID + "/savingsPlans/" + b.id
}

// line is one generated cost line, before the metric is applied.
type line struct {
	key          string // identity across revisions; never rendered
	day          time.Time
	sub          *subscriptionInfo
	m            *meter
	region       *region
	chargeType   string
	pricingModel string
	frequency    string
	metricOnly   string // "" both metrics, else the only metric that has the line
	qty          decimal.Decimal
	unitPrice    decimal.Decimal
	payg         decimal.Decimal
	effActual    decimal.Decimal
	effAmortized decimal.Decimal
	resourceID   string
	rg           string
	resourceName string
	location     string // ResourceLocation
	service      string // ConsumedService
	info         []kv   // AdditionalInfo; nil is empty
	spacedInfo   bool   // AdditionalInfo written with spaces, as some producers do
	tags         []kv
	benefit      *benefit
	zone         string
	serviceInfo2 string
	sci          bool // write tiny money values in exponent form
}

// effective is the line's effective price for metric.
func (l *line) effective(metric string) decimal.Decimal {
	if metric == amortizedCost {
		return l.effAmortized
	}
	return l.effActual
}

// cost is quantity × effective price, exact.
func (l *line) cost(metric string) decimal.Decimal { return l.qty.Mul(l.effective(metric)) }

// population returns (building once) the population of sc.
func (g *generator) population(sc scope) *population {
	if p, ok := g.pops.Load(sc.key); ok {
		return p.(*population)
	}
	p := g.buildPopulation(sc)
	actual, _ := g.pops.LoadOrStore(sc.key, p)
	return actual.(*population)
}

func (g *generator) buildPopulation(sc scope) *population {
	r := rngFor(g.seed, sc.key, "population")
	p := &population{sc: sc, mca: sc.mca}
	switch {
	case sc.kind == scopeSubscription && !sc.mca:
		p.schema = eaSubscriptionSchema
	case sc.mca && sc.kind == scopeMCACustomer:
		p.schema = mcaCustomerSchema
	case sc.mca:
		p.schema = mcaSchema
	default:
		p.schema = eaBillingSchema
	}
	switch {
	case p.mca:
		g.buildMCA(p, r)
	case sc.payg:
		g.buildPAYG(p)
	default:
		g.buildEA(p, r)
	}
	for _, sub := range p.subs {
		p.resources = append(p.resources, g.buildResources(p, sub)...)
	}
	owner := p.subs[0]
	p.reservation = &benefit{
		reservation: true, orderID: stableGUID(g.seed, sc.key, "ri-order"), id: stableGUID(g.seed, sc.key, "ri"),
		name: fmt.Sprintf("VM_RI_%02d-%02d-2025_%02d-%02d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60)),
		term: "12", sub: owner, meter: meters["vm-d2sv3"], region: regions[0],
		productOrderName: "Reserved VM Instance, Standard_D2s_v3, US East, 1 Year",
	}
	p.savingsPlan = &benefit{
		orderID: stableGUID(g.seed, sc.key, "sp-order"), id: stableGUID(g.seed, sc.key, "sp"),
		name: fmt.Sprintf("Compute_SavingsPlan_%02d-%02d-2025_%02d-%02d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60)),
		term: "36", sub: owner, meter: meters["vm-b2s"], region: regions[0],
		productOrderName: "Compute savings plan, 3 Years",
	}
	return p
}

func (g *generator) subscriptionIDs(p *population, r *mrand.Rand) []string {
	if p.sc.kind == scopeSubscription {
		return []string{p.sc.subscription}
	}
	n := 3 + r.IntN(3)
	ids := make([]string, n)
	for i := range ids {
		id := stableGUID(g.seed, p.sc.key, "subscription", fmt.Sprint(i))
		parts := strings.Split(id, "-")
		switch {
		case p.mca:
			parts[3] = "8ca0"
		case parts[3] == "8ca0":
			parts[3] = "8ca1"
		}
		ids[i] = strings.Join(parts, "-")
	}
	return ids
}

func (g *generator) buildEA(p *population, r *mrand.Rand) {
	sc := p.sc
	p.currency = "USD"
	p.billingAccountID = sc.billingAccount
	if p.billingAccountID == "" {
		p.billingAccountID = fmt.Sprint(1000000 + hash64(g.seed, sc.key, "enrollment")%9000000)
	}
	p.billingAccountName = "Contoso Enterprise (costsim)"
	type dept struct{ id, name string }
	deptNames := []string{"Engineering", "Finance", "Unassigned", "Research & Development"}
	var depts []dept
	if sc.department != "" {
		depts = []dept{{sc.department, deptNames[r.IntN(len(deptNames))]}}
	} else {
		for i := range 2 {
			depts = append(depts, dept{fmt.Sprint(10000 + hash64(g.seed, sc.key, "department", fmt.Sprint(i))%90000), deptNames[i]})
		}
	}
	type account struct{ name, owner string }
	accountNames := []string{"Platform Team", "ACM Team", "Data Team"}
	var accounts []account
	if sc.enrollmentAccount != "" {
		n := accountNames[r.IntN(len(accountNames))]
		accounts = []account{{n, "owner" + sc.enrollmentAccount + "@contoso.onmicrosoft.com"}}
	} else {
		for i, n := range accountNames[:2+r.IntN(2)] {
			accounts = append(accounts, account{n, fmt.Sprintf("ea-admin%d@contoso.onmicrosoft.com", i+1)})
		}
	}
	for i, id := range g.subscriptionIDs(p, r) {
		d, a := depts[i%len(depts)], accounts[i%len(accounts)]
		offer := "MS-AZR-0017P"
		if i%3 == 1 {
			offer = "MS-AZR-0148P" // Enterprise Dev/Test
		}
		p.subs = append(p.subs, &subscriptionInfo{
			id: id, name: subscriptionNames[(hash64(g.seed, id, "name")+uint64(i))%uint64(len(subscriptionNames))],
			accountName: a.name, accountOwner: a.owner, departmentID: d.id, department: d.name,
			costCenter: []string{"CC-1001", "acm9000", "", "ACM9000"}[i%4], offerID: offer,
		})
	}
}

func (g *generator) buildMCA(p *population, r *mrand.Rand) {
	sc := p.sc
	p.currency = "EUR"
	p.billingAccountID = sc.billingAccount
	if p.billingAccountID == "" {
		p.billingAccountID = stableGUID(g.seed, sc.key, "mca-account") + ":" + stableGUID(g.seed, sc.key, "mca-tenant") + "_2019-05-31"
	}
	p.billingAccountName = "Contoso Ltd (costsim)"
	type profile struct{ id, name string }
	var profiles []profile
	switch {
	case sc.billingProfile != "":
		profiles = []profile{{strings.ToUpper(sc.billingProfile), "Contoso Billing Profile"}}
	default:
		for i := range 1 + r.IntN(2) {
			profiles = append(profiles, profile{billingID(g.seed, sc.key, "profile", fmt.Sprint(i)), []string{"Contoso EMEA", "Contoso Americas"}[i]})
		}
	}
	if sc.kind == scopeMCACustomer {
		p.customerTenantID = stableGUID(g.seed, sc.key, "customer-tenant")
		p.customerName = "Fabrikam (customer " + sc.customer + ")"
		p.partnerName = "Northwind Partners"
		p.noBillingPeriod = true
	}
	for i, id := range g.subscriptionIDs(p, r) {
		pr := profiles[i%len(profiles)]
		section, sectionName := billingID(g.seed, sc.key, pr.id, "section", fmt.Sprint(i%2)), []string{"Engineering", "Marketing"}[i%2]
		if sc.invoiceSection != "" {
			section, sectionName = strings.ToUpper(sc.invoiceSection), "Invoice Section "+strings.ToUpper(sc.invoiceSection)
		}
		p.subs = append(p.subs, &subscriptionInfo{
			id: id, name: subscriptionNames[(hash64(g.seed, id, "name")+uint64(i))%uint64(len(subscriptionNames))],
			billingProfileID: pr.id, billingProfileName: pr.name, invoiceSectionID: section, invoiceSectionName: sectionName,
			azurePlanID: stableGUID(g.seed, sc.key, pr.id, "azure-plan"), costCenter: []string{"", "CC-2002"}[i%2],
			shortRateDate: shortRateDate(g.seed, sc, id, i),
		})
	}
}

// shortRateDate says whether a subscription's exchangeRateDate is written
// M/d/yy: the first subscription of every MCA billing scope, half of the MCA
// subscription scopes.
func shortRateDate(seed uint64, sc scope, sub string, i int) bool {
	if sc.kind == scopeSubscription {
		return hash64(seed, sub, "ratedate")%2 == 0
	}
	return i == 0
}

// billingID makes an MCA-style id such as "AB12-CD34-EF5-GH6".
func billingID(seed uint64, parts ...string) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	h := hashBytes(seed, parts...)
	var b strings.Builder
	for i, n := range []int{4, 4, 3, 3} {
		if i > 0 {
			b.WriteByte('-')
		}
		for j := range n {
			b.WriteByte(alphabet[int(h[i*4+j])%len(alphabet)])
		}
	}
	return b.String()
}

// buildResources makes the resource groups and resources of a subscription.
// They derive from (seed, subscription), not from the scope.
func (g *generator) buildResources(p *population, sub *subscriptionInfo) []*resource {
	r := rngFor(g.seed, sub.id, "resources")
	var out []*resource
	rgs := slices.Clone(resourceGroupNames)
	r.Shuffle(len(rgs), func(i, j int) { rgs[i], rgs[j] = rgs[j], rgs[i] })
	for _, rg := range rgs[:4+r.IntN(3)] {
		for range 2 + r.IntN(5) {
			kind := resourceKinds[r.IntN(len(resourceKinds))]
			name := kind.prefix + nameWords[r.IntN(len(nameWords))] + fmt.Sprintf("%02d", r.IntN(100))
			switch {
			case kind.vmss:
				name = fmt.Sprintf("aks-nodepool1-%08d-vmss", r.IntN(100000000))
			case kind.typ == "storageAccounts":
				name = strings.ReplaceAll(name, "-", "") + fmt.Sprintf("%04x", r.IntN(65536))
			}
			res := &resource{sub: sub, kind: kind, rg: rg, name: name, region: regions[r.IntN(len(regions))], lowerLoc: r.IntN(2) == 0}
			typePath := kind.typ + "/" + name
			if kind.sqlServer {
				typePath += "/databases/" + []string{"appdb", "SSISDB", "reporting"}[r.IntN(3)]
			}
			normal := "/subscriptions/" + sub.id + "/resourceGroups/" + rg + "/providers/" + kind.provider + "/" + typePath
			lowerRG := "/subscriptions/" + sub.id + "/resourcegroups/" + rg + "/providers/" + strings.ToLower(kind.provider) + "/" + typePath
			upperSub := "/subscriptions/" + strings.ToUpper(sub.id) + "/resourceGroups/" + rg + "/providers/" + kind.provider + "/" + typePath
			switch x := r.IntN(20); {
			case x < 10:
				res.id, res.altID = normal, lowerRG
			case x < 15:
				res.id, res.altID = lowerRG, normal
			case x < 18:
				res.id, res.altID = upperSub, normal
			default:
				res.id, res.altID = strings.ToUpper(normal), normal
				res.rg = strings.ToUpper(rg)
			}
			tags := tagSets[r.IntN(len(tagSets))]
			for _, t := range tags {
				t.v = strings.NewReplacer("{sub}", sub.id, "{rg}", rg).Replace(t.v)
				res.tags = append(res.tags, t)
			}
			res.pricing = "OnDemand"
			m := meters[kind.meters[0]]
			switch x := r.IntN(10); {
			case !m.riRate.IsZero() && x < 4:
				res.pricing = "Reservation"
			case !m.spRate.IsZero() && x < 7:
				res.pricing = "SavingsPlan"
			case m.info == infoVM && x >= 8:
				res.pricing = "Spot"
			}
			if m.info == infoVM && r.IntN(3) == 0 {
				res.zone = fmt.Sprint(1 + r.IntN(3))
			}
			out = append(out, res)
		}
	}
	return out
}

// dayLines are the lines of one day at revision rev, both metrics. Dates
// after today have none; the last two days before today (and today) are
// ~70% complete at revision 0.
func (g *generator) dayLines(p *population, day, today time.Time, rev int) []*line {
	if g.rowsPerDay == 0 || day.After(today) {
		return nil
	}
	ds := day.Format(time.DateOnly)
	lines := g.baseLines(p, day)
	for k := 1; k <= rev; k++ {
		lines = g.restate(p, day, lines, k)
	}
	if rev == 0 && today.Sub(day) < 48*time.Hour {
		kept := lines[:0:0]
		for _, l := range lines {
			if hash64(g.seed, p.sc.key, ds, l.key, "late")%100 < 70 {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	return lines
}

// baseLines are the complete lines of a day at revision 0.
func (g *generator) baseLines(p *population, day time.Time) []*line {
	ds := day.Format(time.DateOnly)
	r := rngFor(g.seed, p.sc.key, ds, "day")
	n := int(float64(g.rowsPerDay)*(0.8+0.4*r.Float64()) + 0.5)
	n = max(n, 1)
	lines := make([]*line, 0, n+6)
	for i := range n {
		l := g.usageLine(p, day, r)
		l.key = fmt.Sprintf("%s/u%d", ds, i)
		lines = append(lines, l)
	}
	if day.Day() == 1 {
		lines = append(lines, g.purchaseLine(p, day, p.reservation), g.purchaseLine(p, day, p.savingsPlan))
	}
	if r.IntN(9) == 4 {
		lines = append(lines, g.refundLine(p, day, r))
	}
	if r.IntN(10) < 6 {
		lines = append(lines, g.unusedLine(p, day, r))
	}
	if r.IntN(2) == 0 {
		// Real files hold lines identical in every column; both count.
		src := lines[r.IntN(n)]
		dup := *src
		dup.key += "#dup"
		lines = append(lines, &dup)
	}
	return lines
}

// restate applies revision k to a day's lines: a few change quantity (and
// so amounts), a few are removed, a few are added; at least one of each.
func (g *generator) restate(p *population, day time.Time, lines []*line, k int) []*line {
	ds := day.Format(time.DateOnly)
	r := rngFor(g.seed, p.sc.key, ds, "revision", fmt.Sprint(k))
	nRemove, nModify := 0, 0
	if len(lines) > 2 {
		nRemove = max(1, len(lines)/33)
	}
	if len(lines) > 0 {
		nModify = max(1, len(lines)/14)
	}
	action := make([]byte, len(lines))
	perm := r.Perm(len(lines))
	for _, i := range perm[:nRemove] {
		action[i] = 'r'
	}
	for _, i := range perm[nRemove:] {
		if nModify == 0 {
			break
		}
		if lines[i].chargeType == "Usage" {
			action[i] = 'm'
			nModify--
		}
	}
	out := make([]*line, 0, len(lines)+4)
	for i, l := range lines {
		switch action[i] {
		case 'r':
			continue
		case 'm':
			c := *l
			factor := decimal.New(int64(9000+r.IntN(2001)), -4) // 0.9000 .. 1.1000
			if factor.Equal(decimal.NewFromInt(1)) {
				factor = decimal.RequireFromString("1.0125")
			}
			c.qty = c.qty.Mul(factor)
			out = append(out, &c)
		default:
			out = append(out, l)
		}
	}
	for i := range 1 + len(lines)/40 {
		l := g.usageLine(p, day, r)
		l.key = fmt.Sprintf("%s/r%d-%d", ds, k, i)
		out = append(out, l)
	}
	return out
}

// usageLine draws one usage line of a random resource.
func (g *generator) usageLine(p *population, day time.Time, r *mrand.Rand) *line {
	res := p.resources[r.IntN(len(p.resources))]
	m := meters[res.kind.meters[r.IntN(len(res.kind.meters))]]
	l := &line{
		day: day, sub: res.sub, m: m, region: res.region, chargeType: "Usage", pricingModel: "OnDemand",
		frequency: "UsageBased", resourceID: res.id, rg: res.rg, resourceName: res.name,
		location: res.region.pascal, service: res.kind.provider, tags: res.tags, zone: res.zone,
		sci: r.IntN(3) == 0,
	}
	if res.lowerLoc {
		l.location = res.region.name
	}
	if p.mca {
		l.location = strings.ToUpper(res.region.name)
	}
	if r.IntN(20) == 0 {
		l.resourceID = res.altID // the same resource in another casing
	}
	if strings.ToUpper(res.id) == res.id {
		l.service = strings.ToUpper(l.service)
	}
	l.qty = quantity(m.qty, day, r)
	l.unitPrice = m.price
	l.payg = m.price.Mul(decimal.RequireFromString("1.15"))
	if p.mca {
		l.payg = m.price // MCA prices are list prices in the pricing currency
	}
	l.effActual, l.effAmortized = m.price, m.price
	if m.info == infoVM {
		l.serviceInfo2 = m.imageType
		switch res.pricing {
		case "Reservation":
			if !m.riRate.IsZero() {
				l.pricingModel, l.benefit = "Reservation", p.reservation
				l.effActual, l.effAmortized = decimal.Zero, m.riRate
			}
		case "SavingsPlan":
			if !m.spRate.IsZero() {
				l.pricingModel, l.benefit = "SavingsPlan", p.savingsPlan
				l.effActual, l.effAmortized = decimal.Zero, m.spRate
			}
		case "Spot":
			l.pricingModel = "Spot"
			spot := m.price.Mul(decimal.RequireFromString("0.2")).Round(6)
			l.effActual, l.effAmortized, l.unitPrice = spot, spot, spot
		}
	}
	l.info, l.spacedInfo = additionalInfo(p, res, m, l, r), p.mca && res.kind.vmss
	return l
}

// quantity draws a day's quantity for a meter.
func quantity(k qtyKind, day time.Time, r *mrand.Rand) decimal.Decimal {
	days := decimal.NewFromInt(int64(daysIn(day)))
	switch k {
	case qtyHours:
		if r.IntN(10) < 7 {
			return decimal.NewFromInt(24)
		}
		return decimal.New(int64(1+r.IntN(2300)), -2)
	case qtyInstances:
		n := int64(1 + r.IntN(5))
		if r.IntN(4) == 0 {
			return decimal.New(n*240000-int64(r.IntN(240000)), -4)
		}
		return decimal.NewFromInt(24 * n)
	case qtyMonthly:
		return decimal.NewFromInt(1).DivRound(days, 18)
	case qtyGBMonth:
		gb := decimal.New(int64(1+r.IntN(2000000)), -3)
		return gb.DivRound(days, 10)
	case qtyTenK:
		return decimal.New(int64(1+r.IntN(300000)), -4)
	case qtyGB:
		if r.IntN(3) == 0 {
			return decimal.New(int64(1+r.IntN(999)), -6)
		}
		return decimal.New(int64(1+r.IntN(150000000)), -6)
	case qtyVCoreHours:
		return decimal.NewFromInt(int64(24 * []int{2, 4, 8}[r.IntN(3)]))
	case qtyRUHours:
		return decimal.NewFromInt(int64(24 * (4 + r.IntN(40))))
	}
	return decimal.NewFromInt(1)
}

// additionalInfo is the AdditionalInfo of a usage line.
func additionalInfo(p *population, res *resource, m *meter, l *line, r *mrand.Rand) []kv {
	switch m.info {
	case infoVM:
		vmName := res.name
		if res.kind.vmss {
			vmName = fmt.Sprintf("%s_%d", res.name, r.IntN(6))
		}
		info := []kv{
			{k: "UsageType", v: "ComputeHR"}, {k: "ImageType", v: m.imageType}, {k: "ServiceType", v: m.serviceType},
			{k: "VMName", v: vmName},
		}
		if res.kind.vmss {
			info = append(info, kv{k: "VMProperties", v: "Microsoft.AKS.Compute.AKS.Linux.Billing"})
		} else {
			info = append(info, kv{k: "VMProperties", v: "null", raw: true})
		}
		info = append(info, kv{k: "VCPUs", v: fmt.Sprint(m.vcpus), raw: true})
		if l.benefit != nil && l.benefit.reservation {
			info = append(info,
				kv{k: "ReservationOrderId", v: l.benefit.orderID}, kv{k: "ReservationId", v: l.benefit.id},
				kv{k: "ConsumptionMeter", v: stableGUID(0, "meter", m.key)}, kv{k: "RINormalizationRatio", v: "1.0", raw: true})
		}
		return info
	case infoSQL:
		return []kv{{k: "AHB", v: "False"}, {k: "vCores", v: fmt.Sprint(l.qty.IntPart() / 24), raw: true}}
	case infoSQLAHB:
		return []kv{{k: "AHB", v: "True"}, {k: "vCores", v: fmt.Sprint(l.qty.IntPart() / 24), raw: true}}
	case infoDefender:
		return []kv{{k: "ServiceType", v: "SQLThreatDetection"}, {k: "ResourceCategory", v: "SQLThreatDetection"}}
	}
	return nil
}

// purchaseLine is the monthly purchase of a reservation or savings plan
// (ActualCost only): no resource group, a Capacity or BillingBenefits id.
func (g *generator) purchaseLine(p *population, day time.Time, b *benefit) *line {
	hours := decimal.NewFromInt(int64(24 * daysIn(day)))
	l := &line{
		key: day.Format(time.DateOnly) + "/purchase-" + b.id, day: day, sub: b.sub, m: b.meter, region: b.region,
		chargeType: "Purchase", frequency: "Recurring", metricOnly: actualCost, qty: decimal.NewFromInt(1),
		location: b.region.name, benefit: b,
	}
	if b.reservation {
		l.pricingModel, l.service = "Reservation", "Microsoft.Capacity"
		l.resourceID = "/providers/Microsoft.Capacity/reservationOrders/" + b.orderID + "/reservations/"
		amount := b.meter.riRate.Mul(hours)
		l.unitPrice, l.effActual, l.effAmortized = amount, amount, amount
	} else {
		l.pricingModel, l.service = "SavingsPlan", "Microsoft.BillingBenefits"
		l.resourceID = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/" + b.orderID + "/savingsPlans/" + b.id
		amount := decimal.RequireFromString("0.75").Mul(hours)
		l.unitPrice, l.effActual, l.effAmortized = amount, amount, amount
	}
	l.payg = decimal.Zero
	return l
}

// refundLine is a reservation refund (ActualCost only): negative cost.
func (g *generator) refundLine(p *population, day time.Time, r *mrand.Rand) *line {
	b := p.reservation
	amount := decimal.New(int64(100+r.IntN(500000)), -4)
	return &line{
		key: day.Format(time.DateOnly) + "/refund", day: day, sub: b.sub, m: b.meter, region: b.region,
		chargeType: "Refund", pricingModel: "Reservation", frequency: "OneTime", metricOnly: actualCost,
		qty: decimal.NewFromInt(-1), unitPrice: amount, payg: decimal.Zero, effActual: amount, effAmortized: amount,
		resourceID: "/providers/Microsoft.Capacity/reservationOrders/" + b.orderID + "/reservations/",
		location:   b.region.name, service: "Microsoft.Capacity", benefit: b,
	}
}

// unusedLine is a day's unused reservation hours (AmortizedCost only).
func (g *generator) unusedLine(p *population, day time.Time, r *mrand.Rand) *line {
	b := p.reservation
	return &line{
		key: day.Format(time.DateOnly) + "/unused", day: day, sub: b.sub, m: b.meter, region: b.region,
		chargeType: "UnusedReservation", pricingModel: "Reservation", frequency: "UsageBased", metricOnly: amortizedCost,
		qty: decimal.New(int64(1+r.IntN(2400)), -2), unitPrice: b.meter.price, payg: decimal.Zero,
		effActual: b.meter.riRate, effAmortized: b.meter.riRate, resourceID: b.path(), location: b.region.name,
		service: "Microsoft.Capacity", benefit: b,
	}
}

// forMetric keeps the lines that metric has.
func forMetric(lines []*line, metric string) []*line {
	out := make([]*line, 0, len(lines))
	for _, l := range lines {
		if l.metricOnly == "" || l.metricOnly == metric {
			out = append(out, l)
		}
	}
	return out
}

// revisions are the restatement counters: per (scope, metric, date) and per
// (scope, metric) for "all dates".
type revisions struct {
	days map[string]int
	all  map[string]int
}

func (rv revisions) get(scopeKey, metric string, day time.Time) int {
	return rv.all[scopeKey+"|"+metric] + rv.days[scopeKey+"|"+metric+"|"+day.Format(time.DateOnly)]
}

// --- hashing and ids ---

// hashBytes is SHA-256 of the seed and the parts, separated.
func hashBytes(seed uint64, parts ...string) [32]byte {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func hash64(seed uint64, parts ...string) uint64 {
	h := hashBytes(seed, parts...)
	return binary.LittleEndian.Uint64(h[:8])
}

// rngFor is a deterministic random stream for the seed and parts.
func rngFor(seed uint64, parts ...string) *mrand.Rand {
	h := hashBytes(seed, parts...)
	return mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
}

// stableGUID is a GUID derived from the seed and parts.
func stableGUID(seed uint64, parts ...string) string {
	h := hashBytes(seed, parts...)
	return formatGUID(h[:16])
}

// newGUID is a random GUID.
func newGUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return formatGUID(b)
}

func formatGUID(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := hex.EncodeToString(u[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// --- dates ---

func truncateDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func monthStart(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func monthEnd(t time.Time) time.Time { return monthStart(t).AddDate(0, 1, -1) }

func daysIn(t time.Time) int { return monthEnd(t).Day() }

// addMonthClamped adds n months, clamping the day to the target month's end.
func addMonthClamped(t time.Time, n int) time.Time {
	first := time.Date(t.Year(), t.Month()+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	d := min(t.Day(), daysIn(first))
	return time.Date(first.Year(), first.Month(), d, 0, 0, 0, 0, time.UTC)
}
