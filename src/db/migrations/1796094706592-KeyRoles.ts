import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Keys get a role: existing keys become tenant keys, except the key a first start created for the operator
 * (`make demo`, or an API started with no key), which is what the first start creates from now on.
 */
export class KeyRoles1796094706592 implements MigrationInterface {
  name = 'KeyRoles1796094706592';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn(
      'api_keys',
      new TableColumn({ name: 'role', type: 'varchar', length: '16', default: "'tenant'" }),
    );
    await q.query(`UPDATE api_keys SET role = 'operator' WHERE name = 'first start'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('api_keys', 'role');
  }
}
