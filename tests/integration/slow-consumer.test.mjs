// A peer that does not read is disconnected with 1008 once its outbound
// queue is over the bound; the sender is never blocked; the slow peer may
// resume.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { uniq, useServer, waitFor } from './lib/harness.mjs';

const OUT_MAX_MESSAGES = 8;
const OUT_MAX_BYTES = 256 * 1024;
const GRACE_MS = 5000;
const PAYLOAD = 60000; // under the default 64 KiB frame limit
// Loopback socket buffers (both ends) can absorb several MiB before the
// server's own queue grows; send far more than that.
const FLOOD = 600; // ~36 MB

for (const [label, limitArgs] of [
  [`--outbound-max-messages ${OUT_MAX_MESSAGES}`, ['--outbound-max-messages', String(OUT_MAX_MESSAGES)]],
  [`--outbound-max-bytes ${OUT_MAX_BYTES}`, ['--outbound-max-bytes', String(OUT_MAX_BYTES)]],
]) {
  describe(`slow consumer (${label})`, () => {
    const ctx = useServer([
      ...limitArgs,
      '--rate-limit-per-s', '0',
      '--reconnect-grace-ms', String(GRACE_MS),
    ]);

    it('a peer that stops reading is closed with 1008, the sender is never blocked, and the slow peer may resume', { timeout: 60000 }, async () => {
      const room = uniq('slow');
      const a = await ctx.join(room, { peer: 'A' });
      const b = await ctx.join(room, { peer: 'B' });
      assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'B' });
      const c = await ctx.join(room, { peer: 'C' });
      assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'C' });
      assert.deepEqual(await b.next(), { type: 'peer-joined', id: 'C' });
      const connectionsBefore = (await ctx.metrics()).sum('rendezvous_connections');

      b.pauseReading();
      const filler = 'x'.repeat(PAYLOAD);
      for (let i = 0; i < FLOOD; i += 1) a.send(`{"type":"offer","id":"B","seq":${i},"description":"${filler}"}`);

      // The sender keeps getting answers while the target is stuck: the
      // round trip must complete although ~36 MB are addressed to B. Frames of
      // one connection are handled in order, so when the pong arrives every
      // frame for B has been handled, and B's queue has gone over its bound.
      await a.expectQuiet(20000);
      await a.expectQuiet(); // held like a dropped connection: no peer-left for A
      // nor is anyone else slowed down
      a.send({ type: 'offer', id: 'C', description: 'to-c' });
      assert.deepEqual(await c.next(), { type: 'offer', id: 'A', description: 'to-c' });
      await c.expectQuiet();

      // Reading again, B sees what had reached its socket, then the 1008 close.
      b.resumeReading();
      const info = await b.waitClosed(10000);
      assert.equal(info.code, 1008, `slow consumer close: ${JSON.stringify(info)}`);
      let seq = -1;
      while (b.pending > 0) {
        const m = await b.next();
        assert.equal(m.id, 'A');
        assert.ok(m.seq > seq, 'what B got before the close is in order');
        seq = m.seq;
      }
      assert.ok(seq < FLOOD - 1, `B must not get the whole flood (got up to seq ${seq})`);

      await waitFor(async () => (await ctx.metrics()).sum('rendezvous_connections') < connectionsBefore, {
        what: 'slow consumer no longer counted as a connection',
      });
      const dropped = (await ctx.metrics()).sum('rendezvous_messages_dropped_total');
      assert.ok(dropped > 0, 'messages that could not be delivered to B are counted as dropped');
      await a.expectQuiet(); // still no peer-left: B's place is held

      // B may resume: held messages (if any) come first, in order, none seen twice; then the new one.
      const b2 = await ctx.join(room, { peer: 'B', resume: b.welcome.resume });
      assert.equal(b2.welcome.resumed, true);
      await a.expectQuiet();
      a.send({ type: 'offer', id: 'B', description: 'after' });
      for (;;) {
        const m = await b2.next(10000);
        assert.equal(m.type, 'offer');
        assert.equal(m.id, 'A');
        if (m.description === 'after') break;
        assert.ok(m.seq > seq, `held message seq ${m.seq} after seq ${seq}: out of order or delivered twice`);
        seq = m.seq;
      }
      await b2.expectQuiet();
    });
  });
}
