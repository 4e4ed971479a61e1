// Starts the real aird binary for a test: demo data, a temporary database,
// gRPC and HTTP on ports the kernel picks (read back from --port_file and
// --http_port_file), and a tokens file with an approver and a viewer.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// Options: extraArgs (more aird flags), logDir (where aird.log goes).
export async function startAird({ extraArgs = [], logDir } = {}) {
  const binary = process.env.AIRD;
  if (!binary) throw new Error('set AIRD to the aird binary');
  const dir = await mkdtemp(join(tmpdir(), 'aird-web-'));
  const tokens = {
    approver: randomBytes(32).toString('hex'),
    approver2: randomBytes(32).toString('hex'),
    viewer: randomBytes(32).toString('hex'),
  };
  await writeFile(join(dir, 'tokens'), [
    '# kind  credential  principal  role',
    `token sha256:${sha256(tokens.approver)} alice approver`,
    `token sha256:${sha256(tokens.approver2)} bob approver`,
    `token sha256:${sha256(tokens.viewer)} victor viewer`,
    '',
  ].join('\n'));
  const args = [
    '--demo',
    `--db=${join(dir, 'air.db')}`,
    '--listen=127.0.0.1:0',
    `--port_file=${join(dir, 'grpc.port')}`,
    '--http_listen=127.0.0.1:0',
    `--http_port_file=${join(dir, 'http.port')}`,
    `--tokens_file=${join(dir, 'tokens')}`,
    ...extraArgs,
  ];
  const log = createWriteStream(join(logDir || dir, 'aird.log'));
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));

  // Ready when the port files appear (aird writes them once serving).
  const deadline = Date.now() + 30000;
  let grpcPort = 0;
  let httpPort = 0;
  while (!grpcPort) {
    if (exited) throw new Error(`aird exited early (${JSON.stringify(exited)}); see ${log.path}`);
    if (Date.now() > deadline) throw new Error(`aird did not start in time; see ${log.path}`);
    try {
      grpcPort = Number((await readFile(join(dir, 'grpc.port'), 'utf8')).trim());
      httpPort = Number((await readFile(join(dir, 'http.port'), 'utf8')).trim());
    } catch (e) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    dir,
    tokens,
    grpcPort,
    httpPort,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    logPath: log.path,
    // SIGTERM, then waits up to 15 s for a clean exit; a hung shutdown is
    // killed and reported as { hung: true }.
    async stop() {
      if (!exited) child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), 15000); });
      let result = await Promise.race([exit, timeout]);
      clearTimeout(timer);
      if (result === null) {
        child.kill('SIGKILL');
        result = { ...(await exit), hung: true };
      }
      log.end();
      return result;
    },
  };
}

// A JSON API call; returns { status, body, headers }.
export async function call(aird, method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] ??= 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(aird.baseUrl + path, init);
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
  return { status: res.status, body: parsed, headers: res.headers };
}

// Starts air-upstream-sim ($AIR_UPSTREAM_SIM) on a loopback port it picks
// (read back from --port_file), as the upstream aird syncs with. Options:
// extraArgs (the simulator's flags: story and faults), logDir (where
// air-upstream-sim.log goes). Pass `target` to aird as --upstream.
export async function startUpstreamSim({ extraArgs = [], logDir } = {}) {
  const binary = process.env.AIR_UPSTREAM_SIM;
  if (!binary) throw new Error('set AIR_UPSTREAM_SIM to the air-upstream-sim binary');
  const dir = await mkdtemp(join(tmpdir(), 'air-upstream-sim-'));
  const portFile = join(dir, 'port');
  const log = createWriteStream(join(logDir || dir, 'air-upstream-sim.log'));
  const child = spawn(binary, ['--listen=127.0.0.1:0', `--port_file=${portFile}`, ...extraArgs],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));

  const deadline = Date.now() + 30000;
  let port = 0;
  while (!port) {
    if (exited) throw new Error(`air-upstream-sim exited early (${JSON.stringify(exited)}); see ${log.path}`);
    if (Date.now() > deadline) throw new Error(`air-upstream-sim did not start in time; see ${log.path}`);
    try {
      port = Number((await readFile(portFile, 'utf8')).trim());
    } catch (e) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    target: `127.0.0.1:${port}`,
    logPath: log.path,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const result = await exit;
      log.end();
      return result;
    },
  };
}
