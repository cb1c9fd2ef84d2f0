// Glue for node:test suites: one server per describe() block, clients that
// are always cleaned up, unique names, and deadline-bound polling.

import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import net from 'node:net';

import { Client, DEFAULT_TIMEOUT_MS } from './client.mjs';
import { getMetrics, httpGet } from './http.mjs';
import { startServer } from './server.mjs';

export const NAME_RE = /^[A-Za-z0-9._~-]{1,64}$/;

let uniqCounter = 0;
/** A name unique within this test process (valid room/peer name). */
export function uniq(prefix = 'n') {
  uniqCounter += 1;
  return `${prefix}-${process.pid}-${uniqCounter}`;
}

/**
 * Polls `fn` until it returns a truthy value (returned) or the deadline
 * passes (throws, with the last value/error in the message). For waiting on
 * state that only HTTP can show (metrics, readyz); never a stand-in for an
 * event the test could wait on directly.
 */
export async function waitFor(fn, { timeoutMs = 3000, intervalMs = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not met within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Rejects if `promise` does not settle within `ms`. */
export async function withDeadline(promise, ms, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Builds a room path with properly encoded query parameters. */
export function roomPath(room, { peer, resume, token, rawRoom = false } = {}) {
  const params = new URLSearchParams();
  if (peer !== undefined) params.set('peer', peer);
  if (resume !== undefined) params.set('resume', resume);
  if (token !== undefined) params.set('token', token);
  const q = params.toString();
  return `/rooms/${rawRoom ? room : encodeURIComponent(room)}${q ? `?${q}` : ''}`;
}

/**
 * A server per describe() block. Registers before/after hooks; afterEach
 * closes every client the test opened (cleanly, so no place stays held).
 * The after hook fails the suite if the server died during the suite or did
 * not exit with 0 on SIGTERM.
 */
export function useServer(args = [], opts = {}) {
  return useContext(new ServerContext(args), opts);
}

/**
 * The hooks of useServer() for a ready-made context (e.g. a subclass with
 * TLS); `ctx.args` may be filled in until the before hook runs.
 */
export function useContext(ctx, { stopTimeoutMs = 5000, expectCleanExit = true } = {}) {
  before(async () => {
    await ctx.start();
  });
  afterEach(async () => {
    await ctx.closeClients();
  });
  after(async () => {
    await ctx.closeClients();
    if (!ctx.server) return;
    const crashed = ctx.server.exitInfo;
    const info = await ctx.server.stop({ timeoutMs: stopTimeoutMs });
    if (expectCleanExit) {
      assert.equal(crashed, null, `server died during the suite: ${JSON.stringify(crashed)}; log tail:\n${ctx.server.log().slice(-4000)}`);
      assert.equal(info.killed, false, `server did not exit within ${stopTimeoutMs} ms of SIGTERM`);
      assert.equal(info.code, 0, `server exit after SIGTERM: ${JSON.stringify(info)}; log tail:\n${ctx.server.log().slice(-4000)}`);
    }
  });
  return ctx;
}

export class ServerContext {
  constructor(args) {
    this.args = args;
    this.server = null;
    this.clients = new Set();
    this.sockets = new Set();
  }

  async start() {
    this.server = await startServer(this.args);
    return this;
  }

  get port() {
    return this.server.port;
  }

  url(path) {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** Opens a WebSocket on `path` (awaits the open; rejects if the upgrade fails). */
  async connect(path, options = {}) {
    const client = new Client(this.url(path), { label: options.label ?? path, ...options });
    this.clients.add(client);
    await client.opened;
    return client;
  }

  /**
   * Joins a room and returns the client with `.welcome` set (asserts the
   * first frame is a welcome).
   */
  async join(room, opts = {}) {
    const label = opts.label ?? `${opts.peer ?? '<auto>'}@${room}`;
    const client = await this.connect(roomPath(room, opts), { ...opts, label });
    const welcome = await client.next(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    assert.equal(welcome.type, 'welcome', `${label}: expected welcome first, got ${JSON.stringify(welcome)}`);
    client.welcome = welcome;
    client.id = welcome.id;
    client.room = room;
    return client;
  }

  /** Connects to the lobby as `/{id}` (no welcome is expected). */
  async lobby(id, opts = {}) {
    return this.connect(`/${encodeURIComponent(id)}`, { label: `lobby:${id}`, ...opts });
  }

  /** A raw TCP connection to the server (tracked for cleanup). */
  async rawSocket() {
    const sock = net.connect({ host: '127.0.0.1', port: this.port });
    this.sockets.add(sock);
    sock.on('error', () => {});
    await withDeadline(new Promise((resolve) => sock.once('connect', resolve)), 3000, 'raw TCP connect');
    return sock;
  }

  metrics() {
    return getMetrics(this.port);
  }

  http(path, opts) {
    return httpGet(this.port, path, opts);
  }

  async closeClients() {
    const clients = [...this.clients];
    this.clients.clear();
    await Promise.all(
      clients.map(async (c) => {
        if (c.closeInfo) return;
        if (c.paused) {
          // it would never read the server's close frame
          c.terminate();
          return;
        }
        try {
          await c.close(1000, 2000);
        } catch {
          c.terminate();
        }
      }),
    );
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

/**
 * Waits until the server reports `rendezvous_connections` satisfying `pred`.
 * Used after ws.terminate() to know the server has seen the drop before the
 * test goes on (the drop itself sends no event to anyone).
 */
export async function waitForConnections(ctx, pred, what = 'connections gauge') {
  return waitFor(
    async () => {
      const m = await ctx.metrics();
      const v = m.sum('rendezvous_connections');
      return pred(v) ? { value: v } : false;
    },
    { what, timeoutMs: 3000 },
  );
}
