// Child processes of a benchmark run and what /proc says about them. Every process started here is
// registered, so one call stops them all, even when the run fails half-way or is interrupted.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../src/paths';
import { loopbackNginxArgs } from '../test/support/nginx';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces. */
function statFields(pid: number): { comm: string; fields: string[] } | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // gone
  }
  const close = text.lastIndexOf(')');
  return { comm: text.slice(text.indexOf('(') + 1, close), fields: text.slice(close + 2).split(' ') };
}

/** utime + stime of one process, in seconds; `children` adds what its reaped children used. */
export function cpuSeconds(pid: number, children = false): number {
  const s = statFields(pid);
  if (!s) return NaN;
  // After the comm: state(0) … utime(11) stime(12) cutime(13) cstime(14).
  const ticks = [11, 12, ...(children ? [13, 14] : [])].reduce((n, i) => n + Number(s.fields[i]), 0);
  return ticks / CLK_TCK;
}

/** The live direct children of a process. */
function childPids(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(statFields(Number(name))?.fields[1]) === pid)
    .map(Number);
}

/** A process and its direct children (nginx's master and its workers), in seconds. */
export function treeCpuSeconds(pid: number): number {
  return childPids(pid).reduce((total, child) => total + cpuSeconds(child), cpuSeconds(pid, true));
}

/** Peak resident set (VmHWM) and current RSS, in MB. */
export function memoryMb(pid: number): { peak: number; now: number } {
  let text = '';
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return { peak: NaN, now: NaN };
  }
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

/**
 * A process and its live direct children (a worker host's forks, WORKER_PROCESSES), summed: each one's peak,
 * so at least the peak of their sum.
 */
export function treeMemoryMb(pid: number): { peak: number; now: number } {
  return childPids(pid).reduce((total, child) => {
    const m = memoryMb(child);
    return { peak: total.peak + m.peak, now: total.now + m.now };
  }, memoryMb(pid));
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Debian's nginx (`make deploy-tools`), or null. */
export function findNginx(): string | null {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    if (spawnSync(bin, ['-v'], { stdio: 'ignore' }).status === 0) return bin;
  }
  return null;
}

interface Tracked {
  name: string;
  child: ChildProcess;
  /** SIGTERM first; SIGKILL if it has not exited after this long. */
  graceMs: number;
}

/** The run's child processes, stopped in reverse start order. */
export class Processes {
  private readonly tracked: Tracked[] = [];

  constructor(private readonly logDir: string) {}

  /** A log file under the run's log directory, appended to (a process may be started several times). */
  log(name: string): number {
    return fs.openSync(path.join(this.logDir, `${name}.log`), 'a');
  }

  track(name: string, child: ChildProcess, graceMs = 15_000): ChildProcess {
    const entry = { name, child, graceMs };
    this.tracked.push(entry);
    void exited(child).then(() => {
      const i = this.tracked.indexOf(entry);
      if (i >= 0) this.tracked.splice(i, 1);
    });
    return child;
  }

  /** A BESH entry point compiled by `make build`, as its own process (so /proc numbers are its own). */
  startBesh(
    entry: 'api' | 'worker',
    env: Record<string, string>,
    logName: string,
    nodeArgs: string[] = [],
  ): ChildProcess {
    const out = this.log(logName);
    const script = path.join(projectRoot, 'dist', 'main', `${entry}.js`);
    const child = spawn(process.execPath, [...nodeArgs, script], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    // The worker drains in-flight requests on SIGTERM; give it its shutdown grace and a little more.
    return this.track(logName, child, 40_000);
  }

  async stop(child: ChildProcess): Promise<void> {
    const entry = this.tracked.find((t) => t.child === child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // A plain timer, cleared on exit: a pending 40 s sleep would keep the harness alive after the run.
    const kill = setTimeout(() => child.kill('SIGKILL'), entry?.graceMs ?? 15_000);
    await exited(child);
    clearTimeout(kill);
  }

  async stopAll(): Promise<void> {
    for (const t of [...this.tracked].reverse()) await this.stop(t.child).catch(() => undefined);
  }

  /** Last resort on a second Ctrl-C or an exit without cleanup: no waiting. */
  killAll(): void {
    for (const t of this.tracked) if (t.child.exitCode === null) t.child.kill('SIGKILL');
  }
}

/**
 * The project's nginx/nginx-8gpu.conf, rewritten for loopback by scripts/nginx-loopback-conf.sh (the same
 * rewrite `make check-deploy` and the nginx pool test use), in front of `ports`. Resolves with its pid once
 * its proxied /health answers 200.
 */
export async function startNginx(procs: Processes, dir: string, listen: number, ports: number[]) {
  const bin = findNginx();
  if (!bin) throw new Error('nginx is not installed: `make deploy-tools` installs it');
  execFileSync('bash', [
    path.join(projectRoot, 'scripts', 'nginx-loopback-conf.sh'),
    path.join(projectRoot, 'nginx', 'nginx-8gpu.conf'),
    dir,
    String(listen),
    ...ports.map(String),
  ]);
  const out = procs.log('nginx');
  const child = spawn(bin, loopbackNginxArgs(dir), { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  procs.track('nginx', child, 10_000);
  await until('nginx /health', async () => (await fetch(`http://127.0.0.1:${listen}/health`)).ok, 20_000);
  return child;
}

/** Busy and total jiffies of the whole machine (/proc/stat), to tell how loaded it was during a phase. */
export function machineJiffies(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = cpu[3] + (cpu[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}
