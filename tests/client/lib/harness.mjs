// Process helpers for the client end-to-end tests: the real rendezvous-server
// and rendezvous-peer binaries on 127.0.0.1, waited on through their output
// (readiness line, --json events) with deadlines; never a sleep standing in
// for an event. Every process started here is ended by its PID at the end.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export const SERVER = process.env.RENDEZVOUS_SERVER;
export const PEER = process.env.RENDEZVOUS_PEER;
if (!SERVER || !PEER) throw new Error('set RENDEZVOUS_SERVER and RENDEZVOUS_PEER (ctest does)');

// Generous deadlines: two cores shared with builds; webrtcbin needs ~0.3-1.5 s.
export const CONNECT_MS = 45_000;

const started = new Set();

export function cleanup() {
  for (const p of started) {
    if (p.exitCode === null && p.signalCode === null) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
  started.clear();
}
process.on('exit', cleanup);

function track(child) {
  started.add(child);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

// Resolves with the value of `find(line)` for the first line that gives one,
// rejects after `ms` or when the stream ends first.
function waitForLine(rl, find, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const onLine = (line) => {
      const v = find(line);
      if (v !== undefined && v !== null) { off(); resolve(v); }
    };
    const onClose = () => { off(); reject(new Error(`stream ended while waiting for ${what}`)); };
    const off = () => { clearTimeout(timer); rl.off('line', onLine); rl.off('close', onClose); };
    rl.on('line', onLine);
    rl.on('close', onClose);
  });
}

export async function startServer({ port = 0, args = [] } = {}) {
  const child = track(spawn(SERVER, ['--listen', `127.0.0.1:${port}`, '--log-level', 'info', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = [];
  const out = createInterface({ input: child.stdout });
  const err = createInterface({ input: child.stderr });
  out.on('line', (l) => log.push(l));
  err.on('line', (l) => log.push(l));
  const got = await waitForLine(out, (l) => l.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1], 15_000,
    'the server readiness line');
  return {
    child,
    port: Number(got),
    url: `ws://127.0.0.1:${got}`,
    log,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
      return child.exited;
    },
  };
}

// A rendezvous-peer with --json: every event is kept; waitFor() finds the
// first past or future event matching a predicate.
export function startPeer(url, room, extra = [], { stdin = 'pipe' } = {}) {
  const args = ['--server', url, '--room', room, '--json', ...extra];
  const child = track(spawn(PEER, args, { stdio: [stdin, 'pipe', 'pipe'] }));
  const events = [];
  const waiters = [];
  const stderr = [];
  const out = createInterface({ input: child.stdout });
  out.on('line', (line) => {
    let ev;
    try { ev = JSON.parse(line); } catch { ev = { event: 'raw', line }; }
    events.push(ev);
    for (const w of [...waiters]) if (w.match(ev)) w.done(ev);
  });
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  let closed = false;
  out.on('close', () => { closed = true; for (const w of [...waiters]) w.fail(new Error('peer output ended')); });
  const peer = {
    child,
    events,
    stderr,
    waitFor(match, ms = CONNECT_MS, what = 'an event') {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          done: (ev) => { clearTimeout(w.timer); waiters.splice(waiters.indexOf(w), 1); resolve(ev); },
          fail: (e) => { clearTimeout(w.timer); waiters.splice(waiters.indexOf(w), 1); reject(e); },
        };
        w.timer = setTimeout(() => w.fail(new Error(
          `timed out after ${ms} ms waiting for ${what}; events: ${JSON.stringify(events)}; stderr: ${stderr.join('\n')}`)), ms);
        waiters.push(w);
        if (closed) w.fail(new Error(`peer output ended before ${what}; events: ${JSON.stringify(events)}`));
      });
    },
    event(name, extraMatch = () => true, ms) {
      return peer.waitFor((e) => e.event === name && extraMatch(e), ms, `"${name}"`);
    },
    all(name) { return events.filter((e) => e.event === name); },
    send(line) { child.stdin.write(line + '\n'); },
    async exit(ms = CONNECT_MS) {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(
          `peer did not exit within ${ms} ms; events: ${JSON.stringify(events)}; stderr: ${stderr.join('\n')}`)), ms);
      });
      try { return await Promise.race([child.exited, timeout]); } finally { clearTimeout(timer); }
    },
    stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
      return child.exited;
    },
  };
  return peer;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}
