// A three-namespace topology in which two peers can reach each other only
// through a TURN server (../../shared/ENVIRONMENT.md: "put peers in separate
// namespaces that can only reach the TURN server (two veth hops, forwarding
// off)"):
//
//   ns A: a0 10.91.1.2/24 --veth-- ra 10.91.1.1/24 :ns R: rb 10.91.2.1/24 --veth-- b0 10.91.2.2/24 :ns B
//
// R holds coturn and the signaling server; IPv4 forwarding is off in R, so
// a packet from A can reach an address of R (coturn's relay ports, the
// signaling server) but never B, and the other way round. A and B have a
// default route via R, so each also reaches R's other address (local
// delivery in R, no forwarding). Needs root (CAP_NET_ADMIN).
//
// Namespace names carry the test process's PID; they are deleted in
// destroy() and, as a safety net, when the process exits.

import { execFileSync, spawn, spawnSync } from 'node:child_process';

const live = new Set();
const liveProcs = new Set();
process.on('exit', () => {
  // processes first (by PID), then the namespaces they ran in
  for (const p of liveProcs) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const t of live) t.destroySync();
});

const LOG_LIMIT = 1024 * 1024;

function ip(args) {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 });
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? '').toString().trim() || err.message}`);
  }
}

/** Whether this process may create network namespaces (root + iproute2). */
export function canUseNetns() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root';
  const r = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (r.status !== 0) return 'iproute2 (`ip`) is not installed';
  return null;
}

export class Topology {
  constructor(tag = `${process.pid}`) {
    this.ns = { R: `rdv-turn-${tag}-r`, A: `rdv-turn-${tag}-a`, B: `rdv-turn-${tag}-b` };
    this.addr = { A: '10.91.1.2', RA: '10.91.1.1', B: '10.91.2.2', RB: '10.91.2.1' };
    this.created = [];
  }

  create() {
    live.add(this);
    const { R, A, B } = this.ns;
    for (const n of [R, A, B]) {
      ip(['netns', 'add', n]);
      this.created.push(n);
      ip(['-n', n, 'link', 'set', 'lo', 'up']);
    }
    // forwarding off in R, whatever the host's default for new namespaces
    execFileSync('ip', ['netns', 'exec', R, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'], { stdio: 'ignore' });
    for (const [side, peerNs, dev, rdev, addr, raddr] of [
      ['A', A, 'a0', 'ra', this.addr.A, this.addr.RA],
      ['B', B, 'b0', 'rb', this.addr.B, this.addr.RB],
    ]) {
      ip(['link', 'add', dev, 'netns', peerNs, 'type', 'veth', 'peer', 'name', rdev, 'netns', R]);
      ip(['-n', peerNs, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      ip(['-n', R, 'addr', 'add', `${raddr}/24`, 'dev', rdev]);
      ip(['-n', peerNs, 'link', 'set', dev, 'up']);
      ip(['-n', R, 'link', 'set', rdev, 'up']);
      ip(['-n', peerNs, 'route', 'add', 'default', 'via', raddr]);
      void side;
    }
    return this;
  }

  /** Command prefix that runs a program in namespace `which` ('R', 'A', 'B'). */
  prefix(which) {
    return ['ip', 'netns', 'exec', this.ns[which]];
  }

  destroySync() {
    for (const n of this.created.splice(0).reverse()) {
      spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore', timeout: 10000 });
    }
    live.delete(this);
  }
}

/**
 * Spawns `argv` (stdout+stderr collected) and waits for a line matching
 * `readyRe`. Resolves {proc, pid, match, log(), exited, exitInfo, stop()}.
 * `ip netns exec` execs its command, so the PID is the program's own.
 */
export async function spawnReady(argv, readyRe, { readyTimeoutMs = 10000, label = argv[0], env } = {}) {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  liveProcs.add(proc);
  let log = '';
  const echo = process.env.RENDEZVOUS_TEST_LOG === '1';
  const h = { proc, pid: proc.pid, exitInfo: null, log: () => log };
  const waiters = new Set();
  const onData = (chunk) => {
    const text = chunk.toString('utf8');
    if (echo) process.stderr.write(`[${label} ${proc.pid}] ${text}`);
    log += text;
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
    for (const w of [...waiters]) w();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  h.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      liveProcs.delete(proc);
      h.exitInfo = { code, signal };
      for (const w of [...waiters]) w();
      resolve(h.exitInfo);
    });
  });
  proc.once('error', () => {});
  h.stop = async (timeoutMs = 5000, signal = 'SIGTERM') => {
    if (h.exitInfo) return { ...h.exitInfo, killed: false };
    proc.kill(signal);
    let timer;
    const t = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const info = await Promise.race([h.exited, t]);
    clearTimeout(timer);
    if (info) return { ...info, killed: false };
    proc.kill('SIGKILL');
    return { ...(await h.exited), killed: true };
  };
  /** Resolves once the process has exited, or after `timeoutMs` (then exitInfo stays null). */
  h.waitExit = async (timeoutMs) => {
    let timer;
    const t = new Promise((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([h.exited, t]);
    clearTimeout(timer);
    return h.exitInfo;
  };
  /** Resolves with the first match of `re` in the output (deadline). */
  h.waitFor = (re, timeoutMs, what = String(re)) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(log);
        if (m) {
          done();
          resolve(m);
        } else if (h.exitInfo) {
          done();
          reject(new Error(`${label} exited (${JSON.stringify(h.exitInfo)}) before ${what}; output:\n${log.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${label}: no ${what} within ${timeoutMs} ms; output:\n${log.slice(-4000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  if (readyRe) {
    try {
      h.match = await h.waitFor(readyRe, readyTimeoutMs, `line matching ${readyRe}`);
    } catch (err) {
      await h.stop(2000);
      throw err;
    }
  }
  return h;
}
