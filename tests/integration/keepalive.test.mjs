// Liveness: handshake timeout for idle TCP connections, WebSocket keepalive
// pings, and the place held for a peer that stopped answering.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { uniq, useServer, withDeadline } from './lib/harness.mjs';

const HANDSHAKE_MS = 300;
const PING_MS = 200;
const GRACE_MS = 500;

function socketClosed(sock) {
  return new Promise((resolve) => {
    if (sock.destroyed) resolve();
    sock.once('close', resolve);
  });
}

describe(`handshake timeout (--handshake-timeout-ms ${HANDSHAKE_MS})`, () => {
  const ctx = useServer(['--handshake-timeout-ms', String(HANDSHAKE_MS)]);

  it('a TCP connection that sends nothing is closed within the timeout', async () => {
    const started = Date.now();
    const sock = await ctx.rawSocket();
    sock.resume();
    await withDeadline(socketClosed(sock), HANDSHAKE_MS + 2000, 'idle TCP connection closed by the server');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= HANDSHAKE_MS - 50, `closed after ${elapsed} ms: too early for a ${HANDSHAKE_MS} ms timeout`);
  });

  it('a connection stuck in the middle of its HTTP request is closed too', async () => {
    const sock = await ctx.rawSocket();
    sock.resume();
    sock.write('GET /rooms/slow?peer=p HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await withDeadline(socketClosed(sock), HANDSHAKE_MS + 2000, 'half-sent request closed by the server');
  });

  it('a completed WebSocket handshake is not subject to the handshake timeout', async () => {
    // Open a WebSocket and an idle TCP connection at the same moment; once the
    // idle one has been closed by the timer, the WebSocket must still be open.
    const sock = await ctx.rawSocket();
    sock.resume();
    const ws = await ctx.join(uniq('hs'), { peer: 'A' });
    await withDeadline(socketClosed(sock), HANDSHAKE_MS + 2000, 'idle TCP connection closed');
    assert.equal(ws.closeInfo, null);
    await ws.expectQuiet();
  });

  it('the server keeps serving after idle connections are dropped', async () => {
    const socks = await Promise.all([ctx.rawSocket(), ctx.rawSocket(), ctx.rawSocket()]);
    for (const s of socks) s.resume();
    await withDeadline(Promise.all(socks.map(socketClosed)), HANDSHAKE_MS + 2000, 'idle connections closed');
    const res = await ctx.http('/healthz');
    assert.equal(res.status, 200);
  });
});

describe(`keepalive (--ping-interval-ms ${PING_MS} --reconnect-grace-ms ${GRACE_MS})`, () => {
  const ctx = useServer(['--ping-interval-ms', String(PING_MS), '--reconnect-grace-ms', String(GRACE_MS)]);

  it('the server sends WebSocket pings; a client that answers them stays connected while idle', async () => {
    const room = uniq('ka');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    // 5 ping intervals without a single frame from the client side: well past 2x the interval.
    await a.waitForPings(5, PING_MS * 5 + 3000);
    await b.waitForPings(5, PING_MS * 5 + 3000);
    assert.equal(a.closeInfo, null);
    await a.expectQuiet();
    await b.expectQuiet();
  });

  it('a client that does not answer pings is dropped after ~2x the interval; its place is held, then peer-left timeout', async () => {
    const room = uniq('ka');
    const a = await ctx.join(room, { peer: 'A', autoPong: false });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const started = Date.now();
    // A sends nothing from now on, and answers no ping.
    await a.waitClosed(PING_MS * 2 + 3000);
    const droppedAfter = Date.now() - started;
    assert.ok(droppedAfter >= PING_MS, `dropped after ${droppedAfter} ms, earlier than one ping interval`);
    // held: B gets no peer-left until the grace has passed
    const left = await b.next(GRACE_MS + 3000);
    const leftAfter = Date.now() - started;
    assert.deepEqual(left, { type: 'peer-left', id: 'A', reason: 'timeout' });
    assert.ok(leftAfter - droppedAfter >= GRACE_MS - 100, `peer-left ${leftAfter - droppedAfter} ms after the drop, grace is ${GRACE_MS} ms`);
  });

  it('a peer dropped by keepalive can resume within the grace', async () => {
    const room = uniq('ka');
    const a = await ctx.join(room, { peer: 'A', autoPong: false });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    await a.waitClosed(PING_MS * 2 + 3000);
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.equal(a2.welcome.resumed, true);
    await b.expectQuiet();
  });
});
