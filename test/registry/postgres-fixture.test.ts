/** The PostgreSQL test fixture: a real server from Debian's packages, unprivileged, stopped and removed after. */
import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { postgresMissing, startPostgres } from '../lib/postgres.js';

const missing = postgresMissing();

t.test('a PostgreSQL cluster starts as nobody on a socket in its own folder and is gone after stop', { skip: missing }, async (t) => {
  const pg = await startPostgres(t);
  t.equal(statSync(pg.dir).uid, 65534, 'the folder belongs to the unprivileged user');
  const { rows } = await pg.query('SELECT current_user AS who, version() AS v');
  t.match(rows[0], { who: 'postgres', v: /^PostgreSQL \d+/ }, 'answers SQL on its socket');
  const url = await pg.createDatabase(t, 'fixture_check');
  t.match(url, /^postgres:\/\/postgres@\/fixture_check\?host=/);
  t.equal((await pg.query('SELECT 1 AS one', 'fixture_check')).rows[0].one, 1, 'a fresh database per test');
  pg.stop();
  t.notOk(existsSync(pg.dir), 'the folder is removed once stopped');
  pg.stop();
});
