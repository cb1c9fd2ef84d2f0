// A peer refused by the server exits 4 and prints the code; a server that is
// not there makes it exit 3.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startServer, startPeer, cleanup } from './lib/harness.mjs';

after(cleanup);

test('a bad room name is refused with bad-request (4400): exit 4', async () => {
  const server = await startServer();
  const p = startPeer(server.url, 'bad name!', ['--timeout', '30'], { stdin: 'ignore' });
  const err = await p.event('error');
  assert.equal(err.code, 'bad-request');
  assert.equal(err.close, 4400);
  const { code } = await p.exit();
  assert.equal(code, 4);
  await server.kill();
});

test('a full room is refused with room-full (4429): exit 4, code printed in text mode too', async () => {
  const server = await startServer({ args: ['--max-peers-per-room', '1'] });
  const first = startPeer(server.url, 'full', ['--id', 'first', '--signaling-only']);
  await first.event('joined');
  const { spawn } = await import('node:child_process');
  const { PEER } = await import('./lib/harness.mjs');
  // Plain (non-JSON) output: the code goes to stderr.
  const second = spawn(PEER, ['--server', server.url, '--room', 'full', '--id', 'second', '--timeout', '30'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  second.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((resolve) => second.on('exit', (c) => resolve(c)));
  assert.equal(code, 4, stderr);
  assert.match(stderr, /room-full \(4429\)/);
  await first.stop();
  await server.kill();
});

test('no server listening: exit 3 after the connection attempts', async () => {
  // A port that was free a moment ago and has no listener now.
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const p = startPeer(`ws://127.0.0.1:${port}`, 'nobody', ['--connect-attempts', '2', '--timeout', '30'],
    { stdin: 'ignore' });
  const err = await p.event('error', (e) => e.code === 'connect-failed');
  assert.ok(err.message.length > 0);
  const { code } = await p.exit();
  assert.equal(code, 3);
});

test('usage errors exit 2', async () => {
  const { spawnSync } = await import('node:child_process');
  const { PEER } = await import('./lib/harness.mjs');
  assert.equal(spawnSync(PEER, ['--room', 'x']).status, 2);
  const badUrl = spawnSync(PEER, ['--server', 'http://127.0.0.1:1', '--room', 'x']);
  assert.equal(badUrl.status, 2);
  assert.match(badUrl.stderr.toString(), /bad server URL/);
  const help = spawnSync(PEER, ['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout.toString(), /Exit codes/);
});
