// Drives a running rendezvous-server (e.g. a container's published port)
// from outside, for docker/test-container.sh:
//
//   node tests/turn/container-check.mjs --base ws://127.0.0.1:PORT
//        [--ca CERT.pem] [--jwt-secret S] [--turn-secret S --turn-uri URI]
//
// 1. /healthz answers 200 (https when --ca is given, verified against it).
// 2. WebSocket relay: A and B join a room, B's offer reaches A with `id`
//    rewritten, A's answer reaches B, B's close gives A `peer-left`.
//    With --jwt-secret the joins carry tokens (HS256, built here), and a
//    join without one is refused with 4401.
// 3. Two node-datachannel peers signal through the server and open a data
//    channel (one message each way).
// 4. With --turn-secret: the welcome carries TURN REST credentials for
//    --turn-uri made with that secret.
// 5. With --expect-relay: two relay-only peers each get a relay candidate,
//    i.e. the TURN server at --turn-uri accepted the welcome's credentials
//    (ALLOCATE succeeded).
// Prints one line per check; exit 0 when all pass, 1 otherwise.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

import { cleanup, dataChannelPair, joinRoom, SignalingClient } from './lib/dcpair.mjs';

const { values: o } = parseArgs({
  options: {
    base: { type: 'string' },
    ca: { type: 'string' },
    'jwt-secret': { type: 'string' },
    'turn-secret': { type: 'string' },
    'turn-uri': { type: 'string' },
    'expect-relay': { type: 'boolean', default: false },
  },
});
if (!o.base) {
  process.stderr.write('container-check: --base ws://HOST:PORT is required\n');
  process.exit(2);
}
const ca = o.ca ? readFileSync(o.ca, 'utf8') : undefined;
const wsOptions = ca ? { ca } : {};
const url = new URL(o.base);
const tag = `${process.pid}-${Date.now() % 100000}`;

function jwt(secret, claims) {
  const b = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const head = `${b({ alg: 'HS256', typ: 'JWT' })}.${b(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
const tokenFor = (room) => (peer) =>
  o['jwt-secret'] ? jwt(o['jwt-secret'], { room, sub: peer, exp: Math.floor(Date.now() / 1000) + 120 }) : undefined;

function healthz() {
  const mod = url.protocol === 'wss:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(
      { host: url.hostname, port: url.port, path: '/healthz', agent: false, ca, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('/healthz: no answer within 5 s')));
    req.on('error', reject);
  });
}

let failed = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${err.message}`);
  }
}

await check('/healthz answers 200', async () => {
  const r = await healthz();
  assert.equal(r.status, 200);
  assert.equal(r.body.trim(), 'ok');
});

await check('WebSocket relay through the published port', async () => {
  const room = `relay-${tag}`;
  const tok = tokenFor(room);
  const a = await joinRoom(o.base, room, 'A', { wsOptions, token: tok('A') });
  const b = await joinRoom(o.base, room, 'B', { wsOptions, token: tok('B') });
  try {
    assert.deepEqual(b.welcome.peers, ['A']);
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'B' });
    b.send({ type: 'offer', id: 'A', description: 'v=0' });
    assert.deepEqual(await a.next(), { type: 'offer', id: 'B', description: 'v=0' });
    a.send({ type: 'answer', id: 'B', description: 'v=0 answer' });
    assert.deepEqual(await b.next(), { type: 'answer', id: 'A', description: 'v=0 answer' });
    await b.close();
    assert.deepEqual(await a.next(), { type: 'peer-left', id: 'B', reason: 'closed' });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

if (o['jwt-secret']) {
  await check('a join without a token is refused (unauthorized, 4401)', async () => {
    const c = new SignalingClient(`${o.base}/rooms/auth-${tag}?peer=A`, { wsOptions });
    await c.opened;
    const err = await c.next();
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'unauthorized');
    await c.close();
    assert.equal(c.closeInfo.code, 4401);
  });
}

if (o['turn-secret']) {
  await check('welcome.iceServers carries TURN REST credentials for the configured secret', async () => {
    const room = `turn-${tag}`;
    const a = await joinRoom(o.base, room, 'A', { wsOptions, token: tokenFor(room)('A') });
    try {
      const turn = a.welcome.iceServers.find((s) => [].concat(s.urls).some((u) => u.startsWith('turn')));
      assert.ok(turn, JSON.stringify(a.welcome.iceServers));
      if (o['turn-uri']) assert.deepEqual([].concat(turn.urls), [o['turn-uri']]);
      assert.match(turn.username, /^\d+:A$/);
      assert.equal(turn.credential, createHmac('sha1', o['turn-secret']).update(turn.username).digest('base64'));
    } finally {
      await a.close();
    }
  });
}

if (o['expect-relay']) {
  await check('relay-only peers get relay candidates from the TURN server with the welcome credentials', async () => {
    const room = `alloc-${tag}`;
    const r = await dataChannelPair({
      baseUrl: o.base,
      room,
      iceTransportPolicy: 'relay',
      wsOptions,
      tokenFor: tokenFor(room),
      timeoutMs: 20000,
      expectFailure: true, // stop once gathering is complete: the allocation is what counts here
    });
    for (const side of [r.A, r.B]) {
      assert.ok(
        side.local.some((c) => / typ relay( |$)/.test(c)),
        `${side.name}: no relay candidate (allocation refused?): ${JSON.stringify(side)}`,
      );
    }
  });
}

await check('node-datachannel peers open a data channel signaled through the port', async () => {
  const room = `dc-${tag}`;
  const r = await dataChannelPair({
    baseUrl: o.base,
    room,
    // TURN URIs in the welcome may point at a coturn that is not running
    // here: this check is about signaling, so host candidates only.
    iceTransportPolicy: 'all',
    wsOptions,
    tokenFor: tokenFor(room),
    timeoutMs: 20000,
    stripTurn: true,
  });
  assert.equal(r.receivedByA, 'hello from B');
  assert.equal(r.receivedByB, 'hello from A');
});

cleanup();
console.log(failed === 0 ? 'container-check: all passed' : `container-check: ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
