package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/costsync/costsync/shared/config"
	"github.com/costsync/costsync/shared/landing"
	"github.com/costsync/costsync/shared/queue"
	"github.com/costsync/costsync/shared/store"
)

func init() {
	verbs = append(verbs, verb{
		Name:  "init",
		Short: "create the Cosmos DB database and containers, and the storage containers and queues",
		Run:   runInit,
	})
}

const initAbout = `Creates what the functions need and cannot create themselves: data-plane
RBAC, which the function app runs with, cannot create Cosmos DB databases or
containers. It makes the database and its two containers, costs and ledger,
both partitioned by /pk, with their indexing policies (costs indexes /pk
only, see the README), and, when the storage endpoints are given, the blob
containers cost-reports and cost-manifests and the queues cost-windows and
cost-parts. What exists is left as it is, so running it again is harmless.

It signs in with DefaultAzureCredential (az login, environment, managed
identity): the identity needs control-plane rights on the Cosmos DB account
(Cosmos DB Operator or a key-based role) and Storage Blob and Queue Data
Contributor on the storage account. The flags default to the function app's
settings when they are set in the environment.`

// initOptions is what init provisions.
type initOptions struct {
	cosmosEndpoint, database string
	blobURL, queueURL        string // empty: skip
	emulator                 bool
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "[flags]", initAbout, stdout, stderr)
	var o initOptions
	fs.StringVar(&o.cosmosEndpoint, "cosmos-endpoint", os.Getenv(config.KeyCosmosEndpoint), "Cosmos DB account endpoint, https://ACCOUNT.documents.azure.com:443/ (default $"+config.KeyCosmosEndpoint+")")
	fs.StringVar(&o.database, "database", envOr(config.KeyCosmosDatabase, store.DefaultDatabase), "Cosmos DB database (default $"+config.KeyCosmosDatabase+" or costsync)")
	fs.StringVar(&o.blobURL, "blob-url", os.Getenv(config.KeyBlobURL), "storage blob endpoint, https://ACCOUNT.blob.core.windows.net; empty skips the blob containers")
	fs.StringVar(&o.queueURL, "queue-url", os.Getenv(config.KeyQueueURL), "storage queue endpoint, https://ACCOUNT.queue.core.windows.net; empty skips the queues")
	fs.BoolVar(&o.emulator, "emulator", false, "the endpoint is the local Cosmos DB emulator (@vercel/cosmosdb-server): work around its bugs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := o.validate(); err != nil {
		return err
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return fmt.Errorf("credential: %w", err)
	}
	return provision(ctx, o, cred, nil, stdout)
}

func (o initOptions) validate() error {
	if o.cosmosEndpoint == "" {
		return usagef("-cosmos-endpoint is required (or set %s)", config.KeyCosmosEndpoint)
	}
	if o.database == "" {
		return usagef("-database must not be empty")
	}
	for flagName, v := range map[string]string{"cosmos-endpoint": o.cosmosEndpoint, "blob-url": o.blobURL, "queue-url": o.queueURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			return usagef("-%s %q is not an https URL (tokens are only sent over https)", flagName, v)
		}
	}
	return nil
}

// provision creates the stores o names, with cred, through transport (nil:
// the SDKs' default), and says what it did on out.
func provision(ctx context.Context, o initOptions, cred azcore.TokenCredential, transport policy.Transporter, out io.Writer) error {
	co := azcore.ClientOptions{Transport: transport}
	db, err := store.NewCosmos(o.cosmosEndpoint, cred, &store.CosmosOptions{
		Database:       o.database,
		EmulatorCompat: o.emulator,
		ClientOptions:  &azcosmos.ClientOptions{ClientOptions: co},
	})
	if err != nil {
		return err
	}
	if err := db.Provision(ctx); err != nil {
		return fmt.Errorf("provision cosmos db: %w", err)
	}
	fmt.Fprintf(out, "cosmos db %s: database %s, containers %s and %s (partition key /pk)\n", o.cosmosEndpoint, o.database, store.CostsContainer, store.LedgerContainer)
	if o.blobURL != "" {
		blobs, err := azblob.NewClient(o.blobURL, cred, &azblob.ClientOptions{ClientOptions: co})
		if err != nil {
			return fmt.Errorf("blob client: %w", err)
		}
		if err := landing.New(blobs).Provision(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "blob %s: containers %s, %s\n", o.blobURL, landing.ReportsContainer, landing.ManifestsContainer)
	}
	if o.queueURL != "" {
		q, err := queue.New(o.queueURL, cred, &azqueue.ClientOptions{ClientOptions: co})
		if err != nil {
			return err
		}
		if err := q.Create(ctx, queue.All()...); err != nil {
			return err
		}
		fmt.Fprintf(out, "queue %s: queues %s\n", o.queueURL, strings.Join(queue.All(), ", "))
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
