import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { testOutputDir } from './global';

/** A BESH entry point (main/*.ts) as a real child process, logging to test-output/. */
export function spawnEntry(
  entry: 'worker' | 'api',
  env: Record<string, string>,
  logName: string,
): ChildProcess {
  const log = fs.openSync(path.join(testOutputDir, `${logName}.log`), 'a');
  return spawn(process.execPath, ['-r', 'ts-node/register', path.join(projectRoot, 'main', `${entry}.ts`)], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
