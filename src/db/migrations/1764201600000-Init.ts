import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import type { TableColumnOptions } from 'typeorm/schema-builder/options/TableColumnOptions';

// Written with the Table API rather than raw SQL so that one migration serves PostgreSQL and SQLite.
const id = (name: string, primary = false): TableColumnOptions => ({
  name,
  type: 'varchar',
  length: '64',
  isPrimary: primary,
});
const bigint = (name: string, nullable = false): TableColumnOptions => ({
  name,
  type: 'bigint',
  isNullable: nullable,
});
const counter = (name: string): TableColumnOptions => ({ name, type: 'bigint', default: 0 });
const usage = ['input_tokens', 'cached_tokens', 'output_tokens', 'reasoning_tokens'].map(counter);

export class Init1764201600000 implements MigrationInterface {
  name = 'Init1764201600000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'api_keys',
        columns: [
          id('id', true),
          id('tenant_id'),
          { name: 'name', type: 'varchar', length: '200', isNullable: true },
          { name: 'key_hash', type: 'varchar', length: '64', isUnique: true },
          { name: 'key_prefix', type: 'varchar', length: '16' },
          bigint('created_at'),
          bigint('revoked_at', true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'files',
        columns: [
          id('id', true),
          id('owner'),
          { name: 'filename', type: 'varchar', length: '1024' },
          { name: 'purpose', type: 'varchar', length: '32' },
          bigint('bytes'),
          bigint('created_at'),
          bigint('expires_at', true),
        ],
        indices: [new TableIndex({ name: 'idx_files_owner_created', columnNames: ['owner', 'created_at'] })],
      }),
    );
    const nullableId = (name: string) => ({ ...id(name), isNullable: true });
    await q.createTable(
      new Table({
        name: 'batches',
        columns: [
          id('id', true),
          id('owner'),
          { name: 'endpoint', type: 'varchar', length: '64' },
          { name: 'model', type: 'varchar', length: '256', isNullable: true },
          id('input_file_id'),
          { name: 'completion_window', type: 'varchar', length: '16' },
          { name: 'status', type: 'varchar', length: '16' },
          nullableId('output_file_id'),
          nullableId('error_file_id'),
          bigint('created_at'),
          ...[
            'in_progress_at',
            'expires_at',
            'finalizing_at',
            'completed_at',
            'failed_at',
            'expired_at',
            'cancelling_at',
            'cancelled_at',
          ].map((n) => bigint(n, true)),
          counter('total'),
          counter('completed'),
          counter('failed'),
          ...usage,
          { name: 'metadata', type: 'text', isNullable: true },
          { name: 'errors', type: 'text', isNullable: true },
          { name: 'output_expires_after_seconds', type: 'integer', isNullable: true },
        ],
        indices: [
          new TableIndex({ name: 'idx_batches_owner_created', columnNames: ['owner', 'created_at'] }),
          new TableIndex({ name: 'idx_batches_status', columnNames: ['status'] }),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'batch_chunks',
        columns: [
          id('batch_id', true),
          { name: 'chunk_index', type: 'integer', isPrimary: true },
          counter('completed'),
          counter('failed'),
          ...usage,
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['batch_chunks', 'batches', 'files', 'api_keys']) await q.dropTable(t);
  }
}
