// PostgreSQL's CPU spent on BESH's database. The server is shared (other test suites use it, some restart it),
// so summing every `postgres` process on the machine is neither BESH's share nor even monotonic. Instead: the
// backends connected to the run's database plus the writer processes that flush its WAL and pages, per pid.
import { Client } from 'pg';
import { cpuSeconds } from './processes';

/** CPU seconds per pid at one instant. */
export type PgCpu = Map<number, number>;

export class PostgresCpu {
  private constructor(
    private readonly client: Client,
    private readonly database: string,
  ) {}

  static async connect(adminUrl: string, database: string): Promise<PostgresCpu> {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    return new PostgresCpu(client, database);
  }

  async read(): Promise<PgCpu> {
    const { rows } = await this.client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`,
      [this.database],
    );
    return new Map(
      rows.map((r) => [r.pid, cpuSeconds(r.pid)] as const).filter(([, s]) => Number.isFinite(s)),
    );
  }

  close(): Promise<void> {
    return this.client.end();
  }
}

/** CPU used between two readings: a backend that appeared in between counts from zero. */
export function pgCpuBetween(before: PgCpu, after: PgCpu): number {
  let total = 0;
  for (const [pid, s] of after) total += s - (before.get(pid) ?? 0);
  return total;
}
