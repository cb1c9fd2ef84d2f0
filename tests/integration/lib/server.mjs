// Starts and stops the real rendezvous-server binary.
//
// The binary comes from env RENDEZVOUS_SERVER, else the default build path.
// It always listens on 127.0.0.1:0 (an ephemeral port); we read the port from
// the log line "listening on 127.0.0.1:PORT" (stdout or stderr), with a
// deadline. Processes are only ever ended by their own PID.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SERVER = path.resolve(HERE, '../../../build/server/rendezvous-server');
export const LISTENING_RE = /listening on 127\.0\.0\.1:(\d+)/;

const LOG_LIMIT = 256 * 1024;
const live = new Set();

// Safety net: if the test process goes away with servers still running, kill
// exactly those (by PID).
process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function serverBinary() {
  return process.env.RENDEZVOUS_SERVER || DEFAULT_SERVER;
}

/**
 * @param {string[]} extraArgs flags after `--listen 127.0.0.1:0`
 * @param {object} [opts]
 * @param {number} [opts.readyTimeoutMs=10000]
 * @returns {Promise<{port:number, proc:import('node:child_process').ChildProcess,
 *   pid:number, exited:Promise<{code:number|null, signal:string|null}>,
 *   exitInfo:null|{code:number|null, signal:string|null}, log:()=>string,
 *   stop:(opts?:{timeoutMs?:number, signal?:string})=>Promise<{code:number|null, signal:string|null, killed:boolean}>}>}
 */
export async function startServer(extraArgs = [], { readyTimeoutMs = 10000 } = {}) {
  const bin = serverBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `server binary not found at ${bin} (set RENDEZVOUS_SERVER or build with ` +
        '`cmake -S . -B build -G Ninja && cmake --build build`)',
    );
  }
  const args = ['--listen', '127.0.0.1:0', ...extraArgs];
  // Settings also come from RENDEZVOUS_* environment variables (and
  // RENDEZVOUS_CONFIG); keep the caller's environment from changing what a
  // test configured, including our own RENDEZVOUS_SERVER.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RENDEZVOUS_')));
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(proc);

  let log = '';
  const echo = process.env.RENDEZVOUS_TEST_LOG === '1';
  const onData = (chunk) => {
    const text = chunk.toString('utf8');
    if (echo) process.stderr.write(`[server ${proc.pid}] ${text}`);
    log += text;
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
  };
  // Always drain both pipes, or a chatty server would block on a full pipe.
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);

  const handle = {
    proc,
    pid: proc.pid,
    port: 0,
    args,
    exitInfo: null,
    log: () => log,
  };
  handle.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      handle.exitInfo = { code, signal };
      resolve(handle.exitInfo);
    });
  });

  handle.stop = async ({ timeoutMs = 5000, signal = 'SIGTERM' } = {}) => {
    if (handle.exitInfo) return { ...handle.exitInfo, killed: false, alreadyExited: true };
    proc.kill(signal);
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const info = await Promise.race([handle.exited, timedOut]);
    clearTimeout(timer);
    if (info) return { ...info, killed: false };
    proc.kill('SIGKILL');
    const killedInfo = await handle.exited;
    return { ...killedInfo, killed: true };
  };

  try {
    handle.port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`server did not log "listening on 127.0.0.1:PORT" within ${readyTimeoutMs} ms; args ${JSON.stringify(args)}; log:\n${log}`));
      }, readyTimeoutMs);
      const check = () => {
        const m = LISTENING_RE.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      proc.stdout.on('data', check);
      proc.stderr.on('data', check);
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${bin}: ${err.message}`));
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`server exited early (code ${code}, signal ${signal}); args ${JSON.stringify(args)}; log:\n${log}`));
      });
    });
  } catch (err) {
    await handle.stop({ timeoutMs: 2000 });
    throw err;
  }
  return handle;
}
