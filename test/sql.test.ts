import { openSql } from '../src/storage/sql.js';
import { BACKENDS, useServer } from './harness.js';

/** How statements reach PostgreSQL: prepared once per connection, search statements planned for their values on every call. */
describe.each(BACKENDS)('SQL statements (%s)', (backend) => {
  const server = useServer(backend);

  test('a search statement is parsed once per connection and planned for its values on every call', async () => {
    if (!server.databaseUrl) {
      console.log('SQL statements: PGlite runs search statements unnamed, planned on every call; nothing prepared to look at');
      return;
    }
    const sql = await openSql({ databaseUrl: server.databaseUrl, dataDir: 'unused', poolSize: 1 });
    try {
      const search = 'SELECT count(*) AS n FROM resource WHERE resource_type = $1 AND NOT deleted';
      for (let i = 0; i < 8; i++) {
        await sql.query(search, [i % 2 ? 'Patient' : 'Observation'], { customPlan: true });
      }
      // On the connection the search ran on: pg_prepared_statements describes that session alone.
      const prepared = await sql.query<{ generic_plans: number | string; custom_plans: number | string }>(
        'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1',
        [search],
        { customPlan: true },
      );
      expect(prepared).toHaveLength(1);
      expect(Number(prepared[0].custom_plans)).toBe(8);
      expect(Number(prepared[0].generic_plans)).toBe(0);
      // PostgreSQL may keep using custom plans of its own accord; these connections are told to, always.
      const [setting] = await sql.query<{ mode: string }>('SELECT current_setting($1) AS mode', ['plan_cache_mode'], { customPlan: true });
      expect(setting.mode).toBe('force_custom_plan');
      const [other] = await sql.query<{ mode: string }>('SELECT current_setting($1) AS mode', ['plan_cache_mode']);
      expect(other.mode).toBe('auto');
    } finally {
      await sql.close();
    }
  });
});
