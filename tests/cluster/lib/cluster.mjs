// Several real rendezvous-server nodes over one real redis-server.
//
// Each test file starts its own redis-server (no persistence) on a unix
// socket in a temp dir (no port to collide with), and nodes with
// --redis-url unix://... . Processes are ended by their own PID only.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ServerContext, waitFor } from '../../integration/lib/harness.mjs';

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

export function haveRedis() {
  return spawnSync('redis-server', ['--version']).status === 0;
}

export class Redis {
  constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'rendezvous-redis-'));
    this.socket = path.join(this.dir, 'redis.sock');
    this.proc = null;
  }

  get url() {
    return `unix://${this.socket}`;
  }

  async start() {
    const args = ['--port', '0', '--unixsocket', this.socket, '--unixsocketperm', '700', '--save', '',
      '--appendonly', 'no', '--dir', this.dir, '--loglevel', 'warning'];
    this.proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.proc);
    this.log = '';
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      live.delete(this.proc);
      resolve({ code, signal });
    }));
    await waitFor(() => this.cli('PING') === 'PONG', { timeoutMs: 10000, what: 'redis-server answering PING' });
    return this;
  }

  cli(...args) {
    const r = spawnSync('redis-cli', ['-s', this.socket, ...args], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  }

  async kill(signal = 'SIGKILL') {
    if (!this.proc) return;
    this.proc.kill(signal);
    await this.exited;
    this.proc = null;
  }

  async stop() {
    await this.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// One node: the integration tests' ServerContext with the backplane flags.
export class Node extends ServerContext {
  constructor(redis, name, extra = []) {
    super(['--redis-url', redis.url, '--node-id', name, '--cluster-heartbeat-ms', '200',
      '--cluster-node-ttl-ms', '1000', ...extra]);
    this.name = name;
  }

  async ready(timeoutMs = 10000) {
    await waitFor(async () => (await this.http('/readyz').catch(() => ({ status: 0 }))).status === 200,
      { timeoutMs, intervalMs: 25, what: `${this.name} /readyz 200` });
    return this;
  }

  async kill(signal = 'SIGKILL') {
    this.server.proc.kill(signal);
    await this.server.exited;
  }
}

// Starts redis and `n` nodes (extra flags for every node), all ready.
export async function startCluster(n, extra = []) {
  const redis = await new Redis().start();
  const nodes = [];
  for (let i = 0; i < n; i += 1) nodes.push(new Node(redis, `n${i + 1}-${process.pid}`, extra));
  await Promise.all(nodes.map((node) => node.start().then(() => node.ready())));
  return { redis, nodes };
}

export async function stopCluster({ redis, nodes }) {
  for (const node of nodes) {
    await node.closeClients();
    if (node.server && !node.server.exitInfo) {
      const info = await node.server.stop({ timeoutMs: 5000 });
      assert.equal(info.killed, false, `${node.name} did not exit within 5 s of SIGTERM`);
    }
  }
  await redis.stop();
}
