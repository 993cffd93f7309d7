// Test hosts as network namespaces (scripts/netns-hosts.sh) and the processes that run on them.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { exited, until } from '../support/processes';

/** The private test network: scripts/netns-hosts.sh builds it on bridge besh-hbr0. */
export const NET = {
  /** The root namespace's address on the bridge: the test process, the client, talks from here. */
  root: '10.201.0.1',
  svc: '10.201.0.2',
  api: '10.201.0.10',
  w1: '10.201.0.11',
  w2: '10.201.0.12',
} as const;

export type Host = 'besh-svc' | 'besh-api' | 'besh-w1' | 'besh-w2';
/** The root namespace's end of each host's veth pair: set down, it cuts the host's link. */
export const VETH: Record<Host, string> = {
  'besh-svc': 'bh-svc',
  'besh-api': 'bh-api',
  'besh-w1': 'bh-w1',
  'besh-w2': 'bh-w2',
};

const SCRIPT = path.join(projectRoot, 'scripts', 'netns-hosts.sh');
export const logDir = path.join(projectRoot, 'test-output', 'hosts');
/** Each host's own disk; a fixed place, so a crashed run's leftovers are removed by the next. */
export const diskRoot = path.join(os.tmpdir(), 'besh-hosts');

/** Why this machine cannot build the test hosts, or null when it can. */
export function cannotMakeHosts(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  const r = spawnSync(SCRIPT, ['check'], { encoding: 'utf8' });
  if (r.error) return `cannot run ${SCRIPT}: ${r.error.message}`;
  return r.status === 0 ? null : (r.stdout + r.stderr).trim() || `netns check exited ${r.status}`;
}

export function hostsUp(): void {
  execFileSync(SCRIPT, ['up'], { stdio: 'inherit' });
}

/** Kills whatever still runs in the hosts, deletes them and the bridge; safe to call any number of times. */
export function hostsDown(): void {
  spawnSync(SCRIPT, ['down'], { stdio: 'inherit' });
}

/** Process ids running in a host. */
export function pidsIn(host: Host): number[] {
  const r = spawnSync('ip', ['netns', 'pids', host], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export function setLink(host: Host, state: 'up' | 'down'): void {
  execFileSync('ip', ['link', 'set', VETH[host], state]);
}

/** A host's data folder, created empty. */
export function hostDisk(name: string, owner?: { uid: number; gid: number }): string {
  const dir = path.join(diskRoot, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  return dir;
}

/** The environment a process gets: a small fixed base and its settings, nothing inherited by accident. */
export function baseEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    ...extra,
  };
}

export interface LabProcess {
  name: string;
  host: Host;
  child: ChildProcess;
  log: string;
}

/** Starts, watches and stops the processes of one test run, each inside its host. */
export class Lab {
  readonly procs: LabProcess[] = [];

  start(
    name: string,
    host: Host,
    argv: string[],
    env: Record<string, string>,
    opts: { asUser?: { uid: number; gid: number } } = {},
  ): LabProcess {
    fs.mkdirSync(logDir, { recursive: true });
    const log = path.join(logDir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    // `ip netns exec` execs the command, so the child's pid is the process itself. setpriv (also an exec) drops
    // to an unprivileged user after the namespace is entered, which needs root.
    const drop = opts.asUser
      ? ['setpriv', `--reuid=${opts.asUser.uid}`, `--regid=${opts.asUser.gid}`, '--clear-groups', '--']
      : [];
    const child = spawn('ip', ['netns', 'exec', host, ...drop, ...argv], {
      cwd: projectRoot,
      env,
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    const p = { name, host, child, log };
    this.procs.push(p);
    return p;
  }

  /** A bounded poll that fails at once, with the log's tail, when the process it waits for has exited. */
  async waitFor(
    p: LabProcess,
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = 60_000,
  ): Promise<void> {
    await until(
      `${p.name}: ${what}`,
      async () => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) {
          throw new Error(
            `${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before ${what}:\n${tail(p.log)}`,
          );
        }
        return check().catch(() => false);
      },
      timeoutMs,
    );
  }

  /** SIGTERM to each process still running (newest first), SIGKILL to those still there after `graceMs`. */
  async stop(procs: LabProcess[] = this.procs, graceMs = 5_000): Promise<void> {
    const running = [...procs]
      .reverse()
      .filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    const gone = running.map((p) => exited(p.child));
    for (const p of running) p.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const p of running)
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(gone);
    clearTimeout(timer);
  }
}

export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** GET with a short deadline; resolves to the response or rejects. */
export function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers, signal: AbortSignal.timeout(3_000) });
}
