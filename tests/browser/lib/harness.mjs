// Helpers for the browser tests. run.sh starts the server inside a network
// namespace and runs these tests inside it, with:
//   RDV_HTTP       http://10.99.0.1:PORT (the server: pages and WebSockets)
//   RDV_ARTIFACTS  where screenshots go (tests/browser/artifacts)
//   CHROMIUM       the browser (default /usr/bin/chromium)
//   RENDEZVOUS_PEER  the C++ rendezvous-peer, when built (optional)
// Every wait has a deadline and waits for an event (page state, a message):
// no sleep stands in for one.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');
export const HTTP = process.env.RDV_HTTP;
if (!HTTP) throw new Error('RDV_HTTP is not set: run tests/browser/run.sh');
export const WS = HTTP.replace(/^http/, 'ws');
export const HOST = new URL(HTTP).hostname;
export const ARTIFACTS = process.env.RDV_ARTIFACTS ?? path.join(REPO, 'tests/browser/artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

// Generous: two shared cores, a browser, and maybe a build next door.
export const CONNECT_MS = 30_000;
export const STEP_MS = 15_000;

const t0 = Date.now();
export const log = (...a) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${a.join(' ')}\n`);

// ---- the page: served by the server, or (before it serves one) here ----

let base = null;
let fallback = null;

async function serverServesDemo() {
  try {
    const [page, mod] = await Promise.all([fetch(`${HTTP}/`), fetch(`${HTTP}/rendezvous.js`)]);
    const ok = page.ok && mod.ok && (await page.text()).includes('demo.js') && (await mod.text()).includes('class Rendezvous');
    return ok;
  } catch {
    return false;
  }
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml' };

// A static server for web/ and client/js/rendezvous.js, used only when the
// rendezvous server does not serve the demo (built without it, or --web-root
// off); the page then reaches the signaling server through ?server=.
function startFallback() {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      let p = new URL(req.url, 'http://x').pathname;
      if (p === '/') p = '/index.html';
      const file = p === '/rendezvous.js' ? path.join(REPO, 'client/js/rendezvous.js') : path.join(REPO, 'web', path.normalize(p));
      if (!file.startsWith(path.join(REPO, 'web')) && p !== '/rendezvous.js') { res.writeHead(404).end(); return; }
      try {
        if (!statSync(file).isFile()) throw new Error('not a file');
        res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
      } catch {
        res.writeHead(404).end();
      }
    });
    srv.listen(0, HOST, () => resolve(srv));
  });
}

/** The demo page URL for `room`, with extra query parameters. */
export async function demoUrl(room, query = {}) {
  if (base === null) {
    if (await serverServesDemo()) {
      base = { origin: HTTP, query: {} };
      log(`the server serves the demo page at ${HTTP}/`);
    } else {
      fallback = await startFallback();
      const origin = `http://${HOST}:${fallback.address().port}`;
      base = { origin, query: { server: WS } };
      log(`the server does not serve the demo page (yet): serving web/ from ${origin}, signaling at ${WS}`);
    }
  }
  const q = new URLSearchParams({ ...base.query, ...query }).toString();
  return `${base.origin}/${q ? `?${q}` : ''}#${room}`;
}

export const servedByServer = () => base?.origin === HTTP;

// ---- the browser ----

export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // Host candidates as real IPs instead of .local names, so that libdatachannel peers can reach them.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/**
 * Opens the demo page in a new browser context (its own storage: another
 * "user"), waits until it is in the room and returns the page, with `who`
 * and a console log kept for failure reports.
 */
export const PHONE = { width: 390, height: 780 };
export const DESKTOP = { width: 1100, height: 700 };

export async function openDemo(browser, room, who, query = {}, { role, viewport = PHONE } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  if (role) await context.addInitScript(forceRole, role);
  const page = await context.newPage();
  page.who = who;
  page.consoleLog = [];
  page.on('console', (m) => page.consoleLog.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLog.push(`pageerror: ${e.message}`));
  await page.goto(await demoUrl(room, query));
  await waitInRoom(page);
  return page;
}

// Runs in the page before its scripts: rendezvous.js draws its role number
// from crypto.getRandomValues(new Uint32Array(2)) (high word first); a zero
// high word makes it tiny (polite), an all-ones one close to 1 (impolite),
// whatever the partner draws.
function forceRole(role) {
  const original = crypto.getRandomValues.bind(crypto);
  crypto.getRandomValues = (a) => {
    original(a);
    if (a instanceof Uint32Array && a.length === 2) a[0] = role === 'polite' ? 0 : 0xffffffff;
    return a;
  };
}

export async function waitInRoom(page, ms = STEP_MS) {
  await page.waitForFunction(() => ['open', 'error'].includes(document.body.dataset.state), null, { timeout: ms });
  await assertNoError(page);
  return page.evaluate(() => window.rendezvous.id);
}

export async function myId(page) {
  return page.evaluate(() => window.rendezvous.id);
}

export async function assertNoError(page) {
  const { state, error } = await page.evaluate(() => ({
    state: document.body.dataset.state,
    error: document.querySelector('#error')?.hidden === false ? document.querySelector('#error').textContent : '',
  }));
  assert.notEqual(state, 'error', `${page.who}'s page shows an error state: ${error}\n${page.consoleLog.slice(-30).join('\n')}`);
  assert.equal(error, '', `${page.who}'s page shows an error: ${error}`);
}

/** The page lists `peer` with an open data channel. */
export async function waitConnected(page, peer, ms = CONNECT_MS) {
  try {
    await page.waitForSelector(`#peers li[data-peer="${peer}"][data-channel="open"]`, { timeout: ms });
  } catch (e) {
    const peers = await page.evaluate(() => window.rendezvous?.peers).catch(() => null);
    throw new Error(`${page.who}: no open channel to ${peer} within ${ms} ms; peers: ${JSON.stringify(peers)}\n` +
      `${page.consoleLog.slice(-40).join('\n')}\n${e.message}`);
  }
}

/** Types `text` into the composer and sends it (to everyone, or `to`). */
export async function chat(page, text, to = '') {
  await page.selectOption('#to', to);
  await page.fill('#text', text);
  await page.click('#send');
  await page.waitForFunction((t) => [...document.querySelectorAll('#log li.msg.mine .text')].some((e) => e.textContent === t),
    text, { timeout: STEP_MS });
}

/** Waits until the page shows a chat line `text` from `from`. */
export async function waitChat(page, from, text, ms = STEP_MS) {
  try {
    await page.waitForFunction(([f, t]) => [...document.querySelectorAll(`#log li.msg:not(.mine)`)]
      .some((li) => li.dataset.from === f && li.querySelector('.text')?.textContent === t), [from, text], { timeout: ms });
  } catch (e) {
    const lines = await page.evaluate(() => [...document.querySelectorAll('#log li')].map((li) => li.textContent)).catch(() => []);
    throw new Error(`${page.who}: no chat line "${text}" from ${from} within ${ms} ms; log: ${JSON.stringify(lines.slice(-15))}\n${e.message}`);
  }
}

/** Sends `bytes` as a file named `name` from the page's file picker. */
export async function sendFile(page, name, bytes, to = '', mimeType = 'application/octet-stream') {
  await page.selectOption('#to', to);
  await page.setInputFiles('#file', { name, mimeType, buffer: bytes });
}

/** Waits for a received file `name` from `from` and returns its bytes. */
export async function receivedFile(page, from, name, ms = CONNECT_MS) {
  const sel = `#log li.file-received[data-from="${from}"] a.file[data-name="${name}"]`;
  await page.waitForSelector(sel, { timeout: ms });
  const b64 = await page.evaluate(async (s) => {
    const blob = await (await fetch(document.querySelector(s).href)).blob();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }, sel);
  return Buffer.from(b64, 'base64');
}

/**
 * A screenshot of each page into artifacts/<step>-<who>.png; fails if any
 * of them shows an error state.
 */
export async function shot(step, ...pages) {
  for (const page of pages) {
    const file = path.join(ARTIFACTS, `${step}-${page.who}.png`.replace(/[^A-Za-z0-9._-]+/g, '_'));
    await page.screenshot({ path: file, fullPage: true });
    await assertNoError(page);
  }
}

// ---- processes (the C++ peer) ----

const started = new Set();
export function killStarted() {
  for (const p of started) {
    if (p.exitCode === null && p.signalCode === null) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  started.clear();
}
process.on('exit', killStarted);

/** rendezvous-peer with --json: its events, waited on with deadlines. */
export function startCppPeer(bin, room, extra = []) {
  const child = spawn(bin, ['--server', WS, '--room', room, '--json', ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
  started.add(child);
  const events = [];
  const waiters = [];
  const stderr = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    let ev;
    try { ev = JSON.parse(line); } catch { ev = { event: 'raw', line }; }
    events.push(ev);
    for (const w of [...waiters]) if (w.match(ev)) w.done(ev);
  });
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    events,
    stderr,
    waitFor(match, ms, what) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, done: (ev) => { clearTimeout(w.timer); waiters.splice(waiters.indexOf(w), 1); resolve(ev); } };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`rendezvous-peer: timed out after ${ms} ms waiting for ${what}; events: ${JSON.stringify(events).slice(-2000)}; stderr: ${stderr.slice(-20).join('\n')}`));
        }, ms);
        waiters.push(w);
      });
    },
    sendLine(text) { child.stdin.write(`${text}\n`); },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        try { child.stdin.end(); } catch { /* closed */ }
        child.kill('SIGTERM');
      }
      return child.exited;
    },
  };
}

export function randomBytes(n, seed = 1) {
  // Deterministic bytes (xorshift), so a failure can be reproduced.
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 1) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export function uniqueRoom(name) {
  return `${name}-${process.pid}-${Date.now().toString(36)}`;
}

export function stopFallback() {
  fallback?.close();
  fallback = null;
}
