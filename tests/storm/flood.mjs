// Flood test (tests/storm/flood.sh; ctest: flood): one address opens
// connections as fast as it can for 10 s while 8 peers from 8 other
// addresses join and relay. Checks:
//   - every peer gets its `welcome` within 1 s, during the flood too;
//   - the peers' relay p99 during the flood stays within
//       max(2 x quiet p99, quiet p99 + max(1 ms, 2 x flood send lag p99))
//     where "quiet" is the same peers measured just before without the flood,
//     and "send lag" is how late the peers' own timers fired during the flood
//     (scheduler noise on this 2-core box; the flooder is a process of its
//     own at nice 10, as attackers would be on other machines). Why not 2x
//     alone: a quiet loopback p99 is ~0.2-0.5 ms, and with the server, the
//     peers and a flooder busy on 2 cores the scheduler alone adds hundreds
//     of µs at p99; a server that let the flood in (a peer stuck behind the
//     accept loop, or a lock held across I/O) shows up as tens of ms or as
//     a missing welcome. The storm test (run.sh) argues the same at length;
//   - the flooding address never holds more than max_connections_per_ip
//     sockets on the server (rendezvous_sockets_open, sampled every 50 ms,
//     less the peers' and the scrape's own);
//   - the server log stays under 20 lines, not counting the per-connection
//     `join` and `leave` events (one per admitted connection, by design: the
//     flooder's admitted joins are bounded by the join rate, and that bound is
//     checked too);
//   - the server answers /healthz throughout and stays up (flood.sh then
//     checks that it drains and exits 0).
// Bounded: the flooder stops after 10 s or 200,000 attempts, every wait has a
// deadline, children are ended by their PID.
//
//   node flood.mjs --port P --server-log FILE [--flood-ms 10000]
//   node flood.mjs --flooder --port P --from 127.0.0.1 --ms 10000   (the child)

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(arg('--port'));
const HOST = '127.0.0.1';
const now = () => performance.now();

// Defaults of the server (config.hpp): what the test holds the flooder to.
const MAX_CONNECTIONS_PER_IP = 100;
const JOIN_RATE = 10;
const JOIN_BURST = 50;

// The peers' WebSockets from creation to close, for the flooder's share of
// rendezvous_sockets_open.
let peersOpen = 0;

if (args.includes('--flooder')) await flooder();
else await main();

// ---------------------------------------------------------------------------
// The flooder: WebSocket joins as fast as it can, each held open once it is
// upgraded (so the address sits at its connection limit), 64 attempts in
// flight; counts what the server answered.

async function flooder() {
  const from = arg('--from', '127.0.0.1');
  const ms = Number(arg('--ms', '10000'));
  const maxAttempts = 200000;
  const end = Date.now() + ms;
  const held = new Set();
  const st = { attempts: 0, opened: 0, welcomed: 0, http429: 0, httpOther: 0, rateLimited: 0, otherClose: 0, errors: 0 };
  let lanes = 64;
  await new Promise((resolveAll) => {
    const next = () => {
      if (Date.now() >= end || st.attempts >= maxAttempts) {
        lanes -= 1;
        if (lanes === 0) resolveAll();
        return;
      }
      st.attempts += 1;
      let done = false;
      const step = () => {
        if (!done) {
          done = true;
          setImmediate(next);
        }
      };
      const ws = new WebSocket(`ws://${HOST}:${PORT}/rooms/flood-${st.attempts}?peer=f`, {
        localAddress: from,
        perMessageDeflate: false,
        handshakeTimeout: 5000,
      });
      ws.on('unexpected-response', (req, res) => {
        if (res.statusCode === 429) st.http429 += 1;
        else st.httpOther += 1;
        req.destroy();
        step();
      });
      ws.on('open', () => {
        st.opened += 1;
        held.add(ws);
        step();
      });
      ws.on('message', (d) => {
        if (String(d).includes('"welcome"')) st.welcomed += 1;
      });
      ws.on('close', (code) => {
        held.delete(ws);
        if (code === 4429) st.rateLimited += 1;
        else if (code !== 1005 && code !== 1006) st.otherClose += 1;
        step();
      });
      ws.on('error', () => {
        st.errors += 1;
        step();
      });
    };
    for (let i = 0; i < lanes; i += 1) next();
  });
  for (const ws of held) ws.terminate();
  process.stdout.write(`${JSON.stringify(st)}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------
// The measuring side.

function log(msg) {
  process.stderr.write(`[flood] ${msg}\n`);
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function httpGet(path, localAddress = '127.0.0.10', timeoutMs = 2000) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port: PORT, path, agent: false, localAddress, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

function metric(body, name) {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : NaN;
}

/**
 * 8 peers from 127.0.0.2..9 in 4 rooms of 2 join (welcome latency measured
 * from the WebSocket's creation), then each sends its partner 40 msgs/s for
 * `ms` (one-way latency: same process, same clock), then all close.
 */
async function peersRun(label, ms) {
  const RATE = 40;
  const peers = [];
  const welcomes = [];
  const lat = [];
  const lag = [];
  let lost = 0;
  const room = (i) => `${label}-${process.pid}-r${i % 4}`;
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      new Promise((resolve, reject) => {
        const t0 = now();
        const ws = new WebSocket(`ws://${HOST}:${PORT}/rooms/${room(i)}?peer=p${i}`, {
          localAddress: `127.0.0.${2 + i}`,
          perMessageDeflate: false,
          handshakeTimeout: 3000,
        });
        // Counted from its creation to its close: at least what the server holds for it.
        peersOpen += 1;
        ws.once('close', () => {
          peersOpen -= 1;
        });
        const p = { ws, i, partner: `p${(i + 4) % 8}`, received: 0, sent: 0 };
        const timer = setTimeout(() => reject(new Error(`${label}: p${i} got no welcome within 3 s`)), 3000);
        ws.on('error', (e) => reject(new Error(`${label}: p${i}: ${e.message}`)));
        ws.on('message', (d) => {
          const msg = JSON.parse(d);
          if (msg.type === 'welcome') {
            clearTimeout(timer);
            welcomes.push(now() - t0);
            peers.push(p);
            resolve();
          } else if (msg.type === 'offer') {
            lat.push(now() - msg.t);
            p.received += 1;
          }
        });
      })),
  );
  // Every peer has its welcome, so every partner is in its room.
  const start = now();
  await new Promise((resolve) => {
    let n = 0;
    const tick = () => {
      const due = start + (n * 1000) / RATE;
      const t = now();
      lag.push(t - due);
      for (const p of peers) {
        p.ws.send(JSON.stringify({ type: 'offer', id: p.partner, t, seq: n }));
        p.sent += 1;
      }
      n += 1;
      if (t - start >= ms) return resolve();
      setTimeout(tick, Math.max(0, start + (n * 1000) / RATE - now()));
    };
    tick();
  });
  // Let the last messages arrive (bounded), then close.
  const sent = peers.reduce((a, p) => a + p.sent, 0);
  const deadline = now() + 2000;
  while (lat.length < sent && now() < deadline) await new Promise((r) => setTimeout(r, 10));
  lost = sent - lat.length;
  await Promise.all(
    peers.map(
      (p) =>
        new Promise((resolve) => {
          p.ws.once('close', resolve);
          p.ws.close(1000);
          setTimeout(resolve, 2000);
        }),
    ),
  );
  lat.sort((a, b) => a - b);
  lag.sort((a, b) => a - b);
  welcomes.sort((a, b) => a - b);
  return {
    welcomeMax: welcomes[welcomes.length - 1],
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat[lat.length - 1],
    lagP99: pct(lag, 99),
    samples: lat.length,
    sent,
    lost,
  };
}

async function main() {
  const floodMs = Number(arg('--flood-ms', '10000'));
  const serverLog = arg('--server-log');
  const failures = [];
  const fmt = (v) => `${(v * 1000).toFixed(0)} µs`;
  const t0 = now();

  log('quiet run: 8 peers (127.0.0.2-9), 4 pairs at 40 msgs/s each way, 6 s');
  const quiet = await peersRun('quiet', 6000);

  const here = fileURLToPath(import.meta.url);
  log(`flood: 127.0.0.1 opens connections as fast as it can for ${floodMs / 1000} s (nice 10)`);
  const child = spawn('nice', ['-n', '10', process.execPath, here, '--flooder', '--port', String(PORT), '--from', '127.0.0.1', '--ms', String(floodMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const childDone = new Promise((resolve) => child.once('exit', resolve));

  // Sample what the server holds, every 50 ms, from an address of its own.
  let sampling = true;
  let maxFlooder = 0;
  let healthFails = 0;
  let samples = 0;
  const sampler = (async () => {
    while (sampling) {
      const r = await httpGet('/metrics');
      if (r.status === 200) {
        samples += 1;
        // Less the peers' sockets and this scrape's own. A peer counts from
        // before the server accepts it to after the server closed it, so this
        // never counts a peer as the flooder's.
        const held = metric(r.body, 'rendezvous_sockets_open') - peersOpen - 1;
        maxFlooder = Math.max(maxFlooder, held);
      }
      const h = await httpGet('/healthz', '127.0.0.11');
      if (h.status !== 200) healthFails += 1;
      await new Promise((res) => setTimeout(res, 50));
    }
  })();

  await new Promise((r) => setTimeout(r, 1500)); // the flood is at its limit
  log('flood run: the same 8 peers join and relay for 6 s during the flood');
  const flood = await peersRun('flood', 6000);
  const code = await Promise.race([childDone, new Promise((r) => setTimeout(() => r('timeout'), floodMs + 10000))]);
  sampling = false;
  await sampler;
  if (code !== 0) failures.push(`the flooder did not finish cleanly (${code})`);
  let st = {};
  try {
    st = JSON.parse(out.trim().split('\n').pop());
  } catch {
    failures.push(`no flooder summary: ${out}`);
  }

  // The server log, once the sweep could have written its due lines.
  const logText = serverLog ? readFileSync(serverLog, 'utf8') : '';
  const lines = logText.split('\n').filter((l) => l.trim() !== '');
  const perConnection = lines.filter((l) => / (join|leave) mode=/.test(l));
  const others = lines.filter((l) => !/ (join|leave) mode=/.test(l));
  const floodJoins = perConnection.filter((l) => / join mode=room room=flood-/.test(l)).length;
  const joinBound = JOIN_BURST + JOIN_RATE * (floodMs / 1000 + 1);

  const limit = Math.max(2 * quiet.p99, quiet.p99 + Math.max(1, 2 * flood.lagP99));
  if (quiet.welcomeMax >= 1000) failures.push(`quiet: a welcome took ${quiet.welcomeMax.toFixed(1)} ms`);
  if (flood.welcomeMax >= 1000) failures.push(`flood: a welcome took ${flood.welcomeMax.toFixed(1)} ms (limit 1 s)`);
  if (flood.p99 > limit) failures.push(`flood p99 ${fmt(flood.p99)} over the limit ${fmt(limit)}`);
  if (quiet.lost || flood.lost) failures.push(`lost messages: quiet ${quiet.lost}, flood ${flood.lost}`);
  if (maxFlooder > MAX_CONNECTIONS_PER_IP) failures.push(`the flooder held ${maxFlooder} sockets (> ${MAX_CONNECTIONS_PER_IP})`);
  if (samples < 20) failures.push(`only ${samples} metric samples`);
  if (healthFails) failures.push(`/healthz failed ${healthFails} times`);
  if (others.length >= 20) failures.push(`${others.length} log lines besides join/leave (limit < 20)`);
  if (floodJoins > joinBound) failures.push(`${floodJoins} flooder joins admitted (bound ${joinBound})`);
  if (!(st.http429 > 0)) failures.push('the flooder was never refused with 429');

  console.log('\n=== flood test summary ===');
  console.log(`flooder (127.0.0.1):   ${st.attempts} attempts in ${floodMs / 1000} s: ${st.http429} x 429 before the upgrade, ${st.opened} upgraded (${st.welcomed} welcomed, ${st.rateLimited} refused rate-limited/4429), ${st.errors} errors`);
  console.log(`flooder held:          at most ${maxFlooder} sockets on the server (limit ${MAX_CONNECTIONS_PER_IP}; ${samples} samples)`);
  console.log(`welcome, worst:        quiet ${quiet.welcomeMax.toFixed(1)} ms, flood ${flood.welcomeMax.toFixed(1)} ms (limit 1000 ms)`);
  console.log(`peers, quiet:          p50 ${fmt(quiet.p50)}, p99 ${fmt(quiet.p99)}, max ${fmt(quiet.max)} (${quiet.samples} msgs, send lag p99 ${fmt(quiet.lagP99)})`);
  console.log(`peers, during flood:   p50 ${fmt(flood.p50)}, p99 ${fmt(flood.p99)}, max ${fmt(flood.max)} (${flood.samples} msgs, send lag p99 ${fmt(flood.lagP99)})`);
  console.log(`p99 limit:             ${fmt(limit)} = max(2 x ${fmt(quiet.p99)}, ${fmt(quiet.p99)} + max(1000 µs, 2 x send lag ${fmt(flood.lagP99)})); ratio ${(flood.p99 / quiet.p99).toFixed(2)}x`);
  console.log(`server log:            ${lines.length} lines: ${others.length} besides join/leave (limit < 20), ${perConnection.length} join/leave (${floodJoins} flooder joins, bound ${joinBound})`);
  for (const l of others) console.log(`    ${l.length > 200 ? `${l.slice(0, 200)}...` : l}`);
  console.log(`runtime:               ${((now() - t0) / 1000).toFixed(1)} s`);
  if (failures.length) {
    for (const f of failures) console.log(`FAIL: ${f}`);
    process.exit(1);
  }
  console.log('PASS');
  process.exit(0);
}
