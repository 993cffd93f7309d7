import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Batches get a priority (a BESH create parameter); every existing batch is `normal`, as was every batch. */
export class Priority1796200000001 implements MigrationInterface {
  name = 'Priority1796200000001';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn(
      'batches',
      new TableColumn({ name: 'priority', type: 'varchar', length: '8', default: "'normal'" }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('batches', 'priority');
  }
}
