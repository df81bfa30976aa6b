// Command devhost is a local stand-in for the Azure Functions host, for
// machines where the Functions Core Tools cannot be installed. It reads a
// function app folder (host.json, function folders with function.json,
// local.settings.json), starts the custom handler named in host.json, fires
// timers, polls storage queues, scans blob containers and serves HTTP
// triggers, and POSTs to the handler the payloads the real host sends, built
// by package invocation. See reference/functions-host.md for the host
// behaviour imitated here.
//
// Usage:
//
//	devhost -app DIR [-port 7071] [-listen 127.0.0.1] [-handler PATH]
//
// Endpoints on http://LISTEN:PORT:
//
//	/{routePrefix}/{route}          HTTP triggers (routePrefix defaults to "api")
//	GET  /admin/host/status         {"state":"Running",...}
//	POST /admin/functions/{name}    run a timer function now (body {"input":"..."}), answers 202
//	GET  /admin/devhost/stats       per function: invocations, succeeded, failed, inFlight,
//	                                poisoned; per queue: visible (peeked, at most 32) and
//	                                approximate (includes invisible) message counts
//	POST /admin/devhost/kill-handler SIGKILL the handler now, as a crash would; it is
//	                                restarted as after any exit (fault tests only)
//
// Once the handler answers its readiness probe and the HTTP server listens,
// devhost prints exactly one line, "devhost listening on http://HOST:PORT",
// to stdout. Everything else it writes is log/slog JSON, one line per
// invocation and no message body, token or SAS; the handler's stdout lines
// are passed through unchanged and its stderr lines are logged as errors.
//
// # Faithful to the real host
//
//   - Transport: POST http://127.0.0.1:{port}/{FunctionName} with the host's
//     headers (X-Azure-Functions-InvocationId, X-Azure-Functions-HostVersion,
//     User-Agent); the handler gets FUNCTIONS_CUSTOMHANDLER_PORT (a free port),
//     FUNCTIONS_CUSTOMHANDLER_WORKER_ID, the legacy FUNCTIONS_HTTPWORKER_*
//     variables and FUNCTIONS_APP_ROOT_PATH; readiness is any HTTP answer to
//     GET / polled every 25 ms for up to 30 s; the HTTP client timeout is
//     functionTimeout + 1 minute. A handler that exits is restarted with
//     backoff; an invocation that exceeds functionTimeout fails and the
//     handler is restarted, as the host restarts its worker.
//   - Payloads: every request body comes from invocation.New*Request, so the
//     double-encoded strings, the string DequeueCount, the base64 blob content
//     and the first-run timer Last "0001-01-01T00:00:00" are the real ones.
//   - Responses: non-2xx, a Content-Type other than application/json (or
//     text/json), or a body that is not JSON fails the invocation. Logs become
//     log lines. Outputs are matched to the output bindings of function.json by
//     exact name; ReturnValue goes to the $return binding. A queue output that
//     is a single string which is valid base64 is base64-decoded before it is
//     enqueued (the host's GetBindingValue quirk; devhost logs a warning); a
//     JSON array, or a string holding JSON array text, is one message per
//     element; strings and JSON text pass through.
//   - Queues: extensions.queues of host.json (and AzureFunctionsJobHost__*
//     overrides) with the host's defaults, except maxPollingInterval, which
//     defaults to 2 s as under Core Tools; batchSize + newBatchThreshold
//     concurrent invocations per function; messages dequeued for 10 minutes;
//     base64 decoding failure moves the message straight to {queue}-poison
//     without an invocation; failure makes the message visible again after
//     visibilityTimeout, and at maxDequeueCount moves it to {queue}-poison.
//     Trigger queues are created when missing.
//   - Blobs: the container is scanned and each new blob (name and ETag) is
//     triggered once; receipts are blobs in container azure-webjobs-hosts of
//     AzureWebJobsStorage, so a restart does not trigger again; after
//     poisonBlobThreshold failures a {"FunctionId","BlobType","ContainerName",
//     "BlobName","ETag"} message goes to queue webjobs-blobtrigger-poison.
//   - Timers: six-field NCRONTAB (a five-field one has no seconds), UTC,
//     runOnStartup, no overlapping runs, IsPastDue when an occurrence fires
//     late; ScheduleStatus.Next is the occurrence being run and Last the one
//     before, zero on the first run.
//   - HTTP: routes, {param} segments (with ? and :constraint forms and
//     {*catchall}), methods, extensions.http.routePrefix, the req object of
//     the non-forwarding mode and the mapping of the res output; a failed
//     invocation answers 500. enableForwardingHttpRequest proxies HTTP-only
//     functions to the handler at the original path.
//   - Connections: {conn}__blobServiceUri / __queueServiceUri (__serviceUri
//     for queues, AzureWebJobsStorage__accountName) with an azidentity
//     credential (ManagedIdentityCredential when IDENTITY_ENDPOINT is set or
//     __credential is managedidentity, with __clientId; otherwise
//     DefaultAzureCredential), or a connection string in {conn} or
//     AzureWebJobs{conn}. Values of local.settings.json are added to the
//     process environment when not already set, as Core Tools does, and
//     %NAME% in binding properties and handler arguments expands from them.
//
// # Different from the real host
//
//   - authLevel is not enforced (Core Tools does not either) and admin
//     endpoints need no key.
//   - UseDevelopmentStorage=true is refused: the Go SDK cannot parse it.
//   - Only queue and http output bindings are carried out; values for other
//     output types (blob, cosmosDB, ...) are dropped with a warning, and input
//     bindings other than the trigger are not supported.
//   - A JSON object written to a queue output is enqueued as the exact JSON
//     text the handler sent; the host re-serialises it with Newtonsoft.
//   - An empty 2xx response body fails the invocation at once; the real host
//     would wait until functionTimeout.
//   - Messages are dequeued with a 10-minute visibility that is not renewed.
//     A message whose DequeueCount already exceeds maxDequeueCount when it is
//     dequeued (left over by a crash) goes to poison without an invocation.
//   - Blob receipts are named blobreceipts/devhost/{function}/{container}/
//     {blob}/{etag} (ETag without quotes), not the host's
//     blobreceipts/{hostId}/{functionId}/{etag}/{container}/{blob}; the
//     failure count before poisoning is kept in memory, so a restart of devhost
//     starts it again; containers are scanned every second (no storage logs,
//     no Event Grid source).
//   - The timer schedule status is kept in memory, not in storage, so
//     occurrences missed while devhost was stopped are not reported as past
//     due, and there is no singleton lock. TimeSpan schedules are not
//     supported.
//   - HTTP: header names reach the handler in Go's canonical form, a request
//     body is sent whenever one is present (also when chunked), Identities is
//     always empty, and route constraints other than int, long, bool, guid and
//     alpha are accepted without being checked.
//   - The TLS trust for storage comes from the environment (SSL_CERT_FILE).
package main
