// Per-address limits (README "On the public internet"): open connections,
// handshakes in progress and joins per second per client address, the
// X-Forwarded-For attribution through a trusted proxy, one log line per
// address per minute, and the socket budget from RLIMIT_NOFILE.
//
// Linux answers on all of 127.0.0.0/8, so each test uses source addresses of
// its own (127.0.0.2, 127.0.0.3, ...) through the `localAddress` option.

import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { Client, expectRefused } from './lib/client.mjs';
import { roomPath, ServerContext, uniq, useServer, waitFor, withDeadline } from './lib/harness.mjs';
import { keepAliveConnection, parseMetrics } from './lib/http.mjs';
import { tempDir } from './lib/ops.mjs';
import { serverBinary } from './lib/server.mjs';

/** A WebSocket from `from`; resolves the client once open, or rejects with the refusal. */
function wsFrom(ctx, from, urlPath, { headers } = {}) {
  const c = new Client(ctx.url(urlPath), { label: `${from} ${urlPath}`, headers, wsOptions: { localAddress: from } });
  ctx.clients.add(c);
  return c;
}

async function joinFrom(ctx, from, room, peer, opts) {
  const c = wsFrom(ctx, from, roomPath(room, { peer }), opts);
  await c.opened;
  const welcome = await c.next();
  assert.equal(welcome.type, 'welcome', `${from}: expected welcome, got ${JSON.stringify(welcome)}`);
  return c;
}

/** An upgrade refused before it happened: the HTTP status ws saw. */
async function refusedStatus(client) {
  const err = await client.opened.then(
    () => null,
    (e) => e,
  );
  assert.ok(err, `${client.label}: the upgrade was accepted`);
  const m = /Unexpected server response: (\d+)/.exec(err.message);
  assert.ok(m, `${client.label}: expected an HTTP refusal, got ${err.message}`);
  return Number(m[1]);
}

/**
 * A raw TCP connection from `from` that sends `request` (or nothing);
 * resolves {data, ended} when the server closes it or `waitMs` passes.
 */
function rawFrom(ctx, from, { request = '', waitMs = 2000 } = {}) {
  const sock = net.connect({ host: '127.0.0.1', port: ctx.port, localAddress: from });
  ctx.sockets.add(sock);
  sock.on('error', () => {});
  const connected = withDeadline(new Promise((resolve) => sock.once('connect', resolve)), 3000, 'raw connect');
  let data = '';
  sock.on('data', (d) => {
    data += d.toString('latin1');
  });
  const result = new Promise((resolve) => {
    const t = setTimeout(() => resolve({ data, ended: false }), waitMs);
    sock.once('close', () => {
      clearTimeout(t);
      resolve({ data, ended: true });
    });
  });
  connected.then(() => {
    if (request) sock.write(request);
  });
  return { sock, connected, result };
}

const upgradeRequest = (room, peer, extra = '') =>
  `GET ${roomPath(room, { peer })} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

const refused = (m, reason) =>
  m.samples.find((s) => s.name === 'rendezvous_connections_refused_total' && s.labels.reason === reason)?.value ?? 0;
const sample = (m, name) => m.samples.find((s) => s.name === name)?.value;
const countLines = (log, re) => log.split('\n').filter((l) => re.test(l)).length;

describe('per address: open connections (--max-connections-per-ip 3)', () => {
  const ctx = useServer(['--max-connections-per-ip', '3']);

  it('the 4th connection from one address gets 429 + Retry-After and is closed at once; others are not affected', async () => {
    const room = uniq('conns');
    const held = [];
    for (let i = 0; i < 3; i += 1) held.push(await joinFrom(ctx, '127.0.0.2', room, `p${i}`));

    // Over the limit: refused before the upgrade, nothing read, socket closed.
    const raw = rawFrom(ctx, '127.0.0.2', { request: upgradeRequest(room, 'p3') });
    const { data, ended } = await raw.result;
    assert.ok(ended, 'the refused socket was not closed by the server');
    assert.match(data, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(data, /\r\nRetry-After: \d+\r\n/i);
    assert.match(data, /\r\nConnection: close\r\n/i);
    assert.equal(await refusedStatus(wsFrom(ctx, '127.0.0.2', roomPath(room, { peer: 'p4' }))), 429);

    // Another address joins the same room.
    const other = await joinFrom(ctx, '127.0.0.3', room, 'q0');
    assert.equal(other.closeInfo, null);

    const m = await ctx.metrics();
    assert.ok(m.sum('rendezvous_connections_refused_total', { reason: 'connections' }) >= 2);
    // The refused sockets hold nothing: only the 4 WebSockets (and this scrape).
    assert.ok(m.sum('rendezvous_sockets_open') <= 5, `sockets open: ${m.sum('rendezvous_sockets_open')}`);

    // One closes: the address may connect again.
    await held[0].close();
    await waitFor(async () => {
      const c = wsFrom(ctx, '127.0.0.2', roomPath(room, { peer: uniq('again') }));
      return c.opened.then(
        () => true,
        () => false,
      );
    }, { what: 'a connection again after one closed' });
  });

  it('many refusals from one address: one log line (with the address) within the minute', async () => {
    const room = uniq('log');
    for (let i = 0; i < 3; i += 1) await joinFrom(ctx, '127.0.0.4', room, `p${i}`);
    const attempts = [];
    for (let i = 0; i < 30; i += 1) attempts.push(rawFrom(ctx, '127.0.0.4', { request: upgradeRequest(room, `x${i}`) }).result);
    for (const r of await Promise.all(attempts)) assert.match(r.data, /^HTTP\/1\.1 429 /);
    await waitFor(() => /refuse-address .*address=127\.0\.0\.4/.test(ctx.server.log()), { what: 'the refusal line' });
    assert.equal(countLines(ctx.server.log(), /refuse-address .*address=127\.0\.0\.4\b/), 1, ctx.server.log());
    assert.match(ctx.server.log(), /refuse-address .*address=127\.0\.0\.4 reason=connections refused=1/);
  });
});

describe('per address: handshakes in progress (--max-handshakes-per-ip 2)', () => {
  const ctx = useServer(['--max-handshakes-per-ip', '2', '--handshake-timeout-ms', '5000']);

  it('silent connections count until upgraded; the 3rd is refused with 429 before it sends anything', async () => {
    const room = uniq('hs');
    // Two upgraded WebSockets are not handshakes any more.
    await joinFrom(ctx, '127.0.0.5', room, 'a');
    await joinFrom(ctx, '127.0.0.5', room, 'b');
    const s1 = rawFrom(ctx, '127.0.0.5', { waitMs: 300 });
    const s2 = rawFrom(ctx, '127.0.0.5', { waitMs: 300 });
    await Promise.all([s1.connected, s2.connected]);
    assert.equal((await s1.result).ended, false, 'a silent connection within the limit was closed');
    const third = rawFrom(ctx, '127.0.0.5');
    const r = await third.result;
    assert.ok(r.ended);
    assert.match(r.data, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(r.data, /handshake/);
    // Another address is not affected.
    const other = rawFrom(ctx, '127.0.0.6', { waitMs: 300 });
    assert.equal((await other.result).ended, false);
    // One silent connection goes: there is room for a handshake again.
    s1.sock.destroy();
    await waitFor(async () => {
      const c = wsFrom(ctx, '127.0.0.5', roomPath(room, { peer: uniq('c') }));
      return c.opened.then(
        () => true,
        () => false,
      );
    }, { what: 'an upgrade again' });
    const m = await ctx.metrics();
    assert.ok(m.sum('rendezvous_connections_refused_total', { reason: 'handshakes' }) >= 1);
  });
});

describe('per address: joins per second (--join-rate-per-ip 2 --join-burst-per-ip 3)', () => {
  const ctx = useServer(['--join-rate-per-ip', '2', '--join-burst-per-ip', '3']);

  it('a burst, then rate-limited / 4429 after the upgrade; other addresses join; the bucket refills', async () => {
    const room = uniq('jr');
    for (let i = 0; i < 3; i += 1) await (await joinFrom(ctx, '127.0.0.7', room, `p${i}`)).close();
    const over = wsFrom(ctx, '127.0.0.7', roomPath(room, { peer: 'p3' }));
    await over.opened; // the refusal follows the upgrade, in the protocol's words
    await expectRefused(over, 'rate-limited', 4429);
    await joinFrom(ctx, '127.0.0.8', room, 'other');
    const m = await ctx.metrics();
    assert.equal(m.sum('rendezvous_connections_refused_total', { reason: 'join-rate' }), 1);
    assert.equal(m.sum('rendezvous_errors_total', { code: 'rate-limited' }), 1);
    // Not one "refuse" line per connection: the join rate logs per address.
    assert.equal(countLines(ctx.server.log(), /\brefuse mode=/), 0);
    assert.equal(countLines(ctx.server.log(), /refuse-address .*address=127\.0\.0\.7 reason=join-rate refused=1/), 1);
    // 2 tokens a second: within a second one more join is allowed.
    await waitFor(
      async () => {
        const c = wsFrom(ctx, '127.0.0.7', roomPath(room, { peer: uniq('later') }));
        await c.opened;
        const first = await c.next();
        await c.close();
        return first.type === 'welcome';
      },
      { timeoutMs: 3000, intervalMs: 200, what: 'a join once the bucket refilled' },
    );
  });
});

describe('per address behind a trusted proxy (--trusted-proxies 127.0.0.9 --max-connections-per-ip 2)', () => {
  const ctx = useServer(['--trusted-proxies', '127.0.0.9', '--max-connections-per-ip', '2']);

  it('the proxy counts per client it names in X-Forwarded-For, not as one address', async () => {
    const room = uniq('xff');
    const viaProxy = (client, peer) => ({ headers: { 'X-Forwarded-For': client }, peer });
    const a = viaProxy('203.0.113.5', 'a1');
    await joinFrom(ctx, '127.0.0.9', room, a.peer, a);
    await joinFrom(ctx, '127.0.0.9', room, 'a2', a);
    // The third of 203.0.113.5 is refused before the upgrade...
    const third = wsFrom(ctx, '127.0.0.9', roomPath(room, { peer: 'a3' }), a);
    assert.equal(await refusedStatus(third), 429);
    // ...while the proxy still carries other clients (4 connections from 127.0.0.9 in all).
    await joinFrom(ctx, '127.0.0.9', room, 'b1', viaProxy('198.51.100.7', 'b1'));
    await joinFrom(ctx, '127.0.0.9', room, 'b2', viaProxy('10.1.1.1, 198.51.100.8', 'b2'));
    await waitFor(() => /refuse-address .*address=203\.0\.113\.5 reason=connections/.test(ctx.server.log()), {
      what: 'the refusal line naming the forwarded client',
    });
    // IPv6 clients count per /64.
    await joinFrom(ctx, '127.0.0.9', room, 'v1', viaProxy('2001:db8:1:2::1', 'v1'));
    await joinFrom(ctx, '127.0.0.9', room, 'v2', viaProxy('2001:db8:1:2::ffff', 'v2'));
    const v3 = wsFrom(ctx, '127.0.0.9', roomPath(room, { peer: 'v3' }), viaProxy('2001:db8:1:2:abcd::9', 'v3'));
    assert.equal(await refusedStatus(v3), 429);
    await joinFrom(ctx, '127.0.0.9', room, 'v4', viaProxy('2001:db8:1:3::1', 'v4'));
  });

  it('an untrusted peer is counted by its own address whatever X-Forwarded-For it sends', async () => {
    const room = uniq('untrusted');
    await joinFrom(ctx, '127.0.0.10', room, 'u1', { headers: { 'X-Forwarded-For': '192.0.2.1' } });
    await joinFrom(ctx, '127.0.0.10', room, 'u2', { headers: { 'X-Forwarded-For': '192.0.2.2' } });
    const third = wsFrom(ctx, '127.0.0.10', roomPath(room, { peer: 'u3' }), { headers: { 'X-Forwarded-For': '192.0.2.3' } });
    assert.equal(await refusedStatus(third), 429);
    await waitFor(() => /refuse-address .*address=127\.0\.0\.10 reason=connections/.test(ctx.server.log()), {
      what: 'the refusal line naming the TCP peer',
    });
    assert.doesNotMatch(ctx.server.log(), /refuse-address .*address=192\.0\.2\./);
  });
});

describe('socket budget (RLIMIT_NOFILE 96, fd_reserve 32)', () => {
  // The server runs under prlimit(1) with a hard limit of 96 descriptors:
  // its budget is 96 - 32 - what it had open at start.
  const dir = tempDir('rendezvous-budget-');
  const wrapper = path.join(dir, 'server-under-prlimit.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec prlimit --nofile=96:96 -- ${JSON.stringify(serverBinary())} "$@"\n`);
  chmodSync(wrapper, 0o755);
  let ctx = null;
  after(async () => {
    if (ctx) {
      await ctx.closeClients();
      await ctx.server.stop({ timeoutMs: 3000 });
    }
  });

  it('logs the budget at start, refuses with 503 at it (nothing held), /readyz says so, and recovers', async () => {
    const saved = process.env.RENDEZVOUS_SERVER;
    process.env.RENDEZVOUS_SERVER = wrapper;
    try {
      ctx = new ServerContext(['--max-handshakes-per-ip', '0', '--max-connections-per-ip', '0']);
      await ctx.start();
    } finally {
      if (saved === undefined) delete process.env.RENDEZVOUS_SERVER;
      else process.env.RENDEZVOUS_SERVER = saved;
    }
    const m = /socket budget (\d+): RLIMIT_NOFILE soft 96 .* fd_reserve 32 and (\d+) open/.exec(ctx.server.log());
    assert.ok(m, `no budget line in the start-up log:\n${ctx.server.log()}`);
    const budget = Number(m[1]);
    assert.equal(budget, 96 - 32 - Number(m[2]));

    const probe = keepAliveConnection(ctx.port); // one socket of the budget, kept for /readyz
    try {
      assert.equal((await probe.get('/readyz')).status, 200);
      const held = [];
      for (let i = 0; i < budget - 1; i += 1) held.push(rawFrom(ctx, '127.0.0.11', { waitMs: 100000 }));
      await Promise.all(held.map((h) => h.connected));
      await waitFor(async () => sample(parseMetrics((await probe.get('/metrics')).body), 'rendezvous_sockets_open') === budget, {
        what: 'every socket of the budget held',
      });
      const over = rawFrom(ctx, '127.0.0.12', { request: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' });
      const r = await over.result;
      assert.ok(r.ended);
      assert.match(r.data, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(r.data, /\r\nRetry-After: \d+\r\n/i);
      const ready = await probe.get('/readyz');
      assert.equal(ready.status, 503);
      assert.match(ready.body, /socket budget/);
      const metrics = parseMetrics((await probe.get('/metrics')).body);
      assert.equal(sample(metrics, 'rendezvous_socket_budget'), budget);
      assert.ok(refused(metrics, 'fd-budget') >= 1);
      assert.equal(countLines(ctx.server.log(), /accept failed/), 0, 'the process itself never ran out');
      for (const h of held) h.sock.destroy();
      await waitFor(async () => (await probe.get('/readyz')).status === 200, { what: '/readyz 200 again' });
      const room = uniq('budget');
      await joinFrom(ctx, '127.0.0.12', room, 'after');
    } finally {
      probe.destroy();
    }
  });
});
