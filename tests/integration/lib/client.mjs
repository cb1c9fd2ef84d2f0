// WebSocket client wrapper for the integration tests.
//
// Every received frame goes into a queue; tests take frames out with a
// deadline (`next`, `nextRaw`, `nextOfType`). Nothing here sleeps in place of
// an event: "nothing arrived" is proven with a ping/pong round trip
// (`expectQuiet`), which works because the server handles the frames of one
// connection in order and writes a connection's frames in order.

import assert from 'node:assert/strict';
import WebSocket from 'ws';

export const DEFAULT_TIMEOUT_MS = 3000;

let pingCounter = 0;

function describeEntry(entry) {
  if (!entry) return '<none>';
  if (entry.binary) return `<binary frame, ${entry.raw.length} bytes>`;
  const s = entry.raw;
  return s.length > 300 ? `${s.slice(0, 300)}... (${s.length} chars)` : s;
}

export class Client {
  /**
   * @param {string} url ws:// URL
   * @param {object} [options]
   * @param {boolean} [options.autoPong=true] answer WebSocket pings (ws option)
   * @param {string} [options.label] name used in error messages
   * @param {object} [options.headers] extra HTTP headers for the upgrade
   * @param {object} [options.wsOptions] extra `ws` options, e.g. {ca} or {rejectUnauthorized:false}
   */
  constructor(url, options = {}) {
    this.url = url;
    this.label = options.label ?? url;
    this.queue = [];
    this.waiters = [];
    this.pingWaiters = [];
    this.pingsReceived = 0;
    this.skipped = [];
    this.closeInfo = null;
    this.error = null;
    this.isOpen = false;

    this.ws = new WebSocket(url, {
      autoPong: options.autoPong ?? true,
      perMessageDeflate: false,
      maxPayload: 512 * 1024 * 1024,
      handshakeTimeout: options.handshakeTimeoutMs ?? 5000,
      headers: options.headers,
      ...options.wsOptions,
    });

    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => {
        this.isOpen = true;
        resolve(this);
      });
      this.ws.once('error', (err) => {
        if (!this.isOpen) reject(new Error(`${this.label}: WebSocket open failed: ${err.message}`, { cause: err }));
      });
    });
    // Avoid unhandled rejections when a test does not await `opened`.
    this.opened.catch(() => {});

    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this._wake();
      });
    });

    this.ws.on('error', (err) => {
      this.error = err;
    });
    this.ws.on('message', (data, isBinary) => {
      const entry = { binary: isBinary };
      if (isBinary) {
        entry.raw = data;
      } else {
        entry.raw = data.toString('utf8');
        try {
          entry.data = JSON.parse(entry.raw);
        } catch (err) {
          entry.parseError = err;
        }
      }
      this.queue.push(entry);
      this._wake();
    });
    this.ws.on('ping', () => {
      this.pingsReceived += 1;
      const waiters = this.pingWaiters;
      this.pingWaiters = [];
      for (const w of waiters) w();
    });
  }

  _wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves with the next queued frame entry, or rejects on deadline / close. */
  async nextEntry(timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a message') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length > 0) return this.queue.shift();
      if (this.closeInfo) {
        throw new Error(
          `${this.label}: connection closed (code ${this.closeInfo.code}, reason ${JSON.stringify(this.closeInfo.reason)}) while waiting for ${what}`,
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`${this.label}: no ${what} within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Next frame, parsed as JSON (asserts it is a JSON text frame). */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS) {
    const entry = await this.nextEntry(timeoutMs);
    assert.ok(!entry.binary, `${this.label}: expected a text frame, got ${describeEntry(entry)}`);
    assert.ok(!entry.parseError, `${this.label}: server sent invalid JSON: ${describeEntry(entry)}`);
    return entry.data;
  }

  /** Next frame's raw text, exactly as received. */
  async nextRaw(timeoutMs = DEFAULT_TIMEOUT_MS) {
    const entry = await this.nextEntry(timeoutMs);
    assert.ok(!entry.binary, `${this.label}: expected a text frame, got ${describeEntry(entry)}`);
    return entry.raw;
  }

  /**
   * Next message of the given type; messages of other types before it are
   * skipped (kept in `this.skipped` for diagnostics). Use only where other
   * messages are irrelevant to the assertion.
   */
  async nextOfType(type, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const remaining = Math.max(1, deadline - Date.now());
      const entry = await this.nextEntry(remaining, `a message of type ${JSON.stringify(type)}`);
      if (!entry.binary && entry.data && entry.data.type === type) return entry.data;
      this.skipped.push(entry);
    }
  }

  /**
   * Asserts that no message is waiting after `ms` milliseconds. Only for tests
   * where absence over time IS the assertion; prefer expectQuiet().
   */
  async expectNoMessage(ms) {
    await new Promise((resolve) => setTimeout(resolve, ms));
    assert.equal(this.queue.length, 0, `${this.label}: unexpected message: ${describeEntry(this.queue[0])}`);
  }

  /**
   * Proves that nothing was delivered to this connection before now: sends a
   * ping with a unique `t` and asserts the very next frame is the matching
   * pong. Anything queued before the pong fails the assertion.
   */
  async expectQuiet(timeoutMs = DEFAULT_TIMEOUT_MS) {
    pingCounter += 1;
    const t = 1000000 + pingCounter;
    this.send(`{"type":"ping","t":${t}}`);
    const entry = await this.nextEntry(timeoutMs, 'the pong of a quiet-check ping');
    assert.ok(
      !entry.binary && entry.data && entry.data.type === 'pong' && entry.data.t === t,
      `${this.label}: expected nothing before our pong (t=${t}), got ${describeEntry(entry)}`,
    );
  }

  /** Ping round trip that returns the pong (asserts the next frame is the pong). */
  async roundTrip(timeoutMs = DEFAULT_TIMEOUT_MS) {
    return this.expectQuiet(timeoutMs);
  }

  /** Waits until the server has sent `count` WebSocket pings in total. */
  async waitForPings(count, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (this.pingsReceived < count) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(`${this.label}: got ${this.pingsReceived} WebSocket pings, wanted ${count} within ${timeoutMs} ms`);
      }
      if (this.closeInfo) throw new Error(`${this.label}: closed (${this.closeInfo.code}) while waiting for pings`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.pingWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a string as-is (text frame) or an object as JSON. */
  send(msg) {
    const text = typeof msg === 'string' ? msg : JSON.stringify(msg);
    this.ws.send(text);
  }

  /** Sends raw bytes in a TEXT frame (no UTF-8 check on our side). */
  sendTextBytes(buf) {
    this.ws.send(buf, { binary: false });
  }

  sendBinary(buf) {
    this.ws.send(buf, { binary: true });
  }

  /** Resolves when everything given to send() has been handed to the kernel. */
  async flush(timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    while (this.ws.bufferedAmount > 0) {
      if (Date.now() > deadline) throw new Error(`${this.label}: send buffer not flushed within ${timeoutMs} ms`);
      if (this.closeInfo) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Waits for the close with a deadline; returns {code, reason}. */
  async waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.label}: not closed within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Clean close (sends a close frame) and waits for the close handshake. */
  async close(code = 1000, timeoutMs = DEFAULT_TIMEOUT_MS) {
    if (this.closeInfo) return this.closeInfo;
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    } else {
      this.ws.close(code);
    }
    try {
      return await this.waitClosed(timeoutMs);
    } catch (err) {
      this.ws.terminate();
      throw err;
    }
  }

  /** Drops the TCP connection without a close frame. */
  terminate() {
    this.ws.terminate();
  }

  /** Stops reading from the socket (the kernel buffers fill up, then the server's queue). */
  pauseReading() {
    this.paused = true;
    this.ws._socket.pause();
  }

  resumeReading() {
    this.paused = false;
    this.ws._socket.resume();
  }

  get pending() {
    return this.queue.length;
  }
}

/** Asserts `msg` is an error frame with the given code (and id, when given). */
export function assertError(msg, code, { id } = {}) {
  assert.equal(msg.type, 'error', `expected an error frame, got ${JSON.stringify(msg)}`);
  assert.equal(msg.code, code, `expected error code ${code}, got ${JSON.stringify(msg)}`);
  assert.equal(typeof msg.message, 'string', `error without a human message: ${JSON.stringify(msg)}`);
  assert.ok(msg.message.length > 0, `error with an empty message: ${JSON.stringify(msg)}`);
  if (id !== undefined) assert.equal(msg.id, id, `expected error id ${id}, got ${JSON.stringify(msg)}`);
}

/**
 * A refused join: exactly one `error` frame with `code`, then a close frame
 * with `closeCode`, and nothing else.
 */
export async function expectRefused(client, code, closeCode, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const msg = await client.next(timeoutMs);
  assertError(msg, code);
  const info = await client.waitClosed(timeoutMs);
  assert.equal(info.code, closeCode, `${client.label}: expected close ${closeCode} after ${code}, got ${JSON.stringify(info)}`);
  assert.equal(client.pending, 0, `${client.label}: unexpected frames after the refusal: ${describeEntry(client.queue[0])}`);
}

/** Asserts the next frame is an error with the given code. */
export async function expectErrorFrame(client, code, opts = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const msg = await client.next(timeoutMs);
  assertError(msg, code, opts);
  return msg;
}
