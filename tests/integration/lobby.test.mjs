// libdatachannel mode (/{id}) and isolation between rooms and the lobby.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectErrorFrame, expectRefused } from './lib/client.mjs';
import { uniq, useServer, waitFor } from './lib/harness.mjs';

async function dropped(ctx, reason) {
  const m = await ctx.metrics();
  return reason === undefined
    ? m.sum('rendezvous_messages_dropped_total')
    : m.sum('rendezvous_messages_dropped_total', { reason });
}

describe('lobby mode', () => {
  // A long grace: a dropped lobby connection must not use it (no resume in the lobby).
  const ctx = useServer(['--reconnect-grace-ms', '20000']);

  it('no welcome, no events: the first frame a lobby peer gets is what it asked for', async () => {
    const x = await ctx.lobby(uniq('x'));
    await x.expectQuiet();
    const y = await ctx.lobby(uniq('y'));
    await y.expectQuiet();
    await x.expectQuiet(); // no peer-joined for y
    await y.close();
    await x.expectQuiet(); // no peer-left for y
  });

  it('relay between lobby peers with id rewritten to the sender, bytes otherwise identical', async () => {
    const xid = uniq('x');
    const yid = uniq('y');
    const x = await ctx.lobby(xid);
    const y = await ctx.lobby(yid);
    const sent = `{ "type":"offer",  "id":"${yid}", "description":"v=0\\r\\n", "seed":0.30000000000000004 }`;
    x.send(sent);
    const raw = await y.nextRaw();
    assert.equal(raw.replace(new RegExp(`"id"\\s*:\\s*"${xid}"`), `"id":"${yid}"`), sent);
    y.send({ type: 'answer', id: xid, description: 'a' });
    assert.deepEqual(await x.next(), { type: 'answer', id: yid, description: 'a' });
    await x.expectQuiet();
  });

  it('a message to an unknown id is dropped silently and counted', async () => {
    const x = await ctx.lobby(uniq('x'));
    const before = await dropped(ctx);
    const beforeReason = await dropped(ctx, 'unknown-target');
    x.send({ type: 'offer', id: uniq('nobody'), description: 'x' });
    await x.expectQuiet(); // no reply, and the round trip proves the frame was handled
    const after = await dropped(ctx);
    assert.equal(after - before, 1, 'rendezvous_messages_dropped_total +1');
    const afterReason = await dropped(ctx, 'unknown-target');
    assert.equal(afterReason - beforeReason, 1, 'dropped{reason="unknown-target"} +1');
  });

  it('a message without id is dropped (no broadcast in the lobby) and counted', async () => {
    const x = await ctx.lobby(uniq('x'));
    const y = await ctx.lobby(uniq('y'));
    const before = await dropped(ctx, 'no-target');
    x.send({ type: 'offer', description: 'x' });
    await x.expectQuiet();
    await y.expectQuiet();
    assert.equal((await dropped(ctx, 'no-target')) - before, 1, 'dropped{reason="no-target"} +1');
  });

  it('an id already connected in the lobby is refused: id-taken, 4409; the first keeps working', async () => {
    const id = uniq('dup');
    const x = await ctx.lobby(id);
    const dup = await ctx.lobby(id);
    await expectRefused(dup, 'id-taken', 4409);
    await x.expectQuiet();
    const y = await ctx.lobby(uniq('y'));
    y.send({ type: 'offer', id, description: 'still-you' });
    assert.equal((await x.next()).description, 'still-you');
  });

  for (const [name, path] of [
    ['a space', '/bad%20id'],
    ['65 characters', `/${'a'.repeat(65)}`],
    ['a non-ASCII letter', '/caf%C3%A9'],
    ['an encoded slash', '/a%2Fb'],
  ]) {
    it(`a lobby id with ${name} is refused: bad-request, 4400`, async () => {
      const c = await ctx.connect(path);
      await expectRefused(c, 'bad-request', 4400);
    });
  }

  it('a 64-character lobby id with every allowed character class is accepted', async () => {
    const id = `Az09._~-${'q'.repeat(56)}`;
    assert.equal(id.length, 64);
    const x = await ctx.lobby(id);
    const yid = uniq('y');
    const y = await ctx.lobby(yid);
    y.send({ type: 'offer', id, description: 'x' });
    assert.deepEqual(await x.next(), { type: 'offer', id: yid, description: 'x' });
  });

  it('a dropped lobby connection leaves at once (no grace): the id can be taken again', async () => {
    const id = uniq('drop');
    const x = await ctx.lobby(id);
    x.terminate();
    // The server learns of the drop asynchronously; retry the join until it is
    // accepted. The grace is 20 s, so success within 3 s proves no place is held.
    const started = Date.now();
    const x2 = await waitFor(
      async () => {
        const c = await ctx.lobby(id);
        const r = await Promise.race([
          c.expectQuiet().then(() => c),
          c.closed.then(() => null),
        ]).catch(() => null);
        if (!r) {
          await c.close().catch(() => {});
          return false;
        }
        return r;
      },
      { timeoutMs: 3000, intervalMs: 50, what: 'lobby id free again after a drop' },
    );
    assert.ok(Date.now() - started < 3000);
    await x2.expectQuiet();
  });

  it('ping/pong and reserved types work in the lobby too', async () => {
    const x = await ctx.lobby(uniq('x'));
    x.send('{"type":"ping","t":123.456e2}');
    const raw = await x.nextRaw();
    assert.match(raw, /"t"\s*:\s*123\.456e2\s*[,}]/);
    x.send({ type: 'welcome', id: 'someone' });
    await expectErrorFrame(x, 'reserved-type');
  });
});

describe('isolation between rooms and between rooms and the lobby', () => {
  const ctx = useServer([]);

  it('same peer ids in two rooms: direct messages, broadcasts and events never cross', async () => {
    const r1 = uniq('iso1');
    const r2 = uniq('iso2');
    const a1 = await ctx.join(r1, { peer: 'A' });
    const b1 = await ctx.join(r1, { peer: 'B' });
    const a2 = await ctx.join(r2, { peer: 'A' });
    assert.deepEqual(a2.welcome.peers, [], 'room 2 does not list room 1 peers');
    const b2 = await ctx.join(r2, { peer: 'B' });
    assert.deepEqual(b2.welcome.peers, ['A']);
    assert.deepEqual(await a1.next(), { type: 'peer-joined', id: 'B' });
    assert.deepEqual(await a2.next(), { type: 'peer-joined', id: 'B' });

    a1.send({ type: 'offer', id: 'B', description: 'room1' });
    assert.deepEqual(await b1.next(), { type: 'offer', id: 'A', description: 'room1' });
    a2.send({ type: 'offer', id: 'B', description: 'room2' });
    assert.deepEqual(await b2.next(), { type: 'offer', id: 'A', description: 'room2' });
    a1.send({ type: 'hello', n: 1 });
    assert.deepEqual(await b1.next(), { id: 'A', type: 'hello', n: 1 });
    await b1.close();
    assert.deepEqual(await a1.next(), { type: 'peer-left', id: 'B', reason: 'closed' });

    for (const c of [a1, a2, b2]) await c.expectQuiet();
  });

  it('a peer in another room is unreachable: peer-not-found', async () => {
    const r1 = uniq('iso1');
    const r2 = uniq('iso2');
    const a = await ctx.join(r1, { peer: 'A' });
    const c = await ctx.join(r2, { peer: 'C' });
    a.send({ type: 'offer', id: 'C', description: 'x' });
    await expectErrorFrame(a, 'peer-not-found', { id: 'C' });
    await c.expectQuiet();
  });

  it('lobby and rooms cannot reach each other', async () => {
    const lobbyId = uniq('L');
    const room = uniq('iso');
    const r = await ctx.join(room, { peer: 'R' });
    const l = await ctx.lobby(lobbyId);
    // room -> lobby id: not in the room
    r.send({ type: 'offer', id: lobbyId, description: 'x' });
    await expectErrorFrame(r, 'peer-not-found', { id: lobbyId });
    // lobby -> room peer id: unknown in the lobby, dropped silently
    const before = await dropped(ctx);
    l.send({ type: 'offer', id: 'R', description: 'x' });
    await l.expectQuiet();
    await r.expectQuiet();
    assert.equal((await dropped(ctx)) - before, 1);
    // a room broadcast does not reach the lobby, and lobby peers are not room peers
    const r2 = await ctx.join(room, { peer: 'R2' });
    assert.deepEqual(r2.welcome.peers, ['R']);
    assert.deepEqual(await r.next(), { type: 'peer-joined', id: 'R2' });
    r.send({ type: 'hello' });
    assert.deepEqual(await r2.next(), { id: 'R', type: 'hello' });
    await l.expectQuiet();
  });

  it('the same name as a lobby id and as a room peer id coexist', async () => {
    const id = uniq('same');
    const room = uniq('iso');
    const l = await ctx.lobby(id);
    const r = await ctx.join(room, { peer: id });
    assert.equal(r.welcome.id, id);
    const l2 = await ctx.lobby(uniq('o'));
    l2.send({ type: 'offer', id, description: 'to-lobby' });
    assert.equal((await l.next()).description, 'to-lobby');
    await r.expectQuiet();
  });
});
