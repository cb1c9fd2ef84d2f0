// Two nodes behind Debian's HAProxy (round robin): two libdatachannel peers
// (node-datachannel) that landed on different nodes meet through it and open
// a real data channel.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { waitFor } from '../integration/lib/harness.mjs';
import { cleanup, dataChannelPair } from '../turn/lib/dcpair.mjs';
import { startCluster, stopCluster } from './lib/cluster.mjs';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function joinsOf(node) {
  return (await node.metrics()).sum('rendezvous_joins_total');
}

describe('two nodes behind HAProxy', () => {
  let cluster;
  let haproxy;
  let exited;
  let dir;
  let port;

  before(async () => {
    cluster = await startCluster(2);
    dir = mkdtempSync(path.join(os.tmpdir(), 'rendezvous-haproxy-'));
    port = await freePort();
    const cfg = [
      'global', '  maxconn 256',
      'defaults', '  mode http', '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s',
      '  timeout tunnel 60s',
      'frontend websockets', `  bind 127.0.0.1:${port}`, '  default_backend nodes',
      'backend nodes', '  balance roundrobin',
      ...cluster.nodes.map((n, i) => `  server n${i + 1} 127.0.0.1:${n.port}`),
      '',
    ].join('\n');
    writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
    haproxy = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    haproxy.stdout.on('data', (d) => { log += d; });
    haproxy.stderr.on('data', (d) => { log += d; });
    exited = new Promise((resolve) => haproxy.once('exit', resolve));
    await waitFor(() => tcpOpen(port), { timeoutMs: 10000, what: `haproxy listening (${log})` });
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      haproxy.kill('SIGTERM');
      await exited;
    }
    cleanup();
    if (cluster) await stopCluster(cluster);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('peers on different nodes meet through the load balancer and open a data channel', async () => {
    const [a, b] = cluster.nodes;
    const before1 = await joinsOf(a);
    const before2 = await joinsOf(b);
    const r = await dataChannelPair({ baseUrl: `ws://127.0.0.1:${port}`, room: `lb-${process.pid}`, timeoutMs: 20000 });
    assert.equal(r.receivedByA, 'hello from B');
    assert.equal(r.receivedByB, 'hello from A');
    assert.deepEqual(r.welcomeB.peers, ['A']);
    // Round robin put one peer on each node.
    assert.equal((await joinsOf(a)) - before1, 1, 'one join on node 1');
    assert.equal((await joinsOf(b)) - before2, 1, 'one join on node 2');
  });
});
