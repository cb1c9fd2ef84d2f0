// Graceful stop: SIGTERM stops accepting connections, closes every
// WebSocket with 1001, sends no peer-left, refuses joins on connections
// opened before it, and exits 0 within the drain timeout.

import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';

import { expectRefused } from './lib/client.mjs';
import { roomPath, ServerContext, uniq, withDeadline } from './lib/harness.mjs';
import { keepAliveConnection } from './lib/http.mjs';

const DRAIN_MS = 2000;

describe(`graceful stop (--drain-timeout-ms ${DRAIN_MS})`, () => {
  let ctx = null;

  afterEach(async () => {
    if (!ctx) return;
    await ctx.closeClients();
    await ctx.server.stop({ timeoutMs: 2000, signal: 'SIGKILL' });
    ctx = null;
  });

  async function start(extra = []) {
    ctx = new ServerContext(['--drain-timeout-ms', String(DRAIN_MS), ...extra]);
    await ctx.start();
    return ctx;
  }

  it('SIGTERM: every peer gets close 1001, no peer-left, and the process exits 0 within the drain timeout', async () => {
    await start();
    const room = uniq('stop');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const l = await ctx.lobby(uniq('L'));
    await a.expectQuiet();
    await b.expectQuiet();

    const started = Date.now();
    ctx.server.proc.kill('SIGTERM');
    const [ia, ib, il] = await Promise.all([a.waitClosed(DRAIN_MS + 2000), b.waitClosed(DRAIN_MS + 2000), l.waitClosed(DRAIN_MS + 2000)]);
    assert.equal(ia.code, 1001, `A closed with ${JSON.stringify(ia)}`);
    assert.equal(ib.code, 1001, `B closed with ${JSON.stringify(ib)}`);
    assert.equal(il.code, 1001, `lobby peer closed with ${JSON.stringify(il)}`);
    // everyone is leaving: no peer-left on the way out
    for (const c of [a, b, l]) {
      const frames = [];
      while (c.pending > 0) frames.push(await c.next());
      assert.deepEqual(frames, [], `${c.label} got frames during the drain`);
    }
    const exit = await withDeadline(ctx.server.exited, DRAIN_MS + 2000, 'process exit after SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - started < DRAIN_MS + 2000, 'exited within the drain timeout');
  });

  it('SIGTERM with no connection: exit 0 promptly', async () => {
    await start();
    const started = Date.now();
    const info = await ctx.server.stop({ timeoutMs: DRAIN_MS + 2000 });
    assert.deepEqual({ code: info.code, signal: info.signal, killed: info.killed }, { code: 0, signal: null, killed: false });
    assert.ok(Date.now() - started < 1000, `idle stop took ${Date.now() - started} ms`);
  });

  it('SIGINT stops the server the same way', async () => {
    await start();
    const a = await ctx.join(uniq('stop'), { peer: 'A' });
    ctx.server.proc.kill('SIGINT');
    assert.equal((await a.waitClosed(DRAIN_MS + 2000)).code, 1001);
    const exit = await withDeadline(ctx.server.exited, DRAIN_MS + 2000, 'process exit after SIGINT');
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  it('a peer that never answers the close does not keep the process beyond the drain timeout', async () => {
    await start();
    const a = await ctx.join(uniq('stop'), { peer: 'A' });
    a.pauseReading(); // never reads the close frame, never answers it
    const started = Date.now();
    ctx.server.proc.kill('SIGTERM');
    const exit = await withDeadline(ctx.server.exited, DRAIN_MS + 2000, 'process exit after SIGTERM with a stuck peer');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - started < DRAIN_MS + 2000);
  });

  it('while draining: new connections refused by the kernel; on open ones /readyz 503 "draining" and joins refused with 4503', async () => {
    await start();
    const port = ctx.port;
    // One keep-alive connection opened before the signal: requests on it
    // are still answered during the drain, new connections are not accepted.
    const open = keepAliveConnection(port, { timeoutMs: 1000 });
    const viaAgent = open.get;
    try {
      assert.equal((await viaAgent('/healthz')).status, 200);
      // A peer that does not read keeps the server draining (it cannot finish
      // the close handshake with it) until the drain timeout.
      const room = uniq('stop');
      const stuck = await ctx.join(room, { peer: 'S' });
      // A reading peer: its 1001 close proves the drain has begun (the signal
      // is handled asynchronously; asking right after kill() races it).
      const watcher = await ctx.join(room, { peer: 'W' });
      await stuck.nextOfType('peer-joined');
      stuck.pauseReading();
      ctx.server.proc.kill('SIGTERM');
      assert.equal((await watcher.waitClosed(DRAIN_MS + 2000)).code, 1001);

      const ready = await viaAgent('/readyz');
      assert.equal(ready.status, 503, `/readyz while draining: ${ready.status} ${ready.body}`);
      assert.match(ready.body, /draining/);
      assert.equal((await viaAgent('/healthz')).status, 200, '/healthz still 200 while serving the drain');

      // The acceptor was closed when the drain began (the close is posted to
      // its strand, so allow it a moment): a new TCP connection is refused.
      const deadline = Date.now() + 1000;
      let refused = null;
      while (!refused && Date.now() < deadline) {
        refused = await new Promise((resolve) => {
          const sock = net.connect(port, '127.0.0.1');
          sock.once('connect', () => {
            sock.destroy();
            resolve(null);
          });
          sock.once('error', (err) => resolve(err));
        });
      }
      assert.equal(refused?.code, 'ECONNREFUSED', 'a new connection during the drain was accepted');

      // A join on the connection opened before: upgraded, then refused.
      const late = await ctx.connect(roomPath(uniq('late'), { peer: 'L' }), { wsOptions: { agent: open.agent } });
      await expectRefused(late, 'unavailable', 4503);

      const exit = await withDeadline(ctx.server.exited, DRAIN_MS + 2000, 'process exit after the drain');
      assert.deepEqual(exit, { code: 0, signal: null });
    } finally {
      open.destroy();
    }
  });
});
