package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

// queueMessage is a dequeued message. Text is the message as stored, before
// any base64 decoding.
type queueMessage struct {
	ID              string
	PopReceipt      string
	Text            string
	DequeueCount    int64
	InsertionTime   time.Time
	ExpirationTime  time.Time
	NextVisibleTime time.Time
}

// queueStore is the queue access devhost needs. Texts are the stored form:
// the caller does the base64 encoding.
type queueStore interface {
	CreateQueue(ctx context.Context, queue string) error
	Dequeue(ctx context.Context, queue string, n int, visibility time.Duration) ([]queueMessage, error)
	Delete(ctx context.Context, queue, id, popReceipt string) error
	// SetVisibility makes a dequeued message visible again after d, keeping text.
	SetVisibility(ctx context.Context, queue, id, popReceipt, text string, d time.Duration) error
	Enqueue(ctx context.Context, queue, text string) error
	// Counts returns the visible messages (at most 32, by peeking) and the
	// service's approximate count, which includes invisible ones.
	Counts(ctx context.Context, queue string) (visible, approximate int, err error)
}

// blobItem is a listed blob.
type blobItem struct {
	Name          string
	ETag          string
	ContentType   string
	ContentLength int64
	LastModified  time.Time
	CreatedOn     time.Time
	Metadata      map[string]string
}

// errBlobChanged reports a blob whose ETag changed, or that went away,
// between listing and download.
var errBlobChanged = errors.New("blob changed or deleted since it was listed")

// blobStore is the blob access devhost needs.
type blobStore interface {
	CreateContainer(ctx context.Context, container string) error
	List(ctx context.Context, container, prefix string) ([]blobItem, error)
	// Download reads a blob if its ETag is still etag, else errBlobChanged.
	Download(ctx context.Context, container, name, etag string) ([]byte, error)
	Exists(ctx context.Context, container, name string) (bool, error)
	Upload(ctx context.Context, container, name string, data []byte) error
	URL(container, name string) string
}

// account is a storage connection of function.json (`connection`), resolved
// from the settings. A service that is not configured is nil, with the
// reason in blobErr or queueErr.
type account struct {
	name     string
	blobs    blobStore
	queues   queueStore
	blobErr  error
	queueErr error
}

func (a *account) blobStore() (blobStore, error) {
	if a.blobs == nil {
		return nil, a.blobErr
	}
	return a.blobs, nil
}

func (a *account) queueStore() (queueStore, error) {
	if a.queues == nil {
		return nil, a.queueErr
	}
	return a.queues, nil
}

// accounts resolves and caches connections. Construction makes no network
// call.
type accounts struct {
	settings  settings
	transport policy.Transporter // nil: the SDK's default (TLS trust from the environment)
	mu        sync.Mutex
	byName    map[string]*account
	// open builds an account; tests replace it with fakes.
	open func(conn string) (*account, error)
}

func newAccounts(s settings, transport policy.Transporter) *accounts {
	a := &accounts{settings: s, transport: transport, byName: map[string]*account{}}
	a.open = a.openAzure
	return a
}

// get returns the account of a connection name.
func (a *accounts) get(conn string) (*account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if acc, ok := a.byName[strings.ToLower(conn)]; ok {
		return acc, nil
	}
	acc, err := a.open(conn)
	if err != nil {
		return nil, err
	}
	a.byName[strings.ToLower(conn)] = acc
	return acc, nil
}

// openAzure resolves a connection the way the Functions host does: identity
// settings {conn}__blobServiceUri / __queueServiceUri (or __serviceUri, or
// AzureWebJobsStorage__accountName), else a connection string in {conn} or
// AzureWebJobs{conn}.
func (a *accounts) openAzure(conn string) (*account, error) {
	s := a.settings
	acc := &account{name: conn}
	clientOpts := azcore.ClientOptions{Transport: a.transport}

	blobURI := s.get(conn + "__blobServiceUri")
	queueURI := s.get(conn + "__queueServiceUri")
	if queueURI == "" {
		queueURI = s.get(conn + "__serviceUri")
	}
	if acct := s.get(conn + "__accountName"); acct != "" && strings.EqualFold(conn, "AzureWebJobsStorage") {
		if blobURI == "" {
			blobURI = "https://" + acct + ".blob.core.windows.net"
		}
		if queueURI == "" {
			queueURI = "https://" + acct + ".queue.core.windows.net"
		}
	}
	if blobURI != "" || queueURI != "" {
		cred, err := a.credential(conn)
		if err != nil {
			return nil, err
		}
		if blobURI != "" {
			c, err := azblob.NewClient(blobURI, cred, &azblob.ClientOptions{ClientOptions: clientOpts})
			if err != nil {
				return nil, fmt.Errorf("connection %s: blob service %s: %w", conn, redactURL(blobURI), err)
			}
			acc.blobs = &azureBlobs{c: c}
		} else {
			acc.blobErr = fmt.Errorf("connection %s: no %s__blobServiceUri setting", conn, conn)
		}
		if queueURI != "" {
			c, err := azqueue.NewServiceClient(queueURI, cred, &azqueue.ClientOptions{ClientOptions: clientOpts})
			if err != nil {
				return nil, fmt.Errorf("connection %s: queue service %s: %w", conn, redactURL(queueURI), err)
			}
			acc.queues = &azureQueues{c: c}
		} else {
			acc.queueErr = fmt.Errorf("connection %s: no %s__queueServiceUri setting", conn, conn)
		}
		return acc, nil
	}

	cs, ok := s.lookup(conn)
	if !ok || cs == "" {
		cs, ok = s.lookup("AzureWebJobs" + conn)
	}
	if !ok || cs == "" {
		return nil, fmt.Errorf("connection %s: set %s__blobServiceUri and %s__queueServiceUri (identity) or %s (a connection string)", conn, conn, conn, conn)
	}
	if strings.Contains(strings.ToLower(strings.ReplaceAll(cs, " ", "")), "usedevelopmentstorage=true") {
		return nil, fmt.Errorf("connection %s: UseDevelopmentStorage=true is not supported by the Azure SDK for Go; use the explicit Azurite form DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;", conn)
	}
	if c, err := azblob.NewClientFromConnectionString(cs, &azblob.ClientOptions{ClientOptions: clientOpts}); err != nil {
		acc.blobErr = fmt.Errorf("connection %s: blob service: %w", conn, err)
	} else {
		acc.blobs = &azureBlobs{c: c}
	}
	if c, err := azqueue.NewServiceClientFromConnectionString(cs, &azqueue.ClientOptions{ClientOptions: clientOpts}); err != nil {
		acc.queueErr = fmt.Errorf("connection %s: queue service: %w", conn, err)
	} else {
		acc.queues = &azureQueues{c: c}
	}
	if acc.blobs == nil && acc.queues == nil {
		return nil, errors.Join(acc.blobErr, acc.queueErr)
	}
	return acc, nil
}

// credential picks the identity for a connection: ManagedIdentityCredential
// when IDENTITY_ENDPOINT is set or {conn}__credential is managedidentity
// (user-assigned with {conn}__clientId), else DefaultAzureCredential (which
// reads AZURE_CLIENT_ID itself).
func (a *accounts) credential(conn string) (azcore.TokenCredential, error) {
	s := a.settings
	clientID := s.get(conn + "__clientId")
	opts := azcore.ClientOptions{Transport: a.transport}
	if s.get("IDENTITY_ENDPOINT") != "" || strings.EqualFold(s.get(conn+"__credential"), "managedidentity") {
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if clientID != "" {
			o.ID = azidentity.ClientID(clientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, fmt.Errorf("connection %s: managed identity credential: %w", conn, err)
		}
		return cred, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("connection %s: default Azure credential: %w", conn, err)
	}
	return cred, nil
}

// redactURL drops the query (a SAS) and user info from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return u.String()
}

// azureQueues is queueStore over azqueue.
type azureQueues struct{ c *azqueue.ServiceClient }

func (q *azureQueues) CreateQueue(ctx context.Context, queue string) error {
	_, err := q.c.CreateQueue(ctx, queue, nil)
	if err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return fmt.Errorf("create queue %s: %w", queue, err)
	}
	return nil
}

func (q *azureQueues) Dequeue(ctx context.Context, queue string, n int, visibility time.Duration) ([]queueMessage, error) {
	resp, err := q.c.NewQueueClient(queue).DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{
		NumberOfMessages:  to.Ptr(int32(min(max(n, 1), 32))),
		VisibilityTimeout: to.Ptr(int32(max(visibility/time.Second, 1))),
	})
	if err != nil {
		return nil, fmt.Errorf("dequeue from %s: %w", queue, err)
	}
	out := make([]queueMessage, 0, len(resp.Messages))
	for _, m := range resp.Messages {
		out = append(out, queueMessage{
			ID:              deref(m.MessageID),
			PopReceipt:      deref(m.PopReceipt),
			Text:            deref(m.MessageText),
			DequeueCount:    deref(m.DequeueCount),
			InsertionTime:   deref(m.InsertionTime),
			ExpirationTime:  deref(m.ExpirationTime),
			NextVisibleTime: deref(m.TimeNextVisible),
		})
	}
	return out, nil
}

func (q *azureQueues) Delete(ctx context.Context, queue, id, popReceipt string) error {
	if _, err := q.c.NewQueueClient(queue).DeleteMessage(ctx, id, popReceipt, nil); err != nil {
		return fmt.Errorf("delete message %s from %s: %w", id, queue, err)
	}
	return nil
}

func (q *azureQueues) SetVisibility(ctx context.Context, queue, id, popReceipt, text string, d time.Duration) error {
	_, err := q.c.NewQueueClient(queue).UpdateMessage(ctx, id, popReceipt, text, &azqueue.UpdateMessageOptions{
		VisibilityTimeout: to.Ptr(int32(d / time.Second)),
	})
	if err != nil {
		return fmt.Errorf("update visibility of message %s in %s: %w", id, queue, err)
	}
	return nil
}

func (q *azureQueues) Enqueue(ctx context.Context, queue, text string) error {
	if _, err := q.c.NewQueueClient(queue).EnqueueMessage(ctx, text, nil); err != nil {
		return fmt.Errorf("enqueue to %s: %w", queue, err)
	}
	return nil
}

func (q *azureQueues) Counts(ctx context.Context, queue string) (int, int, error) {
	qc := q.c.NewQueueClient(queue)
	props, err := qc.GetProperties(ctx, nil)
	if err != nil {
		if queueerror.HasCode(err, queueerror.QueueNotFound) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("queue %s properties: %w", queue, err)
	}
	peek, err := qc.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
	if err != nil {
		return 0, 0, fmt.Errorf("peek %s: %w", queue, err)
	}
	return len(peek.Messages), int(deref(props.ApproximateMessagesCount)), nil
}

// azureBlobs is blobStore over azblob.
type azureBlobs struct{ c *azblob.Client }

func (b *azureBlobs) CreateContainer(ctx context.Context, name string) error {
	_, err := b.c.CreateContainer(ctx, name, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	return nil
}

func (b *azureBlobs) List(ctx context.Context, cont, prefix string) ([]blobItem, error) {
	opts := &container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := b.c.NewListBlobsFlatPager(cont, opts)
	var out []blobItem
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if bloberror.HasCode(err, bloberror.ContainerNotFound) {
				return nil, nil
			}
			return nil, fmt.Errorf("list container %s: %w", cont, err)
		}
		for _, it := range page.Segment.BlobItems {
			item := blobItem{Name: deref(it.Name), Metadata: map[string]string{}}
			for k, v := range it.Metadata {
				item.Metadata[k] = deref(v)
			}
			if p := it.Properties; p != nil {
				if p.ETag != nil {
					item.ETag = string(*p.ETag)
				}
				item.ContentType = deref(p.ContentType)
				item.ContentLength = deref(p.ContentLength)
				item.LastModified = deref(p.LastModified)
				item.CreatedOn = deref(p.CreationTime)
			}
			out = append(out, item)
		}
	}
	return out, nil
}

func (b *azureBlobs) Download(ctx context.Context, cont, name, etag string) ([]byte, error) {
	e := azcore.ETag(etag)
	resp, err := b.c.DownloadStream(ctx, cont, name, &blob.DownloadStreamOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &e}},
	})
	if err != nil {
		if bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobNotFound) {
			return nil, errBlobChanged
		}
		return nil, fmt.Errorf("download %s/%s: %w", cont, name, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, resp.Body); err != nil {
		return nil, fmt.Errorf("download %s/%s: %w", cont, name, err)
	}
	return buf.Bytes(), nil
}

func (b *azureBlobs) Exists(ctx context.Context, cont, name string) (bool, error) {
	_, err := b.c.ServiceClient().NewContainerClient(cont).NewBlobClient(name).GetProperties(ctx, nil)
	if err == nil {
		return true, nil
	}
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return false, nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		return false, nil
	}
	return false, fmt.Errorf("blob %s/%s properties: %w", cont, name, err)
}

func (b *azureBlobs) Upload(ctx context.Context, cont, name string, data []byte) error {
	if _, err := b.c.UploadBuffer(ctx, cont, name, data, nil); err != nil {
		return fmt.Errorf("upload %s/%s: %w", cont, name, err)
	}
	return nil
}

// URL is the blob's URL as the .NET SDK writes it: path segments escaped,
// slashes kept (azblob would write them as %2F).
func (b *azureBlobs) URL(cont, name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(b.c.ServiceClient().NewContainerClient(cont).URL(), "/") + "/" + strings.Join(segs, "/")
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
