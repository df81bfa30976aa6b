package main

import "github.com/shopspring/decimal"

// The fixed catalog the generator draws from: meters, regions, resource
// kinds, names and tags. Values imitate the real files in
// testdata/real (finops-toolkit EA samples, opencost header sets).

// qtyKind says how a meter's daily quantity is drawn.
type qtyKind int

const (
	qtyHours      qtyKind = iota // "1 Hour": mostly 24
	qtyInstances                 // "1 Hour" for scale sets: 24 × instances, sometimes partial
	qtyMonthly                   // "1/Month": 1/days-in-month, 18 decimals
	qtyGBMonth                   // "1 GB/Month": GB stored / days-in-month
	qtyTenK                      // "10K": operations / 10,000
	qtyGB                        // "1 GB": transferred or ingested GB
	qtyVCoreHours                // vCores × 24
	qtyRUHours                   // "100/Hour": (RU/s / 100) × 24
)

// infoKind says which AdditionalInfo a meter's lines carry.
type infoKind int

const (
	infoNone infoKind = iota
	infoVM
	infoSQL
	infoSQLAHB
	infoDefender
)

// meter is one priced meter.
type meter struct {
	key         string
	product     string // ProductName before " - {region}"
	category    string
	subCategory string
	name        string
	unit        string
	family      string
	price       decimal.Decimal // unit price in USD (EA: billing currency, MCA: pricing currency)
	qty         qtyKind
	info        infoKind
	serviceType string // AdditionalInfo ServiceType for VMs
	vcpus       int
	riRate      decimal.Decimal // amortized hourly reservation rate; zero: not reservable
	spRate      decimal.Decimal // savings plan hourly rate; zero: not covered
	imageType   string
}

func price(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var meters = map[string]*meter{
	"vm-d2sv3":     {key: "vm-d2sv3", product: "Virtual Machines Dv3/DSv3 Series - D2s v3", category: "Virtual Machines", subCategory: "Dv3/DSv3 Series", name: "D2s v3", unit: "1 Hour", family: "Compute", price: price("0.096"), qty: qtyHours, info: infoVM, serviceType: "Standard_D2s_v3", vcpus: 2, riRate: price("0.057305"), spRate: price("0.0672"), imageType: "Canonical"},
	"vm-b2s":       {key: "vm-b2s", product: "Virtual Machines BS Series - B2s", category: "Virtual Machines", subCategory: "BS Series", name: "B2s", unit: "1 Hour", family: "Compute", price: price("0.0416"), qty: qtyHours, info: infoVM, serviceType: "Standard_B2s", vcpus: 2, spRate: price("0.0291"), imageType: "Windows Server BYOL"},
	"vm-e4sv3":     {key: "vm-e4sv3", product: "Virtual Machines Ev3/ESv3 Series - E4s v3", category: "Virtual Machines", subCategory: "Ev3/ESv3 Series", name: "E4s v3", unit: "1 Hour", family: "Compute", price: price("0.252"), qty: qtyInstances, info: infoVM, serviceType: "Standard_E4s_v3", vcpus: 4, spRate: price("0.1764"), imageType: "Canonical"},
	"disk-p10":     {key: "disk-p10", product: "Premium SSD Managed Disks - P10 LRS", category: "Storage", subCategory: "Premium SSD Managed Disks", name: "P10 LRS Disk", unit: "1/Month", family: "Storage", price: price("19.71"), qty: qtyMonthly},
	"blob-hot":     {key: "blob-hot", product: "Blob Storage - Hot LRS", category: "Storage", subCategory: "Blob Storage", name: "Hot LRS Data Stored", unit: "1 GB/Month", family: "Storage", price: price("0.0208"), qty: qtyGBMonth},
	"blob-tx":      {key: "blob-tx", product: "Blob Storage - Hot - Write Operations", category: "Storage", subCategory: "Tiered Block Blob", name: "Hot LRS Write Operations", unit: "10K", family: "Storage", price: price("0.065"), qty: qtyTenK},
	"egress":       {key: "egress", product: "Bandwidth - Inter-Region Data Transfer Out", category: "Bandwidth", subCategory: "Inter-Region", name: "Inter-Region Data Transfer Out", unit: "1 GB", family: "Networking", price: price("0.02"), qty: qtyGB},
	"sql-vcore":    {key: "sql-vcore", product: "SQL Database Single/Elastic Pool General Purpose - Compute Gen5", category: "SQL Database", subCategory: "Single/Elastic Pool General Purpose - Compute Gen5", name: "vCore", unit: "1 Hour", family: "Databases", price: price("0.2522"), qty: qtyVCoreHours, info: infoSQL},
	"sql-ahb":      {key: "sql-ahb", product: "SQL Database General Purpose - SQL License - Azure Hybrid Benefit", category: "SQL Database", subCategory: "General Purpose - SQL License", name: "vCore", unit: "1 Hour", family: "Databases", price: price("0"), qty: qtyVCoreHours, info: infoSQLAHB},
	"defender-sql": {key: "defender-sql", product: "Microsoft Defender for SQL - Standard Node", category: "Advanced Data Security", subCategory: "SQL Database", name: "Standard Node", unit: "1/Month", family: "Security", price: price("15"), qty: qtyMonthly, info: infoDefender},
	"aks-sla":      {key: "aks-sla", product: "Azure Kubernetes Service - Standard - Uptime SLA", category: "Azure Kubernetes Service", subCategory: "Standard", name: "Standard Uptime SLA", unit: "1 Hour", family: "Compute", price: price("0.1"), qty: qtyHours},
	"pip":          {key: "pip", product: "IP Addresses - Standard IPv4 Static Public IP", category: "Virtual Network", subCategory: "IP Addresses", name: "Standard IPv4 Static Public IP", unit: "1 Hour", family: "Networking", price: price("0.005"), qty: qtyHours},
	"lb-data":      {key: "lb-data", product: "Load Balancer - Standard - Data Processed", category: "Load Balancer", subCategory: "Standard", name: "Standard Data Processed", unit: "1 GB", family: "Networking", price: price("0.005"), qty: qtyGB},
	"law":          {key: "law", product: "Log Analytics - Pay-as-you-go - Data Ingestion", category: "Log Analytics", subCategory: "", name: "Pay-as-you-go Data Ingestion", unit: "1 GB", family: "Management and Governance", price: price("2.76"), qty: qtyGB},
	"kv-ops":       {key: "kv-ops", product: "Key Vault - Standard - Operations", category: "Key Vault", subCategory: "Standard", name: "Operations", unit: "10K", family: "Security", price: price("0.03"), qty: qtyTenK},
	"app-p1v3":     {key: "app-p1v3", product: "Azure App Service Premium v3 Plan - Linux - P1 v3", category: "Azure App Service", subCategory: "Premium v3 Plan - Linux", name: "P1 v3 App", unit: "1 Hour", family: "Compute", price: price("0.124"), qty: qtyHours},
	"cosmos-ru":    {key: "cosmos-ru", product: "Azure Cosmos DB - RUs", category: "Azure Cosmos DB", subCategory: "", name: "100 RU/s", unit: "100/Hour", family: "Databases", price: price("0.008"), qty: qtyRUHours},
}

// resourceKind is a kind of resource with the meters its lines use.
type resourceKind struct {
	provider  string // e.g. Microsoft.Compute
	typ       string // e.g. virtualMachines
	prefix    string // resource name prefix
	meters    []string
	vmss      bool
	sqlServer bool // resource id is servers/{name}/databases/{db}
}

var resourceKinds = []resourceKind{
	{provider: "Microsoft.Compute", typ: "virtualMachines", prefix: "vm-", meters: []string{"vm-d2sv3"}},
	{provider: "Microsoft.Compute", typ: "virtualMachines", prefix: "vm-", meters: []string{"vm-b2s"}},
	{provider: "Microsoft.Compute", typ: "virtualMachineScaleSets", prefix: "aks-nodepool1-", meters: []string{"vm-e4sv3"}, vmss: true},
	{provider: "Microsoft.Compute", typ: "disks", prefix: "disk-", meters: []string{"disk-p10"}},
	{provider: "Microsoft.Storage", typ: "storageAccounts", prefix: "st", meters: []string{"blob-hot", "blob-tx", "egress"}},
	{provider: "Microsoft.Sql", typ: "servers", prefix: "sql-", meters: []string{"sql-vcore", "sql-ahb", "defender-sql"}, sqlServer: true},
	{provider: "Microsoft.ContainerService", typ: "managedClusters", prefix: "aks-", meters: []string{"aks-sla"}},
	{provider: "Microsoft.Network", typ: "publicIPAddresses", prefix: "pip-", meters: []string{"pip"}},
	{provider: "Microsoft.Network", typ: "loadBalancers", prefix: "lb-", meters: []string{"lb-data"}},
	{provider: "Microsoft.OperationalInsights", typ: "workspaces", prefix: "law-", meters: []string{"law"}},
	{provider: "Microsoft.KeyVault", typ: "vaults", prefix: "kv-", meters: []string{"kv-ops"}},
	{provider: "Microsoft.Web", typ: "serverFarms", prefix: "asp-", meters: []string{"app-p1v3"}},
	{provider: "Microsoft.DocumentDB", typ: "databaseAccounts", prefix: "cosmos-", meters: []string{"cosmos-ru"}},
}

// region is an Azure region in its several spellings.
type region struct {
	name        string // eastus
	pascal      string // EastUS
	meterRegion string // US East
}

var regions = []*region{
	{"eastus", "EastUS", "US East"},
	{"westeurope", "WestEurope", "EU West"},
	{"uksouth", "UKSouth", "UK South"},
	{"southcentralus", "SouthCentralUS", "US South Central"},
	{"westus2", "WestUS2", "US West 2"},
	{"northeurope", "NorthEurope", "EU North"},
}

var subscriptionNames = []string{
	"Contoso Production", "Contoso Dev/Test", "Data Platform", "Shared Services, Networking", "Sandbox – R&D",
}

var resourceGroupNames = []string{
	"rg-web-prod", "MC_aks-prod_aks-cluster_eastus", "DefaultResourceGroup-EUS", "NetworkWatcherRG",
	"databricks-rg-analytics-x7k2q", "rg-sql-Prod", "cloud-shell-storage-westeurope", "RG-Finance-Reporting",
}

var nameWords = []string{"web", "api", "etl", "ops", "data", "build", "jump", "core", "bi", "edge"}

// kv is one key and value; raw values are already JSON.
type kv struct {
	k, v string
	raw  bool
}

// tagSets are the tag sets resources draw from; nil is no tags. Keys with
// spaces, leading spaces, case variants, slashes, empty values and quotes
// are all in real files.
var tagSets = [][]kv{
	nil,
	nil,
	{{k: "env", v: "prod"}, {k: "team", v: "web"}, {k: "CostCenter", v: "1234"}},
	{{k: "Env", v: "Prod"}, {k: "owner", v: "jane.doe@contoso.com"}},
	{{k: "env", v: "dev"}, {k: "cost center", v: "R&D 42"}},
	{{k: "ms-resource-usage", v: "azure-cloud-shell"}},
	{{k: "aks-managed-poolName", v: "nodepool1"}, {k: "aks-managed-orchestrator", v: "Kubernetes:1.29.2"}, {k: "env", v: "prod"}},
	{{k: "cm-resource-parent", v: "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/app-core"}, {k: "org", v: ""}},
	{{k: " org", v: "trey"}, {k: "org", v: "trey"}},
	{{k: "hidden-title", v: `Quote "this", please`}, {k: "env", v: "prod"}},
}
