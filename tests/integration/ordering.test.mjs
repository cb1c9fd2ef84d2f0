// FIFO per (sender, target) pair, exactly once, over thousands of messages.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { uniq, useServer } from './lib/harness.mjs';

const N = 5000;

describe('ordering (--rate-limit-per-s 0)', () => {
  // Rate limit off for the flood; outbound queue large so that a briefly
  // slower reader is not mistaken for a slow consumer.
  const ctx = useServer(['--rate-limit-per-s', '0', '--outbound-max-messages', '100000', '--outbound-max-bytes', String(64 * 1024 * 1024)]);

  it(`${N} messages from one sender arrive in order, exactly once`, { timeout: 60000 }, async () => {
    const room = uniq('fifo');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    for (let i = 0; i < N; i += 1) {
      a.send(`{"type":"candidate","id":"B","seq":${i},"candidate":"candidate:${i} 1 UDP 1 127.0.0.1 ${1000 + (i % 60000)} typ host","mid":"0"}`);
    }
    for (let i = 0; i < N; i += 1) {
      const m = await b.next(10000);
      assert.equal(m.id, 'A');
      assert.equal(m.seq, i, `message ${i} out of order: got seq ${m.seq}`);
    }
    await b.expectQuiet();
    await a.expectQuiet();
  });

  it('two concurrent senders to one target: each stream in order, none lost or duplicated', { timeout: 60000 }, async () => {
    const room = uniq('fifo2');
    const a = await ctx.join(room, { peer: 'A' });
    const c = await ctx.join(room, { peer: 'C' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    await c.nextOfType('peer-joined');
    const half = N / 2;
    // interleave the sends so both streams are in flight at the same time
    for (let i = 0; i < half; i += 1) {
      a.send(`{"type":"candidate","id":"B","seq":${i}}`);
      c.send(`{"type":"candidate","id":"B","seq":${i}}`);
    }
    const nextSeq = { A: 0, C: 0 };
    for (let i = 0; i < 2 * half; i += 1) {
      const m = await b.next(10000);
      assert.ok(m.id === 'A' || m.id === 'C', `unexpected sender ${JSON.stringify(m)}`);
      assert.equal(m.seq, nextSeq[m.id], `stream from ${m.id} out of order`);
      nextSeq[m.id] += 1;
    }
    assert.deepEqual(nextSeq, { A: half, C: half });
    await b.expectQuiet();
  });

  it('broadcast and direct messages from one sender keep their relative order at each target', { timeout: 30000 }, async () => {
    const room = uniq('fifo3');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    for (let i = 0; i < 1000; i += 1) {
      if (i % 2 === 0) a.send(`{"type":"x","id":"B","seq":${i}}`);
      else a.send(`{"type":"x","seq":${i}}`);
    }
    for (let i = 0; i < 1000; i += 1) {
      const m = await b.next(10000);
      assert.equal(m.seq, i);
      assert.equal(m.id, 'A');
    }
  });
});

describe('back-pressure on a fast sender (--rate-limit-per-s 0 --outbound-max-messages 8)', () => {
  const ctx = useServer(['--rate-limit-per-s', '0', '--outbound-max-messages', '8']);

  it('2000 pings sent at once all get their pong, in order: the sender is slowed, not closed as a slow reader', async () => {
    const a = await ctx.join(uniq('bp'), { peer: 'A' });
    const n = 2000;
    for (let i = 0; i < n; i++) a.send({ type: 'ping', t: i });
    for (let i = 0; i < n; i++) {
      const m = await a.next();
      assert.deepEqual(m, { type: 'pong', t: i });
    }
    assert.equal(a.closeInfo, null);
  });
});
