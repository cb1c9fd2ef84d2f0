// rendezvous.js: the browser client of a Rendezvous signaling server.
// One ES module, no build step, no dependencies. API: docs/client-js.md.
//
//   import { Rendezvous } from './rendezvous.js';
//   const rdv = new Rendezvous({ room: 'demo' });
//   rdv.on('open', ({ peer }) => rdv.send(peer, 'hello'));
//   rdv.on('message', ({ peer, data }) => console.log(peer, data));
//
// What it does (wire protocol: docs/protocol.md):
// - Joins `/rooms/{room}` over a WebSocket, answers `welcome`, `peer-joined`
//   and `peer-left`, and reconnects by itself with exponential backoff and
//   jitter, resuming its place with the token of its last `welcome`.
// - Per remote peer (a room is a mesh): role assignment by exchanged random
//   numbers (`role` / `seed`, as RTCEngine's assignRole; the lower number is
//   polite and creates the data channel, so it offers first), then the W3C
//   Perfect Negotiation pattern on one RTCPeerConnection.
// - Payloads are the C++ client's and libdatachannel's: `offer` / `answer`
//   with `description` (SDP text), `candidate` with `candidate` + `mid`.
//   Like the C++ client it adds, and understands, four optional fields:
//   `session` (one per instance, so a reloaded page is seen as a new
//   partner), `peerSeed` in `role` (the partner's number as we know it, so
//   each side knows when to answer), `iceRestart` in `role` (this side can
//   apply an ICE restart; libdatachannel cannot), and `seed` on
//   offer/answer/candidate (which pairing a message belongs to, so late
//   messages of an earlier pairing are dropped). Peers that send none of
//   them (plain libdatachannel applications) work too.
// - Recovery: a failed connection is ICE-restarted when both sides can;
//   otherwise (a libdatachannel peer, or the restart did not help) both sides
//   agree on a fresh RTCPeerConnection by exchanging new role numbers.

const ROLE_POLITE = 'polite';
const ROLE_IMPOLITE = 'impolite';
const NAME_RE = /^[A-Za-z0-9._~-]{1,64}$/;

// Refusals that retrying cannot fix (close code 4000 + HTTP-like status).
const FATAL_CODES = new Set(['bad-request', 'unauthorized', 'forbidden']);
const CLOSE_CODE_NAMES = {
  4400: 'bad-request', 4401: 'unauthorized', 4403: 'forbidden', 4409: 'id-taken',
  4429: 'too-many', 4503: 'unavailable',
};

function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  // getRandomValues works in insecure contexts too (a demo served over plain
  // http on a LAN address); crypto.randomUUID and crypto.subtle do not.
  globalThis.crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

// A number in [0, 1), never 0 exactly (so that a partner's 1e-9 can still be
// lower). Math.random would do; crypto is just as cheap.
function drawSeed() {
  const a = new Uint32Array(2);
  globalThis.crypto.getRandomValues(a);
  const r = (a[0] * 2 ** 21 + (a[1] >>> 11)) / 2 ** 53;
  return r > 0 ? r : drawSeed();
}

// The server URL without a trailing slash: ws(s)://host[:port][/prefix].
function baseUrl(url) {
  if (!url) {
    const loc = globalThis.location;
    if (!loc || !/^https?:$/.test(loc.protocol)) throw new TypeError('Rendezvous: `url` is required outside a web page');
    return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}`;
  }
  let u = String(url);
  if (u.startsWith('http://')) u = `ws://${u.slice(7)}`;
  else if (u.startsWith('https://')) u = `wss://${u.slice(8)}`;
  if (!/^wss?:\/\//.test(u)) throw new TypeError(`Rendezvous: url must start with ws:// or wss:// (got ${url})`);
  return u.replace(/\/+$/, '');
}

export class Rendezvous extends EventTarget {
  /**
   * @param {object} options  see docs/client-js.md
   */
  constructor(options = {}) {
    super();
    const o = { ...options };
    if (!o.room || !NAME_RE.test(o.room)) {
      throw new TypeError('Rendezvous: `room` must be 1-64 characters of A-Z a-z 0-9 . _ ~ -');
    }
    if (o.id != null && !NAME_RE.test(o.id)) {
      throw new TypeError('Rendezvous: `id` must be 1-64 characters of A-Z a-z 0-9 . _ ~ -');
    }
    this.url = baseUrl(o.url);
    this.room = o.room;
    this.token = o.token ?? null;
    this.label = o.label ?? 'rendezvous';
    this.storage = o.storage ?? null;
    this.extraIceServers = o.iceServers ?? null;
    this.rtcConfig = o.rtcConfiguration ?? {};
    this.backoffInitial = o.backoffInitial ?? 200;
    this.backoffMax = o.backoffMax ?? 5000;
    this.pingInterval = o.pingInterval ?? 10000;
    this.disconnectedTimeout = o.disconnectedTimeout ?? 8000;
    this.maxRecoveries = o.maxRecoveries ?? 5;
    this.maxQueued = o.maxQueued ?? 256;
    this._log = typeof o.log === 'function' ? o.log : () => {};
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this._RTCPeerConnection = o.RTCPeerConnection ?? globalThis.RTCPeerConnection;

    // Identity: an explicit id wins; else the one remembered in `storage`
    // (a page reload keeps its id and resume token); else the server's.
    const saved = this._loadSaved();
    this._idGiven = o.id != null;
    this.id = o.id ?? saved?.id ?? null;
    this.resumeToken = o.resume ?? (saved && (o.id == null || saved.id === o.id) ? saved.resume : null);
    this.session = randomHex(8);

    this.state = 'connecting';          // connecting | open | reconnecting | closed
    this.iceServers = [];               // from the last welcome (+ options.iceServers)
    this._members = [];                 // the other peers in the room, oldest first
    this._peers = new Map();            // id -> negotiation state
    this._ws = null;
    this._queue = [];                   // signaling frames waiting for the socket
    this._welcomed = false;
    this._everWelcomed = false;
    this._attempt = 0;
    this._failures = 0;                 // connection attempts in a row without a welcome
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastHeard = 0;
    this._closed = false;
    this._onPageHide = () => this.close();
    this._onOnline = () => { if (this.state === 'reconnecting' || this.state === 'connecting') this._connectNow(); };
    if (o.closeOnPageHide !== false && typeof globalThis.addEventListener === 'function') {
      globalThis.addEventListener('pagehide', this._onPageHide);
      globalThis.addEventListener('online', this._onOnline);
    }

    if (typeof this._RTCPeerConnection !== 'function') {
      queueMicrotask(() => this._fatal('webrtc-unavailable', 'this browser has no RTCPeerConnection'));
      return;
    }
    if (typeof this._WebSocket !== 'function') {
      queueMicrotask(() => this._fatal('websocket-unavailable', 'this browser has no WebSocket'));
      return;
    }
    queueMicrotask(() => this._connect());
  }

  // ---- public API ----

  /** Subscribes to an event; returns a function that unsubscribes. */
  on(type, handler) {
    const l = (e) => handler(e.detail);
    this.addEventListener(type, l);
    return () => this.removeEventListener(type, l);
  }

  /** Resolves with the detail of the next `type` event matching `filter`. */
  once(type, filter = () => true) {
    return new Promise((resolve) => {
      const off = this.on(type, (d) => { if (filter(d)) { off(); resolve(d); } });
    });
  }

  /** The other peers in the room (oldest first), as the server reports them. */
  get members() { return [...this._members]; }

  /** Per remote peer: { id, role, connectionState, channelOpen }. */
  get peers() {
    return this._members.map((id) => this.peerInfo(id));
  }

  peerInfo(id) {
    const st = this._peers.get(id);
    return {
      id,
      role: st?.role ?? null,
      connectionState: st?.pc ? st.connectionState : (st?.gaveUp ? 'failed' : 'new'),
      channelOpen: !!st?.channelOpen,
    };
  }

  /** The open RTCDataChannel to `peer`, or null (e.g. for bufferedAmount). */
  channel(peer) {
    const st = this._peers.get(peer);
    return st?.channelOpen ? st.dc : null;
  }

  /** Peers whose data channel is open. */
  get connectedPeers() {
    return [...this._peers.values()].filter((s) => s.channelOpen).map((s) => s.id);
  }

  /**
   * send(peer, data) sends to one peer; send(data) or send(null, data) to
   * every peer with an open channel. data: string, ArrayBuffer, typed array
   * or Blob. Returns how many channels it was handed to.
   */
  send(peer, data) {
    if (arguments.length === 1) { data = peer; peer = null; }
    const targets = peer == null ? this.connectedPeers : [peer];
    let n = 0;
    for (const id of targets) {
      const st = this._peers.get(id);
      if (!st?.channelOpen) continue;
      try { st.dc.send(data); n += 1; } catch (e) { this._log('warn', `send to ${id} failed: ${e.message}`); }
    }
    return n;
  }

  /** Leaves the room for good: `bye`, WebSocket close, every connection closed. */
  close() {
    if (this._closed) return;
    this._closed = true;
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('pagehide', this._onPageHide);
      globalThis.removeEventListener('online', this._onOnline);
    }
    clearTimeout(this._retryTimer);
    this._stopPing();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        // `bye` first, so partners forget us before our connections drop.
        if (ws.readyState === 1 && this._welcomed) ws.send(JSON.stringify({ type: 'bye' }));
        ws.close(1000, 'bye');
      } catch { /* already closing */ }
    }
    for (const st of this._peers.values()) this._closeConnection(st);
    this._peers.clear();
    this._welcomed = false;
    this._setState('closed');
  }

  // ---- events ----

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('state', { state: s });
  }

  _fatal(code, message, extra = {}) {
    this._emit('error', { code, message, fatal: true, ...extra });
    this.close();
  }

  _emitPeers() {
    this._emit('peers', { peers: this.peers });
  }

  // ---- storage (optional: survives a page reload) ----

  _storageKey() { return `rendezvous:${this.url}:${this.room}`; }

  _loadSaved() {
    if (!this.storage) return null;
    try {
      const v = JSON.parse(this.storage.getItem(this._storageKey()) ?? 'null');
      return v && typeof v.id === 'string' && NAME_RE.test(v.id) ? v : null;
    } catch { return null; }
  }

  _save() {
    if (!this.storage) return;
    try {
      this.storage.setItem(this._storageKey(), JSON.stringify({ id: this.id, resume: this.resumeToken }));
    } catch { /* storage full or denied: nothing to remember */ }
  }

  // ---- signaling socket ----

  _roomUrl() {
    const q = new URLSearchParams();
    if (this.id) q.set('peer', this.id);
    if (this.token) q.set('token', this.token);
    if (this.id && this.resumeToken) q.set('resume', this.resumeToken);
    const qs = q.toString();
    return `${this.url}/rooms/${encodeURIComponent(this.room)}${qs ? `?${qs}` : ''}`;
  }

  _connectNow() {
    if (this._closed || this._ws) return;
    clearTimeout(this._retryTimer);
    this._connect();
  }

  _connect() {
    if (this._closed || this._ws) return;
    this._attempt += 1;
    this._welcomed = false;
    this._refusal = null;
    const url = this._roomUrl();
    this._log('info', `connecting to ${url.replace(/([?&](token|resume)=)[^&]*/g, '$1…')}`);
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (e) {
      this._fatal('bad-request', `cannot open ${url}: ${e.message}`);
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onclose = (ev) => this._onSocketClosed(ws, ev.code, ev.reason);
    ws.onerror = () => { /* onclose follows with the details */ };
  }

  _detach(ws) {
    ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
  }

  _sendSignal(msg) {
    const text = JSON.stringify(msg);
    if (this._ws && this._welcomed && this._ws.readyState === 1) {
      this._ws.send(text);
      return;
    }
    // Queued until the next welcome; the oldest go first when it overflows.
    this._queue.push(text);
    if (this._queue.length > this.maxQueued) this._queue.shift();
  }

  _flushQueue() {
    const q = this._queue;
    this._queue = [];
    for (const text of q) this._ws.send(text);
  }

  _startPing() {
    this._stopPing();
    this._lastHeard = Date.now();
    if (!(this.pingInterval > 0)) return;
    this._pingTimer = setInterval(() => {
      const ws = this._ws;
      if (!ws || ws.readyState !== 1) return;
      if (Date.now() - this._lastHeard > 2 * this.pingInterval + 1000) {
        // Nothing heard for two intervals: the connection is dead without
        // knowing it. Drop it and resume on a new one.
        this._log('warn', 'no answer from the server: reconnecting');
        this._detach(ws);
        try { ws.close(4000, 'dead'); } catch { /* ignore */ }
        this._onSocketClosed(ws, 1006, 'keepalive timeout');
        return;
      }
      ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
    }, this.pingInterval);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _onSocketClosed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._detach(ws);
    this._ws = null;
    this._stopPing();
    const wasWelcomed = this._welcomed;
    this._welcomed = false;
    if (this._closed) return;

    if (code >= 4000 && code < 5000) {
      const refusal = this._refusal;
      this._refusal = null;
      const errCode = refusal?.code ?? CLOSE_CODE_NAMES[code] ?? 'internal';
      const message = refusal?.message ?? (reason || `closed by the server (${code})`);
      // 4409 with no error frame while we were in: another connection took
      // our place with our resume token (e.g. a duplicated tab).
      if (code === 4409 && !refusal && wasWelcomed) {
        this._fatal('id-taken', 'another connection took this peer\'s place', { closeCode: code });
        return;
      }
      if (errCode === 'id-taken' && !this._everWelcomed) {
        if (!this._idGiven) {
          // A remembered id that is still held by someone: take a new one.
          this._log('info', `id ${this.id} is taken; joining under a new one`);
          this.id = null;
          this.resumeToken = null;
        } else {
          this._fatal(errCode, message, { closeCode: code });
          return;
        }
      } else if (FATAL_CODES.has(errCode) || (errCode === 'room-full' && !this._everWelcomed)) {
        this._fatal(errCode, message, { closeCode: code });
        return;
      } else {
        this._emit('error', { code: errCode, message, fatal: false, closeCode: code });
      }
    } else {
      this._log('info', `signaling connection ${wasWelcomed ? 'lost' : 'failed'} (${code}${reason ? ` ${reason}` : ''})`);
      if (!wasWelcomed) {
        // Not even a welcome: the server is down, unreachable or refusing.
        this._failures += 1;
        this._emit('error', {
          code: 'unreachable', message: `cannot reach the server at ${this.url}`, fatal: false, attempts: this._failures, closeCode: code,
        });
      }
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    this._setState(this._everWelcomed ? 'reconnecting' : 'connecting');
    // initial * 2^attempt, capped; then a random point in [cap/2, cap].
    let cap = this.backoffInitial;
    for (let i = 1; i < this._attempt && cap < this.backoffMax; i += 1) cap *= 2;
    cap = Math.min(cap, this.backoffMax);
    const delay = Math.round(cap / 2 + (cap / 2) * Math.random());
    this._log('info', `reconnecting in ${delay} ms`);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  _onFrame(data) {
    this._lastHeard = Date.now();
    if (typeof data !== 'string') return;
    let m;
    try { m = JSON.parse(data); } catch { return; }
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    switch (m.type) {
      case 'welcome': this._onWelcome(m); break;
      case 'peer-joined': if (typeof m.id === 'string') this._onPeerJoined(m.id); break;
      case 'peer-left': if (typeof m.id === 'string') this._onPeerLeft(m.id, m.reason ?? 'closed'); break;
      case 'pong': break;
      case 'error': this._onServerError(m); break;
      default:
        if (typeof m.id === 'string') this._onSignal(m);
    }
  }

  _onServerError(m) {
    if (!this._welcomed) {
      this._refusal = { code: m.code ?? 'internal', message: m.message ?? '' };
      return;
    }
    const detail = { code: m.code ?? 'internal', message: m.message ?? '', fatal: false };
    if (typeof m.id === 'string') detail.peer = m.id;
    this._emit('error', detail);
    if (m.code === 'peer-not-found' && typeof m.id === 'string') {
      // It is not in the room (any more): keep a working connection, drop the rest.
      const st = this._peers.get(m.id);
      if (st && !st.channelOpen) this._forget(m.id);
    }
  }

  _onWelcome(m) {
    const resumedSelf = m.resumed === true && this._everWelcomed;
    this.id = m.id;
    this.resumeToken = m.resume ?? null;
    this._save();
    this.iceServers = Array.isArray(m.iceServers) ? m.iceServers : [];
    this._welcomed = true;
    this._everWelcomed = true;
    this._attempt = 0;
    this._failures = 0;
    const peers = Array.isArray(m.peers) ? m.peers.filter((p) => typeof p === 'string' && p !== this.id) : [];
    this._members = peers;
    this._setState('open');
    this._startPing();
    this._flushQueue();
    this._emit('welcome', { id: m.id, room: m.room, peers: [...peers], resumed: m.resumed === true, iceServers: this.iceServers });

    if (!resumedSelf) {
      // A fresh welcome after a reconnect (the server restarted, or our place
      // timed out): keep the connections that still work; the others are
      // negotiated again with whoever is listed.
      for (const [id, st] of [...this._peers]) {
        if (!peers.includes(id) && !st.channelOpen) this._forget(id);
      }
    }
    // Pair with every listed peer we do not know (all of them on a reloaded
    // page, which resumes its place but has no connections). After our own
    // resume nothing was lost: connections in progress go on.
    for (const p of peers) this._pairWith(p, /*repair=*/!resumedSelf);
    this._emitPeers();
  }

  _onPeerJoined(peer) {
    if (!peer || peer === this.id) return;
    if (!this._members.includes(peer)) this._members.push(peer);
    this._emit('peer-joined', { peer });
    this._pairWith(peer, true);
    this._emitPeers();
  }

  _pairWith(peer, repair) {
    const st = this._peers.get(peer);
    if (!st) {
      this._sendRole(this._createState(peer));
    } else if (repair && !st.channelOpen) {
      // A new instance of the partner under the same id (or a restarted
      // server): draw again. A connection that still works is kept.
      this._newPairing(st, true);
    }
  }

  _onPeerLeft(peer, reason) {
    this._members = this._members.filter((p) => p !== peer);
    this._forget(peer);
    this._emit('peer-left', { peer, reason });
    this._emitPeers();
  }

  // ---- roles ----

  _createState(peer) {
    const st = {
      id: peer,
      mySeed: drawSeed(),
      theirSeed: null,
      theirSession: null,
      theirIceRestart: false,
      role: null,
      pc: null,
      dc: null,
      gen: 0,
      connectionState: 'new',
      channelOpen: false,
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswer: false,
      localSent: false,
      localCandidates: [],
      chain: Promise.resolve(),
      pairing: 0,                       // bumped when a connection is dropped for good
      everConnected: false,
      iceRestartTried: false,
      recoveries: 0,
      gaveUp: false,
      disconnectedTimer: null,
    };
    this._peers.set(peer, st);
    return st;
  }

  _sendRole(st) {
    const m = { id: st.id, type: 'role', seed: st.mySeed, session: this.session, iceRestart: true };
    if (st.theirSeed != null) m.peerSeed = st.theirSeed;
    this._sendSignal(m);
  }

  _newPairing(st, forgetPartnerSeed) {
    this._closeConnection(st);
    st.mySeed = drawSeed();
    if (forgetPartnerSeed) {
      st.theirSeed = null;
      st.role = null;
    }
    st.gaveUp = false;
    this._sendRole(st);
    if (!forgetPartnerSeed) this._decide(st);
  }

  _onRole(from, m) {
    if (typeof m.seed !== 'number' || !(m.seed >= 0 && m.seed < 1)) {
      this._emit('error', { code: 'bad-role', message: 'role message without a seed in [0,1)', fatal: false, peer: from });
      return;
    }
    const seed = m.seed;
    const session = typeof m.session === 'string' ? m.session : '';
    const peerSeed = typeof m.peerSeed === 'number' ? m.peerSeed : null;
    let st = this._peers.get(from);
    const fresh = !st;
    if (fresh) st = this._createState(from);
    if (!this._members.includes(from)) { this._members.push(from); this._emitPeers(); }
    const replaced = st.theirSession !== null && session !== st.theirSession;
    const changed = st.theirSeed !== null && st.theirSeed !== seed;
    if (!fresh && !replaced && !changed && st.theirSeed !== null) {
      // The same number again: nothing changes, but make sure it knows ours.
      if (peerSeed !== st.mySeed) this._sendRole(st);
      return;
    }
    if (replaced) {
      // Another instance of this peer (e.g. its page reloaded): start over.
      this._closeConnection(st);
      st.mySeed = drawSeed();
      st.role = null;
    } else if (changed) {
      // It started a new pairing (recovery): a fresh connection on both sides.
      this._closeConnection(st);
      st.role = null;
    }
    st.gaveUp = false;
    st.theirSession = session;
    st.theirIceRestart = m.iceRestart === true;
    st.theirSeed = seed;
    if (seed === st.mySeed) {
      // A tie: both sides see it and draw again.
      st.mySeed = drawSeed();
      this._sendRole(st);
      return;
    }
    if (peerSeed !== st.mySeed) this._sendRole(st);
    this._decide(st);
  }

  _decide(st) {
    if (st.theirSeed === null) return;
    if (st.theirSeed === st.mySeed) {
      st.mySeed = drawSeed();
      this._sendRole(st);
      return;
    }
    const role = st.mySeed < st.theirSeed ? ROLE_POLITE : ROLE_IMPOLITE;
    if (role !== st.role) {
      this._closeConnection(st);
      st.role = role;
      this._emit('role', { peer: st.id, role });
    }
    if (!st.pc) this._openConnection(st);
  }

  // ---- peer connections ----

  _rtcConfiguration() {
    const iceServers = [...this.iceServers, ...(this.extraIceServers ?? [])];
    return { ...this.rtcConfig, iceServers };
  }

  _openConnection(st, { createChannel = st.role === ROLE_POLITE, replacing = false } = {}) {
    const pc = new this._RTCPeerConnection(this._rtcConfiguration());
    st.pc = pc;
    st.gen += 1;
    st.dc = null;
    st.channelOpen = false;
    st.makingOffer = st.ignoreOffer = st.settingRemoteAnswer = false;
    st.localSent = false;
    st.localCandidates = [];
    st.connectionState = 'new';
    st.everConnected = false;
    st.iceRestartTried = false;
    st.negotiated = false;
    // Signaling messages of this pairing wait in `chain`; a replacement
    // connection of the same pairing takes over the ones already queued.
    if (!replacing) st.chain = Promise.resolve();
    const current = () => st.pc === pc;

    pc.onnegotiationneeded = async () => {
      if (!current()) return;
      try {
        st.makingOffer = true;
        await pc.setLocalDescription();
        if (!current()) return;
        this._sendDescription(st, pc.localDescription);
      } catch (e) {
        if (current()) this._engineError(st, `creating an offer failed: ${e.message}`);
      } finally {
        st.makingOffer = false;
      }
    };
    pc.onicecandidate = (ev) => {
      if (!current() || !ev.candidate || !ev.candidate.candidate) return;  // end of candidates: not sent
      const msg = { id: st.id, type: 'candidate', candidate: ev.candidate.candidate, mid: ev.candidate.sdpMid ?? '0', seed: st.mySeed };
      if (st.localSent) this._sendSignal(msg);
      else st.localCandidates.push(msg);
    };
    pc.onconnectionstatechange = () => {
      if (!current()) return;
      this._onConnectionState(st, pc.connectionState);
    };
    pc.ondatachannel = (ev) => { if (current()) this._wireChannel(st, pc, ev.channel); };
    this._emit('connectionstate', { peer: st.id, state: 'new' });
    this._emitPeers();
    // The polite side creates the channel, which fires negotiationneeded: it offers first.
    if (createChannel) this._wireChannel(st, pc, pc.createDataChannel(this.label));
  }

  _sendDescription(st, desc) {
    this._sendSignal({ id: st.id, type: desc.type, description: desc.sdp, seed: st.mySeed });
    st.localSent = true;
    const pending = st.localCandidates;
    st.localCandidates = [];
    for (const c of pending) this._sendSignal(c);
  }

  _wireChannel(st, pc, dc) {
    if (st.dc && st.dc !== dc) {
      // One channel per pair: a second one (e.g. from a glare) is kept open
      // for the partner's sake but not used for sending.
      dc.onmessage = (ev) => { if (st.pc === pc) this._emit('message', { peer: st.id, data: ev.data }); };
      return;
    }
    st.dc = dc;
    dc.binaryType = 'arraybuffer';
    const current = () => st.pc === pc && st.dc === dc;
    dc.onopen = () => {
      if (!current() || st.channelOpen) return;
      st.channelOpen = true;
      st.recoveries = 0;
      this._emit('open', { peer: st.id, channel: dc });
      this._emitPeers();
    };
    dc.onmessage = (ev) => { if (st.pc === pc) this._emit('message', { peer: st.id, data: ev.data }); };
    dc.onclose = () => {
      if (!current() || !st.channelOpen) return;
      st.channelOpen = false;
      this._emit('close', { peer: st.id });
      this._emitPeers();
      this._recover(st, 'channel closed');
    };
    if (dc.readyState === 'open') dc.onopen();
  }

  _onConnectionState(st, s) {
    if (st.connectionState === s) return;
    st.connectionState = s;
    clearTimeout(st.disconnectedTimer);
    if (s === 'connected') {
      st.everConnected = true;
      st.iceRestartTried = false;
    }
    this._emit('connectionstate', { peer: st.id, state: s });
    this._emitPeers();
    if (s === 'failed') {
      this._recover(st, 'connection failed');
    } else if (s === 'disconnected' && this.disconnectedTimeout > 0) {
      // Chromium takes ~30 s to go from disconnected to failed; do not wait that long.
      const pc = st.pc;
      st.disconnectedTimer = setTimeout(() => {
        if (st.pc === pc && st.connectionState === 'disconnected') this._recover(st, 'connection failed');
      }, this.disconnectedTimeout);
    }
  }

  _engineError(st, what) {
    this._emit('error', { code: 'webrtc', message: what, fatal: false, peer: st.id });
    this._recover(st, 'engine error');
  }

  _recover(st, why) {
    st.recoveries += 1;
    if (st.recoveries > this.maxRecoveries) {
      this._closeConnection(st);
      st.gaveUp = true;
      this._emit('error', { code: 'peer-failed', message: `${why}; gave up after ${this.maxRecoveries} attempts (until it joins again)`, fatal: false, peer: st.id });
      this._emitPeers();
      return;
    }
    if (why === 'connection failed' && st.everConnected && !st.iceRestartTried && st.theirIceRestart && st.pc?.restartIce) {
      st.iceRestartTried = true;
      this._emit('recovery', { peer: st.id, how: 'ice-restart', why });
      st.pc.restartIce();
      return;
    }
    this._emit('recovery', { peer: st.id, how: 'renegotiate', why });
    this._newPairing(st, false);
  }

  _closeConnection(st, { keepPairing = false } = {}) {
    clearTimeout(st.disconnectedTimer);
    if (!keepPairing) st.pairing += 1;
    const { pc, dc } = st;
    const wasOpen = st.channelOpen;
    st.pc = null;
    st.dc = null;
    st.channelOpen = false;
    st.localCandidates = [];
    st.connectionState = 'closed';
    if (dc) { try { dc.close(); } catch { /* ignore */ } }
    if (pc) {
      pc.onnegotiationneeded = pc.onicecandidate = pc.onconnectionstatechange = pc.ondatachannel = null;
      try { pc.close(); } catch { /* ignore */ }
    }
    if (wasOpen) this._emit('close', { peer: st.id });
  }

  _forget(peer) {
    const st = this._peers.get(peer);
    if (!st) return;
    this._closeConnection(st);
    this._peers.delete(peer);
  }

  // ---- perfect negotiation ----

  _onSignal(m) {
    const from = m.id;
    if (from === this.id) return;
    if (m.type === 'role') { this._onRole(from, m); return; }
    if (m.type === 'bye') { this._forget(from); this._emitPeers(); return; }
    if (m.type !== 'offer' && m.type !== 'answer' && m.type !== 'candidate') {
      this._emit('signal', { peer: from, message: m });
      return;
    }
    const st = this._peers.get(from);
    if (!st || !st.pc) return;  // not paired (yet): it belongs to no connection of ours
    if (typeof m.seed === 'number' && st.theirSeed !== null && m.seed !== st.theirSeed) return;  // an earlier pairing
    const { pairing } = st;
    // One message at a time per pairing, in arrival order.
    st.chain = st.chain.then(() => (st.pairing === pairing && st.pc ? this._applySignal(st, st.pc, m) : undefined)).catch((e) => {
      if (st.pairing === pairing && st.pc) this._engineError(st, `${m.type}: ${e.message}`);
    });
  }

  async _applySignal(st, pc, m) {
    if (m.type === 'candidate') {
      if (typeof m.candidate !== 'string' || m.candidate === '') {
        if (pc.remoteDescription) await pc.addIceCandidate().catch(() => {});
        return;
      }
      // libdatachannel writes the SDP attribute form "a=candidate:...".
      const candidate = m.candidate.replace(/^a=/, '').trim();
      const mid = typeof m.mid === 'string' ? m.mid : null;
      try {
        await pc.addIceCandidate({ candidate, sdpMid: mid, sdpMLineIndex: mid === null ? 0 : undefined });
      } catch (e) {
        if (st.ignoreOffer) return;  // it belongs to the offer we ignored
        // The mids differ between implementations; with one m-section the index says it.
        try { await pc.addIceCandidate({ candidate, sdpMLineIndex: 0 }); } catch {
          this._log('warn', `candidate from ${st.id} not applied: ${e.message}`);
        }
      }
      return;
    }
    if (typeof m.description !== 'string' || m.description === '') {
      this._emit('error', { code: 'bad-signal', message: `malformed ${m.type} message`, fatal: false, peer: st.id });
      return;
    }
    const description = { type: m.type, sdp: m.description };
    const readyForOffer = !st.makingOffer && (pc.signalingState === 'stable' || st.settingRemoteAnswer);
    const collision = description.type === 'offer' && !readyForOffer;
    st.ignoreOffer = st.role === ROLE_IMPOLITE && collision;
    if (st.ignoreOffer) {
      this._log('info', `ignored a colliding offer from ${st.id}`);
      return;
    }
    if (collision && !st.negotiated) {
      // Polite side of a collision on the very first offer. Chromium cannot
      // roll back an offer that introduced the SCTP m-section ("Failed to
      // start SCTP transport" on the answer), so instead of a rollback this
      // connection, which never connected, is replaced by a fresh one that
      // only answers; the partner's channel arrives through ondatachannel.
      // Same pairing (same numbers): nothing to tell the partner.
      this._log('info', `colliding first offer from ${st.id}: answering on a fresh connection`);
      this._closeConnection(st, { keepPairing: true });
      this._openConnection(st, { createChannel: false, replacing: true });
      await this._applySignal(st, st.pc, m);
      return;
    }
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      this._log('warn', `answer from ${st.id} without an offer of ours: ignored`);
      return;
    }
    st.settingRemoteAnswer = description.type === 'answer';
    try {
      await pc.setRemoteDescription(description);  // rolls our offer back if needed (polite side)
    } finally {
      st.settingRemoteAnswer = false;
    }
    if (st.pc !== pc) return;
    if (description.type === 'offer') {
      await pc.setLocalDescription();
      if (st.pc !== pc) return;
      this._sendDescription(st, pc.localDescription);
    }
    st.negotiated = true;
  }
}

export default Rendezvous;
