import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Webhook endpoints of tenants, and each event's delivery to each endpoint. */
export class Webhooks1796200000000 implements MigrationInterface {
  name = 'Webhooks1796200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'webhook_endpoints',
        columns: [
          { name: 'id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'owner', type: 'varchar', length: '64' },
          { name: 'url', type: 'varchar', length: '2048' },
          { name: 'events', type: 'text' },
          { name: 'secret', type: 'varchar', length: '128' },
          { name: 'created_at', type: 'bigint' },
        ],
        indices: [
          new TableIndex({
            name: 'idx_webhook_endpoints_owner_created',
            columnNames: ['owner', 'created_at'],
          }),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'webhook_deliveries',
        columns: [
          { name: 'event_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'endpoint_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'owner', type: 'varchar', length: '64' },
          { name: 'batch_id', type: 'varchar', length: '64' },
          { name: 'type', type: 'varchar', length: '32' },
          { name: 'state', type: 'varchar', length: '16' },
          { name: 'attempts', type: 'integer', default: 0 },
          { name: 'last_status_code', type: 'integer', isNullable: true },
          { name: 'last_error', type: 'varchar', length: '500', isNullable: true },
          { name: 'created_at', type: 'bigint' },
          { name: 'last_attempt_at', type: 'bigint', isNullable: true },
          { name: 'delivered_at', type: 'bigint', isNullable: true },
        ],
        indices: [
          new TableIndex({
            name: 'idx_webhook_deliveries_owner_created',
            columnNames: ['owner', 'created_at'],
          }),
          new TableIndex({ name: 'idx_webhook_deliveries_created', columnNames: ['created_at'] }),
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('webhook_deliveries');
    await q.dropTable('webhook_endpoints');
  }
}
