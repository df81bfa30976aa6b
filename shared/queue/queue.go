// Package queue sends costsync's own queue messages: JSON, base64-encoded as
// the Functions queue trigger expects by default, optionally hidden for a
// delay. The queue output binding cannot delay a message, and waiting (for a
// report, or out a throttle) is always a delayed message, never a sleep.
package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// The queues costsync uses.
const (
	Windows = "cost-windows"
	Parts   = "cost-parts"
)

// All returns the queues costsync sends to, for provisioning (costsync init
// and the local stack create them; the Functions host creates trigger
// queues too, but not before a function sends to one).
func All() []string { return []string{Windows, Parts} }

// MaxDelay is the longest visibility delay Azure Queue Storage accepts.
const MaxDelay = 7 * 24 * time.Hour

// MaxMessageBytes is the largest encoded message Queue Storage accepts.
const MaxMessageBytes = 64 << 10

// Client sends messages; it is safe for concurrent use.
type Client struct {
	svc *azqueue.ServiceClient
}

// New builds a Client for a queue service URL. It makes no network calls.
func New(serviceURL string, cred azcore.TokenCredential, o *azqueue.ClientOptions) (*Client, error) {
	svc, err := azqueue.NewServiceClient(serviceURL, cred, o)
	if err != nil {
		return nil, fmt.Errorf("queue client for %s: %w", serviceURL, err)
	}
	return &Client{svc: svc}, nil
}

// Send enqueues v as JSON on queue, invisible for delay.
func (c *Client) Send(ctx context.Context, queue string, v any, delay time.Duration) error {
	text, err := Encode(v)
	if err != nil {
		return err
	}
	secs := int32(min(max(delay, 0), MaxDelay).Round(time.Second) / time.Second)
	_, err = c.svc.NewQueueClient(queue).EnqueueMessage(ctx, text, &azqueue.EnqueueMessageOptions{VisibilityTimeout: &secs})
	if err != nil {
		return fmt.Errorf("enqueue on %s: %w", queue, err)
	}
	return nil
}

// Create makes the queues if they do not exist (provisioning and the local
// stack; the Functions host also creates trigger queues itself).
func (c *Client) Create(ctx context.Context, queues ...string) error {
	for _, q := range queues {
		if _, err := c.svc.CreateQueue(ctx, q, nil); err != nil {
			var re *azcore.ResponseError
			if !(errors.As(err, &re) && re.StatusCode == 409) {
				return fmt.Errorf("create queue %s: %w", q, err)
			}
		}
	}
	return nil
}

// Encode is the message text for v: base64 of its JSON.
func Encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode message: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(b)
	if len(text) > MaxMessageBytes {
		return "", fmt.Errorf("encode message: %d bytes encoded, more than the %d a queue message may hold", len(text), MaxMessageBytes)
	}
	return text, nil
}
