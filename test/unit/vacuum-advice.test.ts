import { test } from 'node:test'
import assert from 'node:assert/strict'
import { vacuumAdvice } from '../../server/db/pg/storage-health.ts'

test('a PostgreSQL server whose autovacuum runs gets no advice; one where it cannot run is told which setting stops it and what to do instead', () => {
  assert.deepEqual(vacuumAdvice({ autovacuum: 'on', trackCounts: 'on' }), [])
  const [off] = vacuumAdvice({ autovacuum: 'off', trackCounts: 'on' })
  assert.match(off, /^PostgreSQL's autovacuum does not run on this server \(autovacuum = off\): /)
  assert.match(off, /the portal vacuums its job queue itself while it sweeps, but not its other tables/)
  assert.match(off, /Turn autovacuum back on \(the default\), or vacuum the database on a schedule \(vacuumdb --analyze\)\.$/)
  assert.match(vacuumAdvice({ autovacuum: 'on', trackCounts: 'off' })[0], /\(track_counts = off\)/, 'autovacuum needs the statistics track_counts gathers')
  assert.match(vacuumAdvice({ autovacuum: 'off', trackCounts: 'off' })[0], /\(autovacuum = off, track_counts = off\)/)
  assert.equal(vacuumAdvice({ autovacuum: 'off', trackCounts: 'off' }).length, 1, 'one piece of advice, not one per setting')
})
