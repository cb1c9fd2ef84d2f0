// Resilience: kill and restart the server while two peers are connected. The
// open data channel keeps carrying messages, both peers reconnect to the new
// server by themselves, and a third peer joining later still connects.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startPeer, cleanup } from './lib/harness.mjs';

after(cleanup);

test('server killed and restarted under two connected peers', async (t) => {
  const s1 = await startServer();
  const a = startPeer(s1.url, 'resilience', ['--id', 'a', '--send', 'a-greets']);
  await a.event('joined');
  const b = startPeer(s1.url, 'resilience', ['--id', 'b', '--send', 'b-greets']);
  await Promise.all([a.event('message', (e) => e.text === 'b-greets'), b.event('message', (e) => e.text === 'a-greets')]);

  // The server dies (no close frames, no bye): both peers lose signaling.
  await s1.kill('SIGKILL');
  await Promise.all([a.event('signaling', (e) => e.state === 'reconnecting'),
    b.event('signaling', (e) => e.state === 'reconnecting')]);

  // The data channel does not need the server.
  a.send('while-down-from-a');
  b.send('while-down-from-b');
  await Promise.all([b.event('message', (e) => e.text === 'while-down-from-a'),
    a.event('message', (e) => e.text === 'while-down-from-b')]);

  // A new server on the same port: both peers rejoin by themselves.
  const t0 = Date.now();
  const s2 = await startServer({ port: s1.port });
  const joinedAgain = (p) => p.waitFor((e) => e.event === 'joined' && e.t_ms > 0 &&
    p.all('joined').indexOf(e) >= 1, 30_000, 'a second "joined"');
  await Promise.all([joinedAgain(a), joinedAgain(b)]);
  t.diagnostic(`both peers rejoined ${Date.now() - t0} ms after the new server started`);

  a.send('after-restart');
  await b.event('message', (e) => e.text === 'after-restart');
  for (const p of [a, b]) {
    assert.equal(p.all('connected').length, 1, 'still the first data channel');
    assert.equal(p.all('recovery').length, 0);
    assert.equal(p.all('peer-left').length, 0);
  }

  // A third peer joins the new server and connects to both.
  const c = startPeer(s2.url, 'resilience', ['--id', 'c', '--send', 'c-greets', '--exit-after', '2',
    '--timeout', '60']);
  const got = [];
  got.push(await c.event('message', (e) => e.peer === 'a'));
  got.push(await c.event('message', (e) => e.peer === 'b'));
  assert.deepEqual(got.map((e) => e.text).sort(), ['a-greets', 'b-greets']);
  await Promise.all([a.event('message', (e) => e.text === 'c-greets'), b.event('message', (e) => e.text === 'c-greets')]);
  assert.equal((await c.exit()).code, 0, c.stderr.join('\n'));

  // SIGTERM: a clean bye and exit 0.
  const [ea, eb] = await Promise.all([a.stop('SIGTERM'), b.stop('SIGTERM')]);
  assert.equal(ea.code, 0);
  assert.equal(eb.code, 0);
  await s2.kill();
});

test('a dropped signaling connection resumes with its token: the others see no churn', async (t) => {
  const { createServer, connect } = await import('node:net');
  const server = await startServer();
  // A TCP proxy in front of the server for peer a, so the test can cut a's
  // connection without a close frame (a reset), as a network drop would.
  const pairs = new Set();
  const proxy = createServer((down) => {
    const up = connect(server.port, '127.0.0.1');
    down.pipe(up);
    up.pipe(down);
    const pair = { down, up };
    pairs.add(pair);
    const end = () => pairs.delete(pair);
    down.on('error', end);
    up.on('error', end);
    down.on('close', () => { end(); up.destroy(); });
    up.on('close', () => { end(); down.destroy(); });
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyUrl = `ws://127.0.0.1:${proxy.address().port}`;
  t.after(() => proxy.close());

  const a = startPeer(proxyUrl, 'resume', ['--id', 'a', '--signaling-only']);
  await a.event('joined');
  const b = startPeer(server.url, 'resume', ['--id', 'b', '--signaling-only']);
  await a.event('peer-joined', (e) => e.peer === 'b');

  for (const { down, up } of [...pairs]) { down.resetAndDestroy(); up.resetAndDestroy(); }
  await a.event('signaling', (e) => e.state === 'reconnecting');
  const resumed = await a.waitFor((e) => e.event === 'joined' && e.resumed === true, 30_000, 'a resumed welcome');
  assert.equal(resumed.id, 'a');
  assert.deepEqual(resumed.peers, ['b']);

  // b saw nothing: no peer-left, no second peer-joined for a.
  const c = startPeer(server.url, 'resume', ['--id', 'c', '--signaling-only']);
  await b.event('peer-joined', (e) => e.peer === 'c');  // a later event, to know b's view is up to date
  assert.equal(b.all('peer-left').length, 0);
  assert.equal(b.all('peer-joined').filter((e) => e.peer === 'a').length, 0);
  for (const p of [a, b, c]) assert.equal((await p.stop('SIGTERM')).code, 0);
  await server.kill();
});
