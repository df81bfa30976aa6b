#!/usr/bin/env node
// cosmos-tls.js starts the Cosmos DB emulator (@vercel/cosmosdb-server) over
// HTTPS with our own certificate. The certificate shipped in the package
// expired in 2021 and has no SAN, so Go clients refuse it.
//
// Usage: node cosmos-tls.js PORT CERT_PEM KEY_PEM
//
// PORT 0 picks a free port. When the server listens it prints
//   Ready to accept HTTPS connections at 127.0.0.1:PORT
// on stdout (internal/localstack reads the port from that line).
// It exits on SIGTERM or SIGINT.
"use strict";

const fs = require("fs");
const { createHttpsServer } = require("@vercel/cosmosdb-server");

const args = process.argv.slice(2);
if (args.length !== 3) {
  console.error("usage: node cosmos-tls.js PORT CERT_PEM KEY_PEM");
  process.exit(2);
}
const [portArg, certFile, keyFile] = args;
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`cosmos-tls: invalid port ${JSON.stringify(portArg)}`);
  process.exit(2);
}

let cert;
let key;
try {
  cert = fs.readFileSync(certFile);
  key = fs.readFileSync(keyFile);
} catch (err) {
  console.error(`cosmos-tls: read certificate: ${err.message}`);
  process.exit(1);
}

const server = createHttpsServer({ cert, key });
server.on("error", (err) => {
  console.error(`cosmos-tls: ${err.message}`);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.log(
    `Ready to accept HTTPS connections at 127.0.0.1:${server.address().port}`,
  );
});

// Exit at once: server.close would wait for idle keep-alive connections, and
// the emulator keeps everything in memory, so there is nothing to flush.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
