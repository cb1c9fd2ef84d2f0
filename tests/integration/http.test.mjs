// HTTP endpoints: health, readiness, metrics, 426 and 404.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { uniq, useServer, waitFor } from './lib/harness.mjs';

const METRIC_NAMES = [
  'rendezvous_connections',
  'rendezvous_rooms',
  'rendezvous_joins_total',
  'rendezvous_leaves_total',
  'rendezvous_messages_relayed_total',
  'rendezvous_messages_dropped_total',
  'rendezvous_errors_total',
  'rendezvous_bytes_in_total',
  'rendezvous_bytes_out_total',
];

describe('HTTP endpoints', () => {
  const ctx = useServer([]);

  it('GET /healthz answers 200 "ok"', async () => {
    const res = await ctx.http('/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'ok');
  });

  it('GET /readyz answers 200 while accepting joins', async () => {
    const res = await ctx.http('/readyz');
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'ready');
  });

  it('GET /metrics is Prometheus text with every rendezvous metric name', async () => {
    const res = await ctx.http('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(String(res.headers['content-type']), /version=0\.0\.4/);
    for (const name of METRIC_NAMES) {
      // A sample line: name, optional labels, value.
      const re = new RegExp(`^${name}(\\{[^}]*\\})? [-+0-9.eEInfNa]+`, 'm');
      assert.match(res.body, re, `metric ${name} missing from /metrics`);
    }
  });

  it('metric values move: joins, leaves, relayed, errors, bytes, connections, rooms', async () => {
    const before = await ctx.metrics();
    const room = uniq('metrics');
    const a = await ctx.join(room, { peer: 'a' });
    const b = await ctx.join(room, { peer: 'b' });
    await a.nextOfType('peer-joined');

    const during = await ctx.metrics();
    assert.equal(during.sum('rendezvous_joins_total') - before.sum('rendezvous_joins_total'), 2, 'joins_total +2 after two joins');
    assert.ok(during.sum('rendezvous_connections') >= before.sum('rendezvous_connections') + 2, 'connections gauge counts the two peers');
    assert.equal(during.sum('rendezvous_rooms') - before.sum('rendezvous_rooms'), 1, 'rooms gauge +1');

    a.send({ type: 'offer', id: 'b', description: 'v=0' });
    await b.next();
    a.send({ type: 'offer', id: 'nobody', description: 'v=0' });
    const err = await a.next();
    assert.equal(err.type, 'error');

    const afterRelay = await ctx.metrics();
    assert.ok(afterRelay.sum('rendezvous_messages_relayed_total') > during.sum('rendezvous_messages_relayed_total'), 'messages_relayed_total increases');
    assert.ok(afterRelay.sum('rendezvous_errors_total') > during.sum('rendezvous_errors_total'), 'errors_total increases');
    assert.ok(afterRelay.sum('rendezvous_bytes_in_total') > during.sum('rendezvous_bytes_in_total'), 'bytes_in_total increases');
    assert.ok(afterRelay.sum('rendezvous_bytes_out_total') > during.sum('rendezvous_bytes_out_total'), 'bytes_out_total increases');

    await a.close();
    await b.nextOfType('peer-left');
    await b.close();
    const afterLeave = await waitFor(
      async () => {
        const m = await ctx.metrics();
        return m.sum('rendezvous_leaves_total') - before.sum('rendezvous_leaves_total') >= 2 ? m : false;
      },
      { what: 'leaves_total +2' },
    );
    assert.equal(afterLeave.sum('rendezvous_leaves_total') - before.sum('rendezvous_leaves_total'), 2);
    await waitFor(async () => (await ctx.metrics()).sum('rendezvous_rooms') === before.sum('rendezvous_rooms'), {
      what: 'rooms gauge back to its value before the test (empty room removed)',
    });
  });

  it('plain GET on a room path answers 426 Upgrade Required', async () => {
    const res = await ctx.http('/rooms/x');
    assert.equal(res.status, 426);
  });

  it('plain GET on a lobby path (single segment) answers 426', async () => {
    const res = await ctx.http('/some-peer');
    assert.equal(res.status, 426);
  });

  it('unknown paths answer 404: /a/b, /rooms/a/b, /no/such/file.js', async () => {
    for (const path of ['/a/b', '/rooms/a/b', '/no/such/file.js']) {
      const res = await ctx.http(path);
      assert.equal(res.status, 404, `GET ${path}`);
    }
  });

  it('the built-in demo page at / and the browser module at /rendezvous.js', async () => {
    const page = await ctx.http('/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /^text\/html/);
    assert.match(page.body, /<html/i);
    const index = await ctx.http('/index.html');
    assert.equal(index.body, page.body);
    const mod = await ctx.http('/rendezvous.js');
    assert.equal(mod.status, 200);
    assert.match(mod.headers['content-type'], /^text\/javascript/);
    assert.match(mod.body, /export/);
    // a WebSocket upgrade on the same single-segment path is still a lobby join
    const res = await ctx.http('/not-a-file');
    assert.equal(res.status, 426);
  });

  it('WebSocket upgrade on an unknown path is refused with 404 (no upgrade)', async () => {
    const res = await ctx.http('/a/b', {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    assert.equal(res.status, 404);
  });
});

describe('static files can be turned off (--web-root off)', () => {
  const ctx = useServer(['--web-root', 'off']);
  it('/ is 404 and /rendezvous.js is a lobby path (426)', async () => {
    assert.equal((await ctx.http('/')).status, 404);
    assert.equal((await ctx.http('/rendezvous.js')).status, 426);
  });
});
