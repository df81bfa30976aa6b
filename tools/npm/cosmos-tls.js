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
const cosmosQuery = require("@zeit/cosmosdb-query");

// The emulator's query engine (@zeit/cosmosdb-query 0.x) compiles
// "FROM c" into $c.reduce(($, c) => [...$, { c }], []): it copies its
// accumulator for every document, so every query costs the square of the
// container's size (a 30,000-document container takes seconds per page,
// 200,000 hours). Rewrite that one pattern of the generated code into the
// equivalent linear filter and map. Results are unchanged; joins keep their
// code.
const fromPattern =
  /\.reduce\(\(\$, (\w+)\) => typeof \1 !== "undefined" \? \[\.\.\.\$, \{\s*(\w+): \1\s*\}\] : \$, \[\]\)/g;
const queryProto = Object.getPrototypeOf(cosmosQuery.default("SELECT * FROM c"));
const codeGetter = Object.getOwnPropertyDescriptor(queryProto, "code").get;
Object.defineProperty(queryProto, "code", {
  get() {
    return codeGetter
      .call(this)
      .replace(fromPattern, '.filter(($1) => typeof $1 !== "undefined").map(($1) => ({ $2: $1 }))');
  },
});

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

// keepAlive: the emulator answers "Connection: close" by default, so every
// request would pay a TLS handshake on its single JavaScript thread; real
// Cosmos DB keeps connections open.
const server = createHttpsServer({ cert, key, keepAlive: true });
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
