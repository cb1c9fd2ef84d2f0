// Frame rules: bad messages keep the connection usable; oversized frames
// close with 1009; the rate limit answers rate-limited then closes 4429.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectErrorFrame } from './lib/client.mjs';
import { uniq, useServer } from './lib/harness.mjs';

const MAX_BYTES = 1024;

describe('bad messages: error bad-message, connection stays usable', () => {
  const ctx = useServer([]);

  const cases = [
    ['invalid JSON', '{"type":"offer",'],
    ['garbage text', 'hello'],
    ['empty text frame', ''],
    ['JSON array', '[{"type":"offer"}]'],
    ['JSON number', '42'],
    ['JSON string', '"offer"'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['object without type', '{"id":"B","description":"x"}'],
    ['numeric type', '{"type":5,"id":"B"}'],
    ['null type', '{"type":null,"id":"B"}'],
    ['object type', '{"type":{"a":1},"id":"B"}'],
    ['numeric id', '{"type":"offer","id":5}'],
    ['null id', '{"type":"offer","id":null}'],
    ['array id', '{"type":"offer","id":["B"]}'],
    ['object id', '{"type":"offer","id":{"B":1}}'],
    ['duplicate type', '{"type":"offer","type":"offer","id":"B"}'],
    ['duplicate id', '{"type":"offer","id":"B","id":"B"}'],
    ['trailing garbage', '{"type":"offer","id":"B"} x'],
    ['two objects', '{"type":"offer","id":"B"}{"type":"offer","id":"B"}'],
    ['nesting deeper than 64', `{"type":"offer","id":"B","d":${'['.repeat(70)}${']'.repeat(70)}}`],
  ];

  for (const [name, frame] of cases) {
    it(`${name} -> bad-message, nothing relayed, ping still answered`, async () => {
      const room = uniq('bad');
      const a = await ctx.join(room, { peer: 'A' });
      const b = await ctx.join(room, { peer: 'B' });
      await a.nextOfType('peer-joined');
      a.send(frame);
      await expectErrorFrame(a, 'bad-message');
      await a.expectQuiet();
      await b.expectQuiet();
      // and it still relays
      a.send({ type: 'offer', id: 'B', description: 'after' });
      assert.deepEqual(await b.next(), { type: 'offer', id: 'A', description: 'after' });
    });
  }

  it('nesting of exactly 64 levels is accepted and relayed', async () => {
    const room = uniq('nest');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    // the envelope object is level 1; 63 arrays inside make 64
    const frame = `{"type":"x","id":"B","d":${'['.repeat(63)}${']'.repeat(63)}}`;
    a.send(frame);
    assert.equal(await b.nextRaw(), frame.replace('"id":"B"', '"id":"A"'));
  });

  it('binary frame -> bad-message, connection stays usable', async () => {
    const room = uniq('bin');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    a.sendBinary(Buffer.from('{"type":"offer","id":"B"}'));
    await expectErrorFrame(a, 'bad-message');
    await a.expectQuiet();
    await b.expectQuiet();
  });

  it('invalid UTF-8 in a text frame -> close 1007 (RFC 6455 8.1); others see peer-left kicked', async () => {
    const room = uniq('utf8');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const bytes = Buffer.concat([Buffer.from('{"type":"offer","id":"B","d":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
    a.sendTextBytes(bytes);
    const info = await a.waitClosed();
    assert.equal(info.code, 1007);
    assert.deepEqual(await b.next(), { type: 'peer-left', id: 'A', reason: 'kicked' });
  });

  it('bad messages in the lobby get bad-message too', async () => {
    const x = await ctx.lobby(uniq('lx'));
    x.send('not json');
    await expectErrorFrame(x, 'bad-message');
    x.send('{"id":"y"}');
    await expectErrorFrame(x, 'bad-message');
    await x.expectQuiet();
  });
});

describe('message size limit (--max-message-bytes 1024)', () => {
  const ctx = useServer(['--max-message-bytes', String(MAX_BYTES), '--rate-limit-per-s', '0']);

  function frameOfSize(size, id = 'B') {
    const head = `{"type":"offer","id":"${id}","description":"`;
    const tail = '"}';
    const pad = size - head.length - tail.length;
    assert.ok(pad >= 0);
    const f = head + 'x'.repeat(pad) + tail;
    assert.equal(Buffer.byteLength(f), size);
    return f;
  }

  it('a frame of exactly max-message-bytes passes (and one just under)', async () => {
    const room = uniq('size');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    for (const size of [MAX_BYTES - 1, MAX_BYTES]) {
      const f = frameOfSize(size);
      a.send(f);
      assert.equal(await b.nextRaw(), f.replace('"id":"B"', '"id":"A"'), `frame of ${size} bytes`);
    }
    await a.expectQuiet();
  });

  it('a frame one byte over closes the connection with 1009, no error frame; others see peer-left kicked', async () => {
    const room = uniq('size');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    a.send(frameOfSize(MAX_BYTES + 1));
    const info = await a.waitClosed();
    assert.equal(info.code, 1009);
    assert.equal(a.pending, 0, 'no frame before the 1009 close');
    assert.deepEqual(await b.next(), { type: 'peer-left', id: 'A', reason: 'kicked' });
    await b.expectQuiet();
  });

  it('a much larger frame (64 KiB) also closes with 1009 and the server keeps serving', async () => {
    const room = uniq('size');
    const a = await ctx.join(room, { peer: 'A' });
    a.send(frameOfSize(64 * 1024));
    assert.equal((await a.waitClosed()).code, 1009);
    const c = await ctx.join(room, { peer: 'C' });
    await c.expectQuiet();
  });
});

describe('rate limit (--rate-limit-per-s 1 --rate-limit-burst 5 --rate-limit-strikes 3)', () => {
  const ctx = useServer(['--rate-limit-per-s', '1', '--rate-limit-burst', '5', '--rate-limit-strikes', '3']);

  it('over the burst: error rate-limited, then close 4429 after the strikes; others see peer-left kicked', async () => {
    const room = uniq('rate');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');

    // The burst: 5 frames pass (pings, answered).
    for (let i = 0; i < 5; i += 1) a.send(`{"type":"ping","t":${i}}`);
    for (let i = 0; i < 5; i += 1) assert.deepEqual(await a.next(), { type: 'pong', t: i });

    // Over the limit: each refused frame gets rate-limited; after 3 strikes in a row, close 4429.
    // (One token may refill at 1/s if this machine is slow: allow one extra pong.)
    for (let i = 0; i < 10; i += 1) a.send({ type: 'offer', id: 'B', description: `over-${i}` });
    const info = await a.waitClosed();
    assert.equal(info.code, 4429, `close code ${JSON.stringify(info)}`);
    const frames = [];
    while (a.pending > 0) frames.push(await a.next());
    const limited = frames.filter((f) => f.type === 'error' && f.code === 'rate-limited');
    assert.ok(limited.length >= 1, `expected rate-limited errors before the close, got ${JSON.stringify(frames)}`);
    assert.ok(limited.length <= 3, `at most "strikes" refusals before the close, got ${JSON.stringify(frames)}`);
    for (const f of frames) assert.ok(f.type === 'error' && f.code === 'rate-limited', `unexpected frame ${JSON.stringify(f)}`);

    // B got at most the frames that passed (one refill), and then peer-left kicked.
    const forB = [];
    for (;;) {
      const m = await b.next();
      if (m.type === 'peer-left') {
        assert.deepEqual(m, { type: 'peer-left', id: 'A', reason: 'kicked' });
        break;
      }
      forB.push(m);
    }
    assert.ok(forB.length <= 1, `refused frames must not be relayed; B got ${JSON.stringify(forB)}`);
  });

  it('every frame counts: pings and bad frames consume tokens too', async () => {
    const room = uniq('rate');
    const a = await ctx.join(room, { peer: 'A' });
    for (let i = 0; i < 5; i += 1) a.send('not json');
    for (let i = 0; i < 5; i += 1) await expectErrorFrame(a, 'bad-message');
    a.send('{"type":"ping","t":1}');
    const m = await a.next();
    // the 6th frame is over the burst (unless a token refilled meanwhile: then it is a pong)
    if (m.type === 'pong') {
      a.send('{"type":"ping","t":2}');
      await expectErrorFrame(a, 'rate-limited');
    } else {
      assert.equal(m.type, 'error');
      assert.equal(m.code, 'rate-limited');
    }
  });
});

describe('garbage input (--rate-limit-per-s 0)', () => {
  const ctx = useServer(['--rate-limit-per-s', '0']);

  // Small deterministic PRNG (mulberry32) so a failure can be replayed.
  function prng(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('2000 random frames from one peer: answered or ignored, the server keeps relaying for others', { timeout: 30000 }, async () => {
    const rnd = prng(0x5eed);
    const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
    const room = uniq('fuzz');
    const fuzzer = await ctx.join(room, { peer: 'F' });
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await fuzzer.nextOfType('peer-joined');
    await fuzzer.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    const pieces = ['{', '}', '[', ']', '"', ':', ',', '"type"', '"id"', '"A"', '"F"', '"ping"', '"offer"', '1e999', '-', '0', 'null', 'true', '\\', '\\u', '\\ud800', ' ', '\n', 'é', '"t"'];
    // B may also get the fuzzer's accidental broadcasts; A's offers are what count.
    const nextFromA = async (c) => {
      for (;;) {
        const m = await c.next(10000);
        if (m.id === 'A' && m.type === 'offer') return m.description;
      }
    };
    let sent = 0;
    for (let i = 0; i < 2000; i += 1) {
      const kind = rnd();
      if (kind < 0.1) {
        const n = Math.floor(rnd() * 64);
        fuzzer.sendBinary(Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256))));
      } else if (kind < 0.2) {
        // random code points (valid UTF-8; invalid UTF-8 has its own test above)
        const n = Math.floor(rnd() * 64);
        fuzzer.send(String.fromCodePoint(...Array.from({ length: n }, () => {
          const cp = Math.floor(rnd() * 0x10ffff);
          return cp >= 0xd800 && cp <= 0xdfff ? 0x41 : cp;
        })));
      } else {
        const n = 1 + Math.floor(rnd() * 20);
        let text = '';
        for (let k = 0; k < n; k += 1) text += pick(pieces);
        fuzzer.send(text);
      }
      sent += 1;
      if (i % 100 === 0) {
        // others are never stalled
        a.send({ type: 'offer', id: 'B', description: `tick-${i}` });
        assert.equal(await nextFromA(b), `tick-${i}`);
      }
    }
    assert.equal(sent, 2000);
    // the fuzzing peer itself is still connected, and got only error/pong frames
    fuzzer.send('{"type":"ping","t":"fuzz-end"}');
    for (;;) {
      const m = await fuzzer.next(10000);
      if (m.type === 'pong' && m.t === 'fuzz-end') break;
      assert.ok(
        m.type === 'pong' || (m.type === 'error' && ['bad-message', 'reserved-type', 'peer-not-found'].includes(m.code)),
        `unexpected frame for the fuzzer: ${JSON.stringify(m)}`,
      );
    }
    // the server is alive and still serves everyone
    a.send({ type: 'offer', id: 'B', description: 'end' });
    assert.equal(await nextFromA(b), 'end');
    assert.equal((await ctx.http('/healthz')).status, 200);
  });
});
