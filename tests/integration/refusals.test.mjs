// Join refusals: one error frame, then close 4000 + status.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectRefused } from './lib/client.mjs';
import { roomPath, uniq, useServer, waitFor } from './lib/harness.mjs';

describe('join refusals: names and ids', () => {
  const ctx = useServer([]);

  const badRooms = [
    ['a space', 'bad%20room'],
    ['65 characters', 'r'.repeat(65)],
    ['a non-ASCII letter', 'caf%C3%A9'],
    ['an encoded slash', 'a%2Fb'],
    ['a plus sign', 'a+b'],
    ['an at sign', 'a%40b'],
  ];
  for (const [name, raw] of badRooms) {
    it(`room name with ${name} -> bad-request, 4400`, async () => {
      const c = await ctx.connect(`/rooms/${raw}?peer=p`);
      await expectRefused(c, 'bad-request', 4400);
    });
  }

  const badPeers = [
    ['a space', 'a b'],
    ['65 characters', 'p'.repeat(65)],
    ['a non-ASCII letter', 'é'],
    ['a slash', 'a/b'],
    ['a colon', 'a:b'],
  ];
  for (const [name, peer] of badPeers) {
    it(`peer id with ${name} -> bad-request, 4400`, async () => {
      const c = await ctx.connect(roomPath(uniq('r'), { peer }));
      await expectRefused(c, 'bad-request', 4400);
    });
  }

  it('64-character names using every allowed character class are accepted', async () => {
    const room = `Rm09._~-${'r'.repeat(56)}`;
    const peer = `Pz90~_.-${'p'.repeat(56)}`;
    assert.equal(room.length, 64);
    assert.equal(peer.length, 64);
    const c = await ctx.join(room, { peer });
    assert.equal(c.welcome.room, room);
    assert.equal(c.welcome.id, peer);
  });

  it('names are percent-decoded before validation (%2D is "-")', async () => {
    const base = uniq('pct');
    const a = await ctx.connect(`/rooms/${base}%2Dx?peer=p%2Dq`);
    const w = await a.next();
    assert.equal(w.type, 'welcome');
    assert.equal(w.room, `${base}-x`);
    assert.equal(w.id, 'p-q');
    // the same room reached without encoding
    const b = await ctx.join(`${base}-x`, { peer: 'other' });
    assert.deepEqual(b.welcome.peers, ['p-q']);
  });

  it('id already connected in the room -> id-taken, 4409; the first connection is unaffected', async () => {
    const room = uniq('taken');
    const a = await ctx.join(room, { peer: 'A' });
    const dup = await ctx.connect(roomPath(room, { peer: 'A' }));
    await expectRefused(dup, 'id-taken', 4409);
    await a.expectQuiet(); // no peer-joined / peer-left for the refused join
    const b = await ctx.join(room, { peer: 'B' });
    b.send({ type: 'offer', id: 'A', description: 'x' });
    assert.equal((await a.nextOfType('offer')).id, 'B');
  });
});

describe('join refusals: room full (--max-peers-per-room 2)', () => {
  const ctx = useServer(['--max-peers-per-room', '2']);

  it('third peer -> room-full, 4429; the two inside see nothing; other rooms still work', async () => {
    const room = uniq('full');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const c = await ctx.connect(roomPath(room, { peer: 'C' }));
    await expectRefused(c, 'room-full', 4429);
    await a.expectQuiet();
    await b.expectQuiet();
    const other = await ctx.join(uniq('full'), { peer: 'C' });
    assert.deepEqual(other.welcome.peers, []);
  });

  it('after a peer leaves, the room has space again', async () => {
    const room = uniq('full');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    await b.close();
    await a.nextOfType('peer-left');
    const c = await ctx.join(room, { peer: 'C' });
    assert.deepEqual(c.welcome.peers, ['A']);
  });

  it('a held place (dropped connection) still counts toward the room size', async () => {
    const room = uniq('full');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const before = (await ctx.metrics()).sum('rendezvous_connections');
    b.terminate();
    await waitFor(async () => (await ctx.metrics()).sum('rendezvous_connections') < before, { what: 'server saw the drop' });
    const c = await ctx.connect(roomPath(room, { peer: 'C' }));
    await expectRefused(c, 'room-full', 4429);
  });
});

describe('join refusals: max rooms (--max-rooms 1)', () => {
  const ctx = useServer(['--max-rooms', '1']);

  it('a join that would create a second room -> unavailable, 4503; joining the existing room works', async () => {
    const room1 = uniq('one');
    const a = await ctx.join(room1, { peer: 'A' });
    const c = await ctx.connect(roomPath(uniq('two'), { peer: 'C' }));
    await expectRefused(c, 'unavailable', 4503);
    const b = await ctx.join(room1, { peer: 'B' });
    assert.deepEqual(b.welcome.peers, ['A']);
    // the lobby is not a room
    const l = await ctx.lobby(uniq('L'));
    await l.expectQuiet();
    await a.close();
    await b.close();
    // once the room is empty it is removed, and another can be created
    await waitFor(async () => (await ctx.metrics()).sum('rendezvous_rooms') === 0, { what: 'empty room removed' });
    const d = await ctx.join(uniq('three'), { peer: 'D' });
    assert.deepEqual(d.welcome.peers, []);
  });
});

describe('join refusals: max connections (--max-connections 2)', () => {
  const ctx = useServer(['--max-connections', '2']);

  it('a connection over the limit -> unavailable, 4503 (after the upgrade); /readyz 503 while at max', async () => {
    const room = uniq('conn');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const c = await ctx.connect(roomPath(room, { peer: 'C' }));
    await expectRefused(c, 'unavailable', 4503);
    const l = await ctx.connect(`/${uniq('L')}`);
    await expectRefused(l, 'unavailable', 4503);
    await a.expectQuiet();
    await b.expectQuiet();

    const ready = await ctx.http('/readyz');
    assert.equal(ready.status, 503, '/readyz while connections are at max');
    assert.match(ready.body, /over capacity/);
    const health = await ctx.http('/healthz');
    assert.equal(health.status, 200, '/healthz still 200 at capacity');

    await b.close();
    await a.nextOfType('peer-left');
    await waitFor(async () => (await ctx.http('/readyz')).status === 200, { what: '/readyz 200 again below max' });
    const c2 = await ctx.join(room, { peer: 'C' });
    assert.deepEqual(c2.welcome.peers, ['A']);
  });
});
