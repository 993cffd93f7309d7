import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Each worker process's numbers per upstream pool, upserted every few seconds for the dashboard. */
export class PoolStats1796200000002 implements MigrationInterface {
  name = 'PoolStats1796200000002';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'pool_stats',
        columns: [
          { name: 'worker_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'pool', type: 'varchar', length: '64', isPrimary: true },
          { name: 'in_flight', type: 'integer' },
          { name: 'concurrency_limit', type: 'integer' },
          { name: 'requests', type: 'bigint' },
          { name: 'latency_ms_sum', type: 'bigint' },
          { name: 'recent_requests', type: 'integer' },
          { name: 'recent_latency_ms_sum', type: 'bigint' },
          { name: 'recent_ms', type: 'integer' },
          { name: 'updated_at', type: 'bigint' },
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('pool_stats');
  }
}
