import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeEvent, eventDescriptionKey } from '../../server/domain/event-descriptions.ts'
import { LOCALES, loadCatalogues, Localiser } from '../../server/domain/i18n.ts'
import { auditEventNames } from '../helpers/audit-events.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const catalogues = loadCatalogues(path.join(ROOT, 'locales'))
const written = auditEventNames(ROOT)

test('every audit event the server writes has a description in words, in every shipped language', () => {
  assert.deepEqual(written.unknown, [], 'these actions are computed in a way the scan cannot read: write the names as literals (or constants)')
  assert.ok(written.names.size > 50, `the scan found ${written.names.size} event names: it has stopped reading the sources`)
  for (const locale of LOCALES) {
    const missing = [...written.names].filter(([name]) => catalogues[locale][eventDescriptionKey(name)] === undefined)
      .map(([name, places]) => `${name} (written at ${places.join(', ')})`)
    assert.deepEqual(missing, [], `locales/${locale}/events.json has no "events.<name>" for these events`)
  }
})

test('every description is for an event the server writes (none left over from a renamed event)', () => {
  // audit.exported is written by the audit log's download; the scan finds it like any other.
  const stale = Object.keys(catalogues.en).filter((key) => key.startsWith('events.') && !written.names.has(key.slice('events.'.length)))
  assert.deepEqual(stale, [])
})

test('the scan reads conditionals and template literals: both names of `approval.${status}` are found', () => {
  for (const name of ['approval.refused', 'approval.withdrawn', 'campaign.armed', 'campaign.disarmed', 'enforcement.enforced', 'enforcement.relaxed', 'signout']) {
    assert.ok(written.names.has(name), name)
  }
})

test('an event is described in the reader\'s language, and a name no catalogue knows gives no words (the page shows the name)', () => {
  const localiser = new Localiser(catalogues, { locale: 'en', timeZone: 'UTC' })
  assert.equal(describeEvent(localiser.for({ locale: 'en' }), 'pass.signin_failure'), 'Sign-in with an access pass failed')
  assert.equal(describeEvent(localiser.for({ locale: 'en' }), 'enforcement.enforced'), 'Multi-factor sign-in was made mandatory')
  assert.equal(describeEvent(localiser.for({ locale: 'de' }), 'enforcement.enforced'), 'Die Anmeldung mit mehreren Faktoren wurde verpflichtend')
  assert.equal(describeEvent(localiser.for({ locale: 'en' }), 'legacy.event_from_2025'), null)
})
