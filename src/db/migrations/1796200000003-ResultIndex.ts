import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Each finalized batch's line count per chunk in its result files (partial results continue into them). */
export class ResultIndex1796200000003 implements MigrationInterface {
  name = 'ResultIndex1796200000003';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('batches', new TableColumn({ name: 'result_index', type: 'text', isNullable: true }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('batches', 'result_index');
  }
}
