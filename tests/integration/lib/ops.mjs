// Helpers for the operations tests (ops-*.test.mjs): TLS certificates made at
// test time, a wss:// server context, clients with TLS options, JWTs built
// independently of the server (node:crypto HMAC), and the `token`
// subcommand. The existing helpers (client.mjs, harness.mjs, ...) are used
// as they are; nothing here changes them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import { Client, DEFAULT_TIMEOUT_MS } from './client.mjs';
import { ServerContext, useContext } from './harness.mjs';
import { Metrics, sendRequest } from './http.mjs';
import { serverBinary } from './server.mjs';

// ---------------------------------------------------------------------------
// Temp dirs and certificates

/** A temp dir removed in a root-level after() hook of the calling test file. */
export function tempDir(prefix = 'rendezvous-ops-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export { makeSelfSignedCert } from '../../lib/certs.mjs';

// ---------------------------------------------------------------------------
// Clients with TLS (or any other ws) options

/** A Client (lib/client.mjs) whose WebSocket gets extra `ws` options, e.g. {ca} or {rejectUnauthorized:false}. */
export function makeClient(url, { label = url, headers, wsOptions = {}, handshakeTimeoutMs = 5000 } = {}) {
  return new Client(url, { label, headers, wsOptions, handshakeTimeoutMs });
}

/** Resolves with the open error of `client` (asserts it did not open). */
export async function expectOpenFails(client, timeoutMs = DEFAULT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${client.label}: neither opened nor failed within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.opened, timeout]);
  } catch (err) {
    if (/neither opened nor failed/.test(err.message)) throw err;
    return err;
  } finally {
    clearTimeout(timer);
    client.ws.terminate();
  }
  assert.fail(`${client.label}: the WebSocket opened, but it should have failed`);
}

// ---------------------------------------------------------------------------
// HTTPS

/** One HTTPS request (no keep-alive) with a deadline: {status, headers, body}. */
export function httpsRequest(port, reqPath, { method = 'GET', headers = {}, ca, rejectUnauthorized = true, host = '127.0.0.1', servername, timeoutMs = 3000 } = {}) {
  return sendRequest(
    https,
    { host, port, path: reqPath, method, agent: false, ca, rejectUnauthorized, servername, headers: { Connection: 'close', ...headers } },
    { timeoutMs, what: `https ${method} ${reqPath}` },
  );
}

// ---------------------------------------------------------------------------
// wss:// server context

/** A ServerContext whose clients and HTTP requests use TLS, verifying `ca`. */
export class TlsServerContext extends ServerContext {
  constructor(args, { ca, host = '127.0.0.1' } = {}) {
    super(args);
    this.ca = ca;
    this.host = host;
  }

  url(p) {
    return `wss://${this.host}:${this.port}${p}`;
  }

  async connect(p, options = {}) {
    const { wsOptions, ...rest } = options;
    const client = makeClient(this.url(p), { label: options.label ?? p, ...rest, wsOptions: { ca: this.ca, ...wsOptions } });
    this.clients.add(client);
    await client.opened;
    return client;
  }

  http(p, opts = {}) {
    return httpsRequest(this.port, p, { ca: this.ca, host: this.host, ...opts });
  }

  async metrics() {
    const res = await this.http('/metrics');
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
    return new Metrics(res.body);
  }
}

export function useTlsServer(args, opts) {
  return useContext(new TlsServerContext(args, opts));
}

// ---------------------------------------------------------------------------
// JWTs built here, independently of the server (node:crypto HMAC)

export const nowS = () => Math.floor(Date.now() / 1000);

export function b64url(data) {
  return Buffer.from(typeof data === 'string' ? data : data).toString('base64url');
}

const HMAC_BY_ALG = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * A signed JWT. `header.alg` picks the HMAC (HS256 default; HS384/HS512 to
 * test refusals); `signWith` overrides the HMAC used whatever the header says.
 */
export function makeJwt(secret, claims, { header = { alg: 'HS256', typ: 'JWT' }, signWith } = {}) {
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(claims));
  const hash = signWith ?? HMAC_BY_ALG[header.alg] ?? 'sha256';
  const sig = createHmac(hash, secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

/** An unsigned JWT with `alg: none` (empty signature part). */
export function makeUnsignedJwt(claims) {
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
}

/** Decodes a JWT's header and payload (no verification). */
export function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    signature: s,
  };
}

/**
 * Runs `rendezvous-server token ...args`; resolves {status, stdout, stderr}.
 * The caller's RENDEZVOUS_* variables are dropped unless given in `env`.
 */
export function runTokenCommand(args, env = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RENDEZVOUS_')));
  try {
    const stdout = execFileSync(serverBinary(), ['token', ...args], {
      encoding: 'utf8',
      timeout: 5000,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    return { status: err.status, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
