package costcsv

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// eaColumns is the EA cost-details layout of version 2024-08-01 (57
// columns, cost-apis.md §4.1).
var eaColumns = strings.Split("InvoiceSectionName,AccountName,AccountOwnerId,SubscriptionId,SubscriptionName,ResourceGroup,ResourceLocation,Date,ProductName,MeterCategory,MeterSubCategory,MeterId,MeterName,MeterRegion,UnitOfMeasure,Quantity,EffectivePrice,CostInBillingCurrency,CostCenter,ConsumedService,ResourceId,Tags,OfferId,AdditionalInfo,ServiceInfo1,ServiceInfo2,ResourceName,ReservationId,ReservationName,UnitPrice,ProductOrderId,ProductOrderName,Term,PublisherType,PublisherName,ChargeType,Frequency,PricingModel,AvailabilityZone,BillingAccountId,BillingAccountName,BillingCurrencyCode,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,BillingProfileName,InvoiceSectionId,IsAzureCreditEligible,PartNumber,PayGPrice,PlanName,ServiceFamily,CostAllocationRuleName,benefitId,benefitName,AccountId,ResourceLocationNormalized", ",")

// eaCol is the index of each EA column.
var eaCol = func() map[string]int {
	m := map[string]int{}
	for i, c := range eaColumns {
		m[c] = i
	}
	return m
}()

// eaGen generates EA lines shaped like the real ones: quoted tag fragments
// and AdditionalInfo JSON that vary by resource, product names with commas,
// mixed-case resource ids, amounts with up to 28 digits, exponents and
// refunds, and now and then a quoted field holding a newline. Lines pick a
// resource, a day and a meter at random, so a pool of r resources over d
// days gives lines whose natural keys mostly differ (r*d*3 keys) but repeat
// by chance, and dupPercent of the lines repeat a recent line exactly.
// It keeps only the resource pool and the last lines: any number of lines
// can be written in constant memory.
type eaGen struct {
	rng    *rand.Rand
	res    []eaResource
	days   int
	dup    int
	recent []string // ring of recent lines, for exact repeats
	n      int
	vals   [57]string
}

type eaResource struct {
	sub, rg, id, name, location, typ, consumed string
	tags, info                                 string // quoted CSV fields
	meters                                     [3]string
}

func newEAGen(seed uint64, resources, days, dupPercent int) *eaGen {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &eaGen{rng: rng, days: days, dup: dupPercent, recent: make([]string, 0, 1024)}
	subs := make([]string, 1+resources/2000)
	for i := range subs {
		s := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))
		if i%3 == 1 {
			s = strings.ToUpper(s) // some exports write upper-case GUIDs
		}
		subs[i] = s
	}
	types := []struct{ typ, consumed, cat string }{
		{"Microsoft.Compute/virtualMachines", "Microsoft.Compute", "Virtual Machines"},
		{"Microsoft.Storage/storageAccounts", "Microsoft.Storage", "Storage"},
		{"Microsoft.Sql/servers/databases", "Microsoft.Sql", "SQL Database"},
		{"Microsoft.Network/loadBalancers", "Microsoft.Network", "Load Balancer"},
		{"Microsoft.Web/sites", "Microsoft.Web", "Azure App Service"},
	}
	locations := []string{"EastUS2", "uksouth", "West US 2", "westeurope", "US East"}
	envs := []string{"prod", "dev", "test", "staging"}
	for i := range resources {
		t := types[rng.IntN(len(types))]
		sub := subs[rng.IntN(len(subs))]
		rg := fmt.Sprintf("rg-%s-%03d", envs[i%len(envs)], rng.IntN(1+resources/50))
		if i%4 == 0 {
			rg = fmt.Sprintf("MC_ANALYTICSENGINE_CLUSTER%03d_EASTUS", rng.IntN(1+resources/50)) // AKS node resource groups
		}
		name := fmt.Sprintf("aks-agentpool-%08d-vmss", rng.IntN(1e8))
		if t.consumed != "Microsoft.Compute" {
			name = fmt.Sprintf("res%05d", i)
		}
		r := eaResource{
			sub: sub, rg: rg, name: name, typ: t.typ, consumed: t.consumed,
			location: locations[rng.IntN(len(locations))],
			id:       fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", sub, rg, t.typ, name),
			info: fmt.Sprintf(`"{""UsageType"":""ComputeHR"",""ImageType"":""Canonical"",""ServiceType"":""Standard_D%ds_v5"",""VMName"":""%s_%d"",""VMProperties"":""Microsoft.AKS.Compute.AKS.Linux.Billing"",""VCPUs"":%d,""ConsumedQuantity"":1.0}"`,
				2<<rng.IntN(3), name, rng.IntN(9), 2<<rng.IntN(3)),
		}
		switch rng.IntN(3) {
		case 0: // AKS-managed tags, as in the real EA files
			r.tags = fmt.Sprintf(`"""aks-managed-createOperationID"": """",""aks-managed-creationSource"": ""vmssclient-%s"",""aks-managed-kubeletIdentityClientID"": ""%s"",""aks-managed-orchestrator"": ""Kubernetes:1.27.%d"",""aks-managed-poolName"": ""agentpool"""`,
				name, subs[rng.IntN(len(subs))], rng.IntN(9))
		default:
			r.tags = fmt.Sprintf(`"""env"": ""%s"",""owner"": ""team-%d"",""CostCenter"": ""%d"""`, envs[i%len(envs)], rng.IntN(40), 1000+rng.IntN(90))
		}
		if rng.IntN(4) == 0 {
			r.tags = "" // untagged
		}
		for m := range r.meters {
			r.meters[m] = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))
		}
		g.res = append(g.res, r)
	}
	return g
}

// genEA generates an EA file of n data lines from few resources and days, so
// that lines share natural keys often. It returns the header line and the
// data lines (each ending in "\n").
func genEA(seed uint64, n, dupPercent int) (header string, lines []string) {
	g := newEAGen(seed, 12, 3, dupPercent)
	for range n {
		lines = append(lines, g.line())
	}
	return g.header(), lines
}

func (g *eaGen) header() string { return strings.Join(eaColumns, ",") + "\n" }

// file returns the header and the next n lines as one text.
func (g *eaGen) file(n int) string {
	var b strings.Builder
	b.WriteString(g.header())
	for range n {
		b.WriteString(g.line())
	}
	return b.String()
}

func (g *eaGen) amount() string {
	rng := g.rng
	switch rng.IntN(8) {
	case 0:
		return "0"
	case 1:
		return fmt.Sprintf("0.%022d", rng.Int64N(1e18)) // 22 decimals
	case 2:
		return strconv.Itoa(1+rng.IntN(9)) + "." + strconv.Itoa(rng.IntN(1e6)) + "E-0" + strconv.Itoa(1+rng.IntN(9))
	case 3:
		return "-" + strconv.Itoa(rng.IntN(5)) + "." + strconv.Itoa(10+rng.IntN(90)) // a refund
	default:
		return strconv.Itoa(rng.IntN(40)) + "." + strconv.FormatInt(rng.Int64N(1e16), 10)
	}
}

// line returns the next line, ending in "\n".
func (g *eaGen) line() string {
	rng := g.rng
	g.n++
	if len(g.recent) > 0 && rng.IntN(100) < g.dup {
		return g.recent[rng.IntN(len(g.recent))]
	}
	r := &g.res[rng.IntN(len(g.res))]
	day := 1 + rng.IntN(g.days)
	chargeType := "Usage"
	switch rng.IntN(20) {
	case 0:
		chargeType = "Purchase"
	case 1:
		chargeType = "Refund"
	case 2:
		chargeType = "UnusedReservation"
	}
	v := &g.vals
	*v = [57]string{}
	set := func(col, val string) { v[eaCol[col]] = val }
	set("InvoiceSectionName", "Unassigned")
	set("AccountName", "ACM Team")
	set("AccountOwnerId", "acm@testea.onmicrosoft.com")
	set("SubscriptionId", r.sub)
	set("SubscriptionName", "Cost Management Research")
	set("ResourceGroup", r.rg)
	set("ResourceLocation", r.location)
	set("Date", fmt.Sprintf("09/%02d/2023", day))
	set("ProductName", `"Virtual Machines Dsv5 Series - D2s v5, UK South"`)
	set("ServiceInfo2", "Canonical")
	set("MeterCategory", "Virtual Machines")
	set("MeterSubCategory", "Dsv5 Series")
	set("MeterId", r.meters[rng.IntN(len(r.meters))])
	set("MeterName", "D2s v5")
	set("MeterRegion", "UK South")
	set("UnitOfMeasure", []string{"1 Hour", "10K", "1 GB/Month"}[rng.IntN(3)])
	set("Quantity", g.amount())
	set("EffectivePrice", g.amount())
	set("CostInBillingCurrency", g.amount())
	set("CostCenter", []string{"ACM9000", "acm9000", ""}[rng.IntN(3)])
	set("ConsumedService", r.consumed)
	set("ResourceId", r.id)
	set("Tags", r.tags)
	set("OfferId", "MS-AZR-0017P")
	set("AdditionalInfo", r.info)
	set("ResourceName", r.name)
	set("UnitPrice", g.amount())
	set("Term", "36")
	set("PublisherType", "Azure")
	set("PublisherName", "Microsoft")
	set("ChargeType", chargeType)
	set("Frequency", "UsageBased")
	set("PricingModel", []string{"OnDemand", "OnDemand", "Reservation", "SavingsPlan"}[rng.IntN(4)])
	set("BillingAccountId", "8611537")
	set("BillingAccountName", "Trey Research")
	set("BillingCurrencyCode", "USD")
	set("BillingPeriodStartDate", "09/01/2023")
	set("BillingPeriodEndDate", "09/30/2023")
	set("BillingProfileId", "8611537")
	set("BillingProfileName", "Trey Research")
	set("IsAzureCreditEligible", "True")
	set("PartNumber", "AAA-88134")
	set("PayGPrice", g.amount())
	set("ServiceFamily", "Compute")
	set("AccountId", "123")
	set("ResourceLocationNormalized", "uksouth")
	if chargeType != "Usage" {
		set("ReservationId", "49ed0e4d-8e0c-4f1f-af2c-67c865056615")
		set("benefitId", "/providers/Microsoft.Capacity/reservationOrders/49ed0e4d-8e0c-4f1f-af2c-67c865056615/reservations/")
	}
	if rng.IntN(1000) == 0 {
		set("Tags", "\"\"\"note\"\": \"\"multi\"\",\n\"\"env\"\": \"\"prod\"\"\"") // a newline between members
	}
	line := strings.Join(v[:], ",") + "\n"
	if len(g.recent) < cap(g.recent) {
		g.recent = append(g.recent, line)
	} else {
		g.recent[g.n%len(g.recent)] = line
	}
	return line
}
