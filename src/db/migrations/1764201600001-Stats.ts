import { Table, TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';
import { STAT_COLUMNS } from '../../stats/columns';

export class Stats1764201600001 implements MigrationInterface {
  name = 'Stats1764201600001';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'stats_buckets',
        columns: [
          { name: 'bucket_start', type: 'bigint', isPrimary: true },
          { name: 'owner', type: 'varchar', length: '64', isPrimary: true },
          ...STAT_COLUMNS.map((name) => ({ name, type: 'bigint', default: 0 })),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'stats_ledger',
        columns: [
          { name: 'source_id', type: 'varchar', length: '200', isPrimary: true },
          { name: 'created_at', type: 'bigint' },
        ],
      }),
    );
    await q.addColumns('batch_chunks', [
      new TableColumn({ name: 'latency_ms_sum', type: 'bigint', default: 0 }),
      new TableColumn({ name: 'latency_count', type: 'bigint', default: 0 }),
    ]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumns('batch_chunks', ['latency_ms_sum', 'latency_count']);
    await q.dropTable('stats_ledger');
    await q.dropTable('stats_buckets');
  }
}
