// Plain HTTP helpers: one request per TCP connection (no keep-alive, so a
// request never holds a connection slot after it is answered), and a small
// Prometheus text-format parser.

import http from 'node:http';

/**
 * One request through `transport` (node:http or node:https) with `options`
 * as transport.request takes them, and a deadline; resolves {status,
 * headers, body}. `what` names the request in the timeout error.
 */
export function sendRequest(transport, options, { timeoutMs = 3000, what = `${options.method} ${options.path}` } = {}) {
  return new Promise((resolve, reject) => {
    const req = transport.request(options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${what}: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** GET (or other method) with a deadline; resolves {status, headers, body}. */
export function httpRequest(port, path, { method = 'GET', headers = {}, timeoutMs = 3000 } = {}) {
  return sendRequest(
    http,
    { host: '127.0.0.1', port, path, method, agent: false, headers: { Connection: 'close', ...headers } },
    { timeoutMs },
  );
}

export const httpGet = (port, path, opts) => httpRequest(port, path, opts);

/**
 * Requests over one kept-alive connection (opened by the first request): for
 * what must still be answered once the server accepts no new connections.
 * `agent` also carries a WebSocket upgrade (ws option {agent}) on it.
 * Call destroy() when done.
 */
export function keepAliveConnection(port, { timeoutMs = 2000 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    agent,
    get: (path) => sendRequest(http, { host: '127.0.0.1', port, path, agent }, { timeoutMs }),
    destroy: () => agent.destroy(),
  };
}

/**
 * Parses Prometheus text exposition into [{name, labels, value}].
 * Comment lines (# HELP / # TYPE) are returned in `.meta`.
 */
export function parseMetrics(text) {
  const samples = [];
  const meta = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      meta.push(trimmed);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(trimmed);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]] = lm[2];
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return { samples, meta };
}

/** Metrics snapshot with helpers. */
export class Metrics {
  constructor(text) {
    this.text = text;
    const { samples, meta } = parseMetrics(text);
    this.samples = samples;
    this.meta = meta;
  }

  has(name) {
    return this.samples.some((s) => s.name === name);
  }

  /**
   * Sum of every sample of `name` whose labels include `labels`. A counter
   * may be exposed with or without the `_total` suffix on the sample name
   * depending on the library; callers give the full sample name.
   */
  sum(name, labels = {}) {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }
}

export async function getMetrics(port) {
  const res = await httpGet(port, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  return new Metrics(res.body);
}
