// The Rendezvous demo page: joins the room named in the URL (#demo, or
// ?room=demo), lists the peers, and offers a chat and a file send over the
// WebRTC data channel to each of them, showing every connection's state.
//
// URL parameters (query or after the room in the hash, e.g. #demo?peer=ann):
//   room    the room (default: the hash; else a new random one)
//   peer    your id (default: remembered for this tab, else the server's)
//   server  the signaling server, ws(s)://host:port (default: this page's origin)
//   token   a join token, when the server requires one
//
// Data channel messages (docs/client-js.md, "The demo page"): a text message
// is a chat line, so any peer that sends text (rendezvous-peer, a
// libdatachannel application) can chat. A file is a text header
// {"demo":"file",...}, then binary chunks, then {"demo":"file-end",...}.
import { Rendezvous } from './rendezvous.js';

const CHUNK = 16 * 1024;
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
const MAX_FILE = 512 * 1024 * 1024;

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
};

// ---- parameters ----

function params() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const [hashRoom, hashQuery = ''] = hash.split('?');
  const p = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(hashQuery)) p.set(k, v);
  let room = p.get('room') || hashRoom;
  if (!room) {
    const a = new Uint8Array(4);
    crypto.getRandomValues(a);
    room = `room-${Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('')}`;
    history.replaceState(null, '', `${location.pathname}${location.search}#${room}`);
  }
  return { room, peer: p.get('peer') || undefined, server: p.get('server') || undefined, token: p.get('token') || undefined };
}

// ---- page state ----

const STATE_TEXT = { open: 'in the room', connecting: 'connecting…', reconnecting: 'reconnecting…' };
const ui = {
  state: 'loading',   // the client's signaling state
  problem: null,      // a transient error shown until it clears (e.g. server unreachable)
  fatal: false,       // a fatal error: stays
  setState(state) {
    this.state = state;
    this.render();
  },
  render() {
    const shown = this.fatal || this.problem ? 'error' : this.state;
    document.body.dataset.state = shown;
    const s = $('#status');
    s.dataset.state = shown;
    s.textContent = shown === 'error' ? 'error' : (STATE_TEXT[shown] ?? shown);
  },
  error(message) {
    this.fatal = true;
    const e = $('#error');
    e.textContent = message;
    e.hidden = false;
    this.render();
  },
  trouble(message) {
    if (this.fatal) return;
    this.problem = message;
    const e = $('#error');
    e.textContent = message;
    e.hidden = !message;
    this.render();
  },
  note(text, bad = false) {
    add(el('li', { className: `note${bad ? ' bad' : ''}` }, text));
  },
};

function add(li) {
  const log = $('#log');
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 30;
  log.append(li);
  if (stick) log.scrollTop = log.scrollHeight;
  return li;
}

function chatLine(from, text, mine) {
  add(el('li', { className: `msg${mine ? ' mine' : ''}`, dataset: { from } },
    el('span', { className: 'from' }, mine ? `you → ${from}` : from),
    el('span', { className: 'text' }, text)));
}

const humanSize = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

// ---- start ----

let rdv;
let opts;
try {
  opts = params();
  $('#room').textContent = opts.room;
  // The link to share names the room (and a signaling server given with
  // ?server=), but not this tab's id or token.
  const shareQuery = opts.server ? `?${new URLSearchParams({ server: opts.server })}` : '';
  const share = `${location.origin}${location.pathname}${shareQuery}#${opts.room}`;
  $('#share').href = share;
  $('#share').textContent = share;
  rdv = new Rendezvous({
    url: opts.server,
    room: opts.room,
    id: opts.peer,
    token: opts.token,
    storage: sessionStorage,  // a reload keeps this tab's id and its place
    log: (level, msg) => (level === 'warn' ? console.warn : console.log)(`[rendezvous] ${msg}`),
  });
} catch (e) {
  ui.error(`Cannot start: ${e.message}`);
  throw e;
}
window.rendezvous = rdv;  // for the console (and the tests)
ui.setState('connecting');
addEventListener('hashchange', () => location.reload());
// Back from the back/forward cache: the old client closed on pagehide.
addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });

$('#copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('#share').href);
    $('#copy').textContent = 'Copied';
  } catch {
    getSelection().selectAllChildren($('#share'));
  }
});

rdv.on('state', ({ state }) => {
  if (state === 'reconnecting' && ui.state !== 'reconnecting') ui.note('Lost the server; reconnecting…');
  ui.setState(state);
});
rdv.on('welcome', ({ id, resumed }) => {
  ui.trouble(null);
  $('#me').textContent = id;
  ui.note(resumed ? `Back in room ${opts.room} as ${id}.` : `Joined room ${opts.room} as ${id}.`);
});
rdv.on('error', ({ code, message, fatal, peer, attempts }) => {
  console.warn(`[rendezvous] error ${code}${fatal ? ' (fatal)' : ''}${peer ? ` from ${peer}` : ''}: ${message}`);
  if (fatal) {
    const hints = {
      'id-taken': 'That peer id is in use in this room (another tab?). Pick another with ?peer=NAME.',
      'room-full': 'The room is full.',
      unauthorized: 'The server wants a token (?token=...).',
      forbidden: 'This token does not allow this room or id.',
      'bad-request': 'Room and peer names are 1-64 characters of A-Z a-z 0-9 . _ ~ -',
    };
    ui.error(`${message || code}${hints[code] ? ` — ${hints[code]}` : ''} (${code})`);
  } else if (code === 'unreachable') {
    // The first failures can be a blip; after three in a row, say so.
    if (attempts >= 3) ui.trouble(`Cannot reach the signaling server (${rdv.url}); still trying…`);
  } else {
    ui.note(`${peer ? `${peer}: ` : ''}${message || code}`, code !== 'peer-not-found');
  }
});
rdv.on('peer-joined', ({ peer }) => ui.note(`${peer} joined.`));
rdv.on('peer-left', ({ peer, reason }) => {
  incoming.delete(peer);
  ui.note(`${peer} left${reason && reason !== 'closed' ? ` (${reason})` : ''}.`);
});
rdv.on('open', ({ peer }) => ui.note(`Data channel to ${peer} is open.`));
rdv.on('close', ({ peer }) => {
  if (incoming.has(peer)) { incoming.get(peer).row.remove(); incoming.delete(peer); }
});
rdv.on('recovery', ({ peer, how, why }) => console.log(`[rendezvous] recovery of ${peer}: ${how} (${why})`));
rdv.on('recovery', ({ peer, how }) => ui.note(`Connection to ${peer} lost; ${how === 'ice-restart' ? 'restarting ICE' : 'reconnecting'}…`));
rdv.on('peers', ({ peers }) => renderPeers(peers));
rdv.on('message', ({ peer, data }) => onMessage(peer, data));

// ---- peers ----

function peerState(p) {
  if (p.channelOpen) return 'connected';
  return p.connectionState === 'closed' ? 'connecting' : p.connectionState;
}

function renderPeers(peers) {
  const ul = $('#peers');
  ul.replaceChildren(...peers.map((p) => {
    const state = peerState(p);
    return el('li', { dataset: { peer: p.id, state, channel: p.channelOpen ? 'open' : 'closed' } },
      el('span', { className: 'name' }, p.id),
      p.role ? el('span', { className: 'role', title: 'your role in this pair (perfect negotiation)' }, `you: ${p.role}`) : null,
      el('span', { className: 'badge', dataset: { state } }, state === 'new' ? 'connecting' : state));
  }));
  $('#peer-count').textContent = String(peers.length);
  $('#alone').hidden = peers.length > 0;
  const to = $('#to');
  const chosen = to.value;
  to.replaceChildren(el('option', { value: '' }, 'everyone'),
    ...peers.map((p) => el('option', { value: p.id }, p.id)));
  if (peers.some((p) => p.id === chosen)) to.value = chosen;
}
renderPeers([]);

// ---- chat ----

$('#composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('#text');
  const text = input.value;
  if (!text.trim()) return;
  const to = $('#to').value || null;
  const targets = to ? [to] : rdv.connectedPeers;
  const sent = targets.filter((p) => rdv.send(p, text) > 0);
  if (!sent.length) {
    ui.note(to ? `${to} is not connected yet.` : 'Nobody is connected yet.', true);
    return;
  }
  chatLine(to ?? (sent.length === 1 ? sent[0] : 'everyone'), text, true);
  input.value = '';
  input.focus();
});

// ---- files ----

const incoming = new Map();  // peer -> { meta, chunks, received, row, bar }

function onMessage(peer, data) {
  if (typeof data === 'string') {
    if (data.startsWith('{"demo":')) {
      let m = null;
      try { m = JSON.parse(data); } catch { /* chat after all */ }
      if (m && onControl(peer, m)) return;
    }
    chatLine(peer, data, false);
    return;
  }
  const f = incoming.get(peer);
  if (!f) {
    ui.note(`${peer} sent ${humanSize(data.byteLength)} of binary data.`);
    return;
  }
  f.chunks.push(data);
  f.received += data.byteLength;
  f.bar.value = f.received;
}

function onControl(peer, m) {
  if (m.demo === 'file') {
    const size = Number(m.size);
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE) return false;
    const name = String(m.name ?? 'file').slice(0, 200);
    const bar = el('progress', { max: size || 1, value: 0 });
    const row = add(el('li', { className: 'msg', dataset: { from: peer } },
      el('span', { className: 'from' }, peer), `receiving ${name} (${humanSize(size)}) `, bar));
    incoming.set(peer, { meta: { name, size, type: String(m.type ?? '') }, chunks: [], received: 0, row, bar });
    return true;
  }
  if (m.demo === 'file-end') {
    const f = incoming.get(peer);
    if (!f) return true;
    incoming.delete(peer);
    if (f.received !== f.meta.size) {
      f.row.replaceWith(el('li', { className: 'note bad' }, `${f.meta.name} from ${peer} arrived incomplete (${f.received} of ${f.meta.size} bytes).`));
      return true;
    }
    const blob = new Blob(f.chunks, { type: f.meta.type || 'application/octet-stream' });
    const url = URL.createObjectURL(blob);
    const link = el('a', { className: 'file', href: url, download: f.meta.name, dataset: { name: f.meta.name, size: String(f.meta.size) } },
      `${f.meta.name}`);
    const children = [el('span', { className: 'from' }, peer), link, ` (${humanSize(f.meta.size)})`];
    if (/^image\/(png|jpeg|gif|webp)$/.test(f.meta.type)) children.push(el('img', { className: 'preview', src: url, alt: f.meta.name }));
    f.row.replaceChildren(...children);
    f.row.classList.add('file-received');
    return true;
  }
  return false;
}

function drained(dc) {
  if (dc.bufferedAmount <= HIGH_WATER) return Promise.resolve();
  dc.bufferedAmountLowThreshold = LOW_WATER;
  return new Promise((resolve, reject) => {
    const done = () => { dc.removeEventListener('bufferedamountlow', done); dc.removeEventListener('close', fail); resolve(); };
    const fail = () => { dc.removeEventListener('bufferedamountlow', done); dc.removeEventListener('close', fail); reject(new Error('channel closed')); };
    dc.addEventListener('bufferedamountlow', done);
    dc.addEventListener('close', fail);
  });
}

async function sendFile(peer, file, bar) {
  const dc = rdv.channel(peer);
  if (!dc) throw new Error(`${peer} is not connected`);
  dc.send(JSON.stringify({ demo: 'file', name: file.name, size: file.size, type: file.type }));
  for (let off = 0; off < file.size; off += CHUNK) {
    await drained(dc);
    if (dc.readyState !== 'open') throw new Error('channel closed');
    const chunk = await file.slice(off, off + CHUNK).arrayBuffer();
    dc.send(chunk);
    bar.value = Math.min(off + CHUNK, file.size);
  }
  dc.send(JSON.stringify({ demo: 'file-end', name: file.name, size: file.size }));
}

$('#file').addEventListener('change', async (e) => {
  const files = [...e.target.files];
  e.target.value = '';
  const to = $('#to').value || null;
  const targets = to ? [to] : rdv.connectedPeers;
  if (!targets.length) {
    ui.note(to ? `${to} is not connected yet.` : 'Nobody is connected yet.', true);
    return;
  }
  for (const file of files) {
    if (file.size > MAX_FILE) { ui.note(`${file.name} is over ${humanSize(MAX_FILE)}.`, true); continue; }
    for (const peer of targets) {
      const bar = el('progress', { max: file.size || 1, value: 0 });
      const row = add(el('li', { className: 'msg mine', dataset: { from: peer } },
        el('span', { className: 'from' }, `you → ${peer}`), `${file.name} (${humanSize(file.size)}) `, bar));
      try {
        await sendFile(peer, file, bar);
        row.classList.add('file-sent');
        row.dataset.name = file.name;
        bar.replaceWith('sent');
      } catch (err) {
        row.replaceWith(el('li', { className: 'note bad' }, `${file.name} to ${peer} failed: ${err.message}`));
      }
    }
  }
});
