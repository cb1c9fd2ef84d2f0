// Reconnect and resume (PROTOCOL section 5): held places, held messages,
// tokens, half-open replacement, grace expiry.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectRefused } from './lib/client.mjs';
import { roomPath, uniq, useServer, waitFor } from './lib/harness.mjs';

const GRACE_MS = 2000; // long enough to reconnect in, short enough to keep the suite quick
const SHORT_GRACE_MS = 500;

/** Drops `client` without a close frame and waits until the server has seen it. */
async function dropAndWait(ctx, client) {
  const before = (await ctx.metrics()).sum('rendezvous_connections');
  client.terminate();
  await client.closed;
  await waitFor(async () => (await ctx.metrics()).sum('rendezvous_connections') < before, {
    what: 'rendezvous_connections to go down after terminate()',
  });
}

async function pair(ctx) {
  const room = uniq('resume');
  const a = await ctx.join(room, { peer: 'A' });
  const b = await ctx.join(room, { peer: 'B' });
  assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'B' });
  return { room, a, b };
}

describe(`resume (--reconnect-grace-ms ${GRACE_MS})`, () => {
  const ctx = useServer(['--reconnect-grace-ms', String(GRACE_MS), '--held-max-messages', '4']);

  it('dropped peer resumes: welcome resumed:true, fresh token, then the held messages in order; others see no events', async () => {
    const { room, a, b } = await pair(ctx);
    const token = a.welcome.resume;
    await dropAndWait(ctx, a);

    const sent = [
      '{"type":"offer","id":"A","description":"v=0 1"}',
      '{ "type":"candidate", "id":"A", "candidate":"c2", "mid":"0" }',
      '{"type":"role","id":"A","seed":0.30000000000000004}',
    ];
    for (const s of sent) b.send(s);
    await b.expectQuiet(); // no error for messages to a held peer, no peer-left

    const a2 = await ctx.join(room, { peer: 'A', resume: token });
    const w = a2.welcome;
    assert.equal(w.resumed, true);
    assert.equal(w.id, 'A');
    assert.equal(w.room, room);
    assert.deepEqual(w.peers, ['B']);
    assert.equal(typeof w.resume, 'string');
    assert.notEqual(w.resume, token, 'a resume gets a fresh token');
    assert.ok(Array.isArray(w.iceServers));
    for (const s of sent) {
      const raw = await a2.nextRaw();
      assert.equal(raw, s.replace(/"id":\s*"A"/, (m) => m.replace('"A"', '"B"')), 'held message relayed in order with id = sender');
    }
    await a2.expectQuiet();
    await b.expectQuiet(); // no peer-left / peer-joined around the resume

    // the connection works as before, both ways
    a2.send({ type: 'answer', id: 'B', description: 'back' });
    assert.deepEqual(await b.next(), { type: 'answer', id: 'A', description: 'back' });
    b.send({ type: 'bye', id: 'A' });
    assert.deepEqual(await a2.next(), { type: 'bye', id: 'B' });
  });

  it('a used token stops working; the token of the latest welcome works', async () => {
    const { room, a, b } = await pair(ctx);
    const token1 = a.welcome.resume;
    await dropAndWait(ctx, a);
    const a2 = await ctx.join(room, { peer: 'A', resume: token1 });
    assert.equal(a2.welcome.resumed, true);
    const token2 = a2.welcome.resume;

    await dropAndWait(ctx, a2);
    const stale = await ctx.connect(roomPath(room, { peer: 'A', resume: token1 }));
    await expectRefused(stale, 'id-taken', 4409);
    await b.expectQuiet();

    const a3 = await ctx.join(room, { peer: 'A', resume: token2 });
    assert.equal(a3.welcome.resumed, true);
    await b.expectQuiet();
  });

  it('a wrong token for a held id -> id-taken, 4409, and the place stays resumable', async () => {
    const { room, a, b } = await pair(ctx);
    const token = a.welcome.resume;
    await dropAndWait(ctx, a);
    const bad = await ctx.connect(roomPath(room, { peer: 'A', resume: `${token}x` }));
    await expectRefused(bad, 'id-taken', 4409);
    const noToken = await ctx.connect(roomPath(room, { peer: 'A' }));
    await expectRefused(noToken, 'id-taken', 4409);
    await b.expectQuiet();
    const a2 = await ctx.join(room, { peer: 'A', resume: token });
    assert.equal(a2.welcome.resumed, true);
  });

  it("another peer's token does not resume a place", async () => {
    const { room, a, b } = await pair(ctx);
    await dropAndWait(ctx, a);
    const wrong = await ctx.connect(roomPath(room, { peer: 'A', resume: b.welcome.resume }));
    await expectRefused(wrong, 'id-taken', 4409);
    await b.expectQuiet();
  });

  it('a token for an id that is not held: plain fresh join (welcome without resumed)', async () => {
    const room = uniq('resume');
    const a = await ctx.join(room, { peer: 'A', resume: 'no-such-token' });
    assert.notEqual(a.welcome.resumed, true);
    assert.deepEqual(a.welcome.peers, []);
  });

  it("a token used with another peer id does not resume: plain fresh join of that id; the held place stays", async () => {
    const { room, a, b } = await pair(ctx);
    await dropAndWait(ctx, a);
    const z = await ctx.join(room, { peer: 'Z', resume: a.welcome.resume });
    assert.notEqual(z.welcome.resumed, true);
    assert.equal(z.welcome.id, 'Z');
    assert.deepEqual(z.welcome.peers, ['A', 'B'], 'the held A is still a member');
    assert.deepEqual(await b.next(), { type: 'peer-joined', id: 'Z' });
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.equal(a2.welcome.resumed, true);
    await b.expectQuiet();
  });

  it('after a clean close the token no longer resumes: the rejoin is fresh and others see closed/joined', async () => {
    const { room, a, b } = await pair(ctx);
    const token = a.welcome.resume;
    await a.close();
    assert.deepEqual(await b.next(), { type: 'peer-left', id: 'A', reason: 'closed' });
    const a2 = await ctx.join(room, { peer: 'A', resume: token });
    assert.notEqual(a2.welcome.resumed, true);
    assert.deepEqual(await b.next(), { type: 'peer-joined', id: 'A' });
  });

  it('half-open replacement: a new connection with a valid token replaces the old (closed 4409); others see nothing', async () => {
    const { room, a, b } = await pair(ctx);
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.equal(a2.welcome.resumed, true);
    assert.deepEqual(a2.welcome.peers, ['B']);
    const info = await a.waitClosed();
    assert.equal(info.code, 4409, `old connection close: ${JSON.stringify(info)}`);
    await b.expectQuiet();
    b.send({ type: 'offer', id: 'A', description: 'to-new' });
    assert.deepEqual(await a2.next(), { type: 'offer', id: 'B', description: 'to-new' });
    a2.send({ type: 'answer', id: 'B', description: 'from-new' });
    assert.deepEqual(await b.next(), { type: 'answer', id: 'A', description: 'from-new' });
  });

  it('held messages are bounded (--held-max-messages 4): the oldest are dropped and counted', async () => {
    const { room, a, b } = await pair(ctx);
    await dropAndWait(ctx, a);
    const before = (await ctx.metrics()).sum('rendezvous_messages_dropped_total');
    for (let i = 0; i < 7; i += 1) b.send(`{"type":"candidate","id":"A","seq":${i}}`);
    await b.expectQuiet();
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.equal(a2.welcome.resumed, true);
    for (const seq of [3, 4, 5, 6]) assert.deepEqual(await a2.next(), { type: 'candidate', id: 'B', seq });
    await a2.expectQuiet();
    const after = (await ctx.metrics()).sum('rendezvous_messages_dropped_total');
    assert.equal(after - before, 3, 'three held messages dropped and counted');
  });

  it('broadcasts while a peer is held are held for it too', async () => {
    const room = uniq('resume');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    const c = await ctx.join(room, { peer: 'C' });
    await a.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    await b.nextOfType('peer-joined');
    await dropAndWait(ctx, a);
    b.send({ type: 'hello', n: 1 });
    assert.deepEqual(await c.next(), { id: 'B', type: 'hello', n: 1 });
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.deepEqual(a2.welcome.peers, ['B', 'C']);
    assert.deepEqual(await a2.next(), { id: 'B', type: 'hello', n: 1 });
  });
});

describe('held bytes bound (--held-max-bytes 450)', () => {
  const ctx = useServer(['--reconnect-grace-ms', String(GRACE_MS), '--held-max-bytes', '450']);

  it('held messages beyond the byte bound: the oldest are dropped', async () => {
    const { room, a, b } = await pair(ctx);
    await dropAndWait(ctx, a);
    const frame = (seq) => {
      const head = `{"type":"candidate","id":"A","seq":${seq},"pad":"`;
      return `${head}${'p'.repeat(200 - head.length - 2)}"}`;
    };
    for (let i = 0; i < 3; i += 1) {
      assert.equal(frame(i).length, 200);
      b.send(frame(i));
    }
    await b.expectQuiet();
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.equal(a2.welcome.resumed, true);
    assert.equal((await a2.next()).seq, 1, 'the oldest (seq 0) is dropped, 400 of 600 bytes fit');
    assert.equal((await a2.next()).seq, 2);
    await a2.expectQuiet();
  });
});

describe(`grace expiry (--reconnect-grace-ms ${SHORT_GRACE_MS})`, () => {
  const ctx = useServer(['--reconnect-grace-ms', String(SHORT_GRACE_MS)]);

  it('a dropped peer is held for the grace, then others get peer-left "timeout"', async () => {
    const { room, a, b } = await pair(ctx);
    const started = Date.now();
    a.terminate();
    const left = await b.next(SHORT_GRACE_MS + 3000);
    const elapsed = Date.now() - started;
    assert.deepEqual(left, { type: 'peer-left', id: 'A', reason: 'timeout' });
    assert.ok(elapsed >= SHORT_GRACE_MS - 50, `peer-left after ${elapsed} ms, before the ${SHORT_GRACE_MS} ms grace`);

    // the place is free: the old token does not resume, the id joins fresh
    const a2 = await ctx.join(room, { peer: 'A', resume: a.welcome.resume });
    assert.notEqual(a2.welcome.resumed, true);
    assert.deepEqual(a2.welcome.peers, ['B']);
    assert.deepEqual(await b.next(), { type: 'peer-joined', id: 'A' });
  });

  it('messages held for a peer that never comes back are dropped with it; the sender gets peer-not-found afterwards', async () => {
    const { a, b } = await pair(ctx);
    a.terminate();
    b.send({ type: 'offer', id: 'A', description: 'held' });
    assert.deepEqual(await b.next(SHORT_GRACE_MS + 3000), { type: 'peer-left', id: 'A', reason: 'timeout' });
    b.send({ type: 'offer', id: 'A', description: 'late' });
    const err = await b.next();
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'peer-not-found');
    assert.equal(err.id, 'A');
  });
});

describe('grace 0 (--reconnect-grace-ms 0)', () => {
  const ctx = useServer(['--reconnect-grace-ms', '0']);

  it('a dropped peer leaves at once with reason "timeout"', async () => {
    const { b, a } = await pair(ctx);
    a.terminate();
    assert.deepEqual(await b.next(), { type: 'peer-left', id: 'A', reason: 'timeout' });
  });
});
