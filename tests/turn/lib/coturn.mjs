// Starts Debian's coturn (`turnserver`) in the foreground on loopback, with
// the flags ../../shared/ENVIRONMENT.md lists as working here, for one test
// file. Every file it writes (config, pid file, user db) lives in a temp dir
// the caller owns. The process is only ever ended by its own PID.
//
// Readiness is proven, not waited for: a STUN Binding request is sent to the
// listening port until a Binding success response comes back (deadline).

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const LOG_LIMIT = 4 * 1024 * 1024;
const live = new Set();
process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Path of turnserver, or null when coturn is not installed. */
export function turnserverBinary() {
  const r = spawnSync('sh', ['-c', 'command -v turnserver'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : null;
}

/** A UDP port on 127.0.0.1 that was free a moment ago (also free for TCP). */
export async function freeUdpPort() {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const sock = dgram.createSocket('udp4');
    const port = await new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => resolve(sock.address().port));
    });
    sock.close();
    if (port > 1024) return port;
  }
  throw new Error('no free UDP port');
}

/**
 * One STUN Binding request to host:port (UDP); resolves true when a Binding
 * success response with our transaction id arrives within `timeoutMs`.
 */
export function stunBinding(port, timeoutMs = 300, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const tid = randomBytes(12);
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0); // Binding request
    req.writeUInt16BE(0, 2); // no attributes
    req.writeUInt32BE(0x2112a442, 4); // magic cookie
    tid.copy(req, 8);
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(tid)) finish(true);
    });
    sock.send(req, port, host, (err) => {
      if (err) finish(false);
    });
  });
}

/**
 * @param {object} opts
 * @param {string} opts.dir temp dir for config, pid file and user db
 * @param {string} opts.secret static-auth-secret (coturn's REST API form)
 * @param {string} [opts.realm]
 * @param {string[]} [opts.listenIps] listening-ip lines (default loopback)
 * @param {string} [opts.relayIp] relay-ip (default loopback)
 * @param {number} [opts.port] listening port (default: a free one on loopback)
 * @param {string[]} [opts.prefix] command prefix, e.g. ['ip','netns','exec',NS]
 * @param {(port:number)=>Promise<boolean>} [opts.probe] readiness probe
 *   (default: a STUN Binding to 127.0.0.1:port from this process)
 * @param {number} [opts.readyTimeoutMs]
 */
export async function startCoturn({
  dir,
  secret,
  realm = 'rendezvous.test',
  listenIps = ['127.0.0.1'],
  relayIp = '127.0.0.1',
  port: fixedPort,
  prefix = [],
  probe,
  readyTimeoutMs = 10000,
}) {
  const bin = turnserverBinary();
  if (!bin) throw new Error('turnserver (Debian package coturn) is not installed: run tests/turn/install.sh');
  const port = fixedPort ?? (await freeUdpPort());
  // Relay ports below Linux's ephemeral range (32768-60999), so that they do
  // not collide with ports the OS hands out to everyone else.
  const minPort = 20000 + Math.floor(Math.random() * 500) * 20;
  const conf = [
    ...listenIps.map((ip) => `listening-ip=${ip}`),
    `relay-ip=${relayIp}`,
    `listening-port=${port}`,
    `min-port=${minPort}`,
    `max-port=${minPort + 19}`,
    `realm=${realm}`,
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'fingerprint',
    'no-tls',
    'no-dtls',
    // coturn's TCP listener fails to bind twice on this machine ("Address
    // already in use" from a second relay thread); the peers use UDP.
    'no-tcp',
    'no-cli',
    'allow-loopback-peers',
    'no-multicast-peers',
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    `userdb=${path.join(dir, 'turndb')}`,
    'log-file=stdout',
    'simple-log',
    // ALLOCATE / CREATE_PERMISSION / CHANNEL_BIND lines with their outcome
    'verbose',
    '',
  ].join('\n');
  const confPath = path.join(dir, 'turnserver.conf');
  writeFileSync(confPath, conf);

  // `prefix` runs it elsewhere, e.g. ['ip', 'netns', 'exec', NS] (which
  // execs turnserver: the PID stays the one we kill).
  const argv = [...prefix, bin, '-c', confPath];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let log = '';
  const waiters = new Set();
  const echo = process.env.RENDEZVOUS_TEST_LOG === '1';
  const onData = (chunk) => {
    const text = chunk.toString('utf8');
    if (echo) process.stderr.write(`[coturn ${proc.pid}] ${text}`);
    log += text;
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
    for (const w of [...waiters]) w();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);

  const handle = { proc, pid: proc.pid, port, minPort, maxPort: minPort + 19, exitInfo: null, log: () => log };
  handle.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      handle.exitInfo = { code, signal };
      for (const w of [...waiters]) w();
      resolve(handle.exitInfo);
    });
  });
  proc.once('error', () => {});

  /** Resolves with the match once the log matches `re` (deadline). */
  handle.waitForLog = (re, timeoutMs = 5000, what = String(re)) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(log);
        if (m) {
          cleanup();
          resolve(m);
        } else if (handle.exitInfo) {
          cleanup();
          reject(new Error(`coturn exited (${JSON.stringify(handle.exitInfo)}) while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`coturn log did not show ${what} within ${timeoutMs} ms; log tail:\n${log.slice(-3000)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  handle.stop = async (timeoutMs = 5000) => {
    if (handle.exitInfo) return handle.exitInfo;
    proc.kill('SIGTERM');
    let timer;
    const t = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const info = await Promise.race([handle.exited, t]);
    clearTimeout(timer);
    if (info) return info;
    proc.kill('SIGKILL');
    return handle.exited;
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (handle.exitInfo) {
      throw new Error(`turnserver exited at start (${JSON.stringify(handle.exitInfo)}); log:\n${log.slice(-4000)}`);
    }
    if (probe ? await probe(port) : await stunBinding(port)) break;
    if (Date.now() > deadline) {
      await handle.stop(2000);
      throw new Error(`turnserver did not answer a STUN Binding on port ${port} within ${readyTimeoutMs} ms; log:\n${log.slice(-4000)}`);
    }
  }
  return handle;
}
