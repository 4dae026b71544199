import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { eq } from 'drizzle-orm'
import type { CampaignStore } from '../../server/domain/campaigns.ts'
import { SqliteCampaignStore } from '../../server/db/campaigns.ts'
import { PgCampaignStore } from '../../server/db/pg/campaigns.ts'
import { SqliteEngineStore } from '../../server/db/engine.ts'
import { PgEngineStore } from '../../server/db/pg/engine.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { FakeClock } from '../helpers/app.ts'
import { signedInSession } from './rows.ts'

type Open = Connection & { close(): Promise<void> }

interface Stores {
  campaigns: CampaignStore | CampaignStore
  connection: Open
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const campaigns = connection.dialect === 'sqlite' ? new SqliteCampaignStore(connection.database.access) : new PgCampaignStore(connection.access)
  return { campaigns, connection, close: connection.close }
}

const NOW = new Date('2026-03-02T10:00:00.000Z')

type UserRow = typeof sqliteSchema.users.$inferInsert

/** A portal user row, written with the connection's own schema (campaigns reference users). */
async function addUser (connection: Open, id: string, fields: Partial<UserRow> = {}): Promise<void> {
  const row: UserRow = { id, email: `${id}@example.test`, displayName: id, firstSeenAt: NOW.getTime() - 90 * DAY, createdAt: NOW.getTime(), updatedAt: NOW.getTime(), ...fields }
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.users).values(row).run()
  else await connection.access.db.insert(pgSchema.users).values(row)
}

async function addGroup (connection: Open, userId: string, groupName: string): Promise<void> {
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.userGroups).values({ userId, groupName }).run()
  else await connection.access.db.insert(pgSchema.userGroups).values({ userId, groupName })
}

async function archive (connection: Open, campaignId: string): Promise<void> {
  if (connection.dialect === 'sqlite') connection.database.db.update(sqliteSchema.campaigns).set({ archivedAt: NOW.getTime() }).where(eq(sqliteSchema.campaigns.id, campaignId)).run()
  else await connection.access.db.update(pgSchema.campaigns).set({ archivedAt: NOW.getTime() }).where(eq(pgSchema.campaigns.id, campaignId))
}

/** A started wave and a resumed and an open pause, as the rollout guard writes them. */
async function addWaveStartAndPauses (connection: Open, campaignId: string, pauseIds = ['pause-1', 'pause-2']): Promise<void> {
  const figures = JSON.stringify({ counts: { flipped: 10, failures: 3, passes: 0, resets: 0, notMe: 0 }, since: 'a', until: 'b', value: 30, threshold: 20, thresholds: {} })
  const starts = [{ campaignId, wave: 2, startedAt: NOW.getTime(), startedBy: 'admin-1' }, { campaignId, wave: 1, startedAt: NOW.getTime() - DAY, startedBy: null }]
  const pauses = [
    { id: pauseIds[1], campaignId, pausedAt: NOW.getTime(), signal: 'failures', figures },
    { id: pauseIds[0], campaignId, pausedAt: NOW.getTime() - DAY, signal: 'passes', figures, resumedAt: NOW.getTime() - DAY + 1000, resumedBy: 'admin-1', resumeReason: 'false alarm' }
  ]
  if (connection.dialect === 'sqlite') {
    connection.database.db.insert(sqliteSchema.campaignWaveStarts).values(starts).run()
    connection.database.db.insert(sqliteSchema.campaignPauses).values(pauses).run()
  } else {
    await connection.access.db.insert(pgSchema.campaignWaveStarts).values(starts)
    await connection.access.db.insert(pgSchema.campaignPauses).values(pauses)
  }
}

for (const { name, open } of BACKENDS) {
  describe(`campaigns on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
      await addUser(stores.connection, 'admin-1', { role: 'admin', email: 'admin@example.test' })
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('a created campaign reads back with every setting, and the list shows live campaigns newest first', async () => {
      const { campaigns } = stores
      const older = await campaigns.create(campaignInput(NOW, { name: 'Older', reminderOffsets: [7, 1] }), 'admin-1', new Date(NOW.getTime() - DAY))
      const newer = await campaigns.create(campaignInput(NOW, { name: 'Newer', targetKind: 'group', targetValue: 'Finance', privilegedDeadline: new Date(NOW.getTime() + DAY), smsSunsetAt: new Date(NOW.getTime() + 5 * DAY), waves: { pilot: { kind: 'share', percent: 5 }, offsetsDays: [7, 14] } }), null, NOW)
      const archived = await campaigns.create(campaignInput(NOW, { name: 'Archived' }), null, new Date(NOW.getTime() + DAY))
      await archive(stores.connection, archived.id)

      assert.deepEqual(await campaigns.find(newer.id), newer)
      assert.equal(newer.targetValue, 'Finance')
      assert.deepEqual(newer.privilegedDeadline, new Date(NOW.getTime() + DAY))
      assert.deepEqual(newer.waves, { pilot: { kind: 'share', percent: 5 }, offsetsDays: [7, 14] })
      assert.deepEqual(older.reminderOffsets, [7, 1])
      assert.equal(older.waves, null)
      assert.deepEqual(older.breaker, { passesPer100: 15, failurePercent: 20, notMePer100: 3, minFlips: 10 })
      assert.equal(older.methodsRequired, 'one')
      assert.equal(older.smsAfterSunset, 'excluded')
      assert.equal(await campaigns.find('no-such-campaign'), undefined)
      assert.deepEqual((await campaigns.list()).map((c) => c.name), ['Newer', 'Older'])
    })

    test('an edit replaces the settings it names and keeps waves and breaker thresholds it leaves out', async () => {
      const { campaigns } = stores
      const created = await campaigns.create(campaignInput(NOW, { name: 'Edited', waves: { pilot: { kind: 'group', group: 'Pilot' }, offsetsDays: [3] }, breaker: { passesPer100: 5, failurePercent: 10, notMePer100: 1, minFlips: 4 } }), null, NOW)
      const edited = await campaigns.update(created.id, campaignInput(NOW, { name: 'Edited again', maxExtensionDays: 7 }), new Date(NOW.getTime() + 1000))
      assert.equal(edited.name, 'Edited again')
      assert.equal(edited.maxExtensionDays, 7)
      assert.deepEqual(edited.waves, { pilot: { kind: 'group', group: 'Pilot' }, offsetsDays: [3] })
      assert.deepEqual(edited.breaker, { passesPer100: 5, failurePercent: 10, notMePer100: 1, minFlips: 4 })
      const withoutWaves = await campaigns.update(created.id, campaignInput(NOW, { name: 'Edited again', waves: null }), new Date(NOW.getTime() + 2000))
      assert.equal(withoutWaves.waves, null)
    })

    test('arming and confirming access keys are kept on the campaign', async () => {
      const { campaigns } = stores
      const created = await campaigns.create(campaignInput(NOW, { name: 'Armed' }), null, NOW)
      assert.equal(created.armedAt, null)
      assert.equal(created.accessKeyReview, null)
      await campaigns.setArmed(created.id, NOW, 'admin-1', NOW)
      assert.deepEqual((await campaigns.find(created.id))?.armedAt, NOW)
      const reviewed = await campaigns.confirmAccessKeys(created.id, { variant: 'console_only', keyIds: ['AKIA1', 'AKIA2'], at: NOW, by: 'admin-1' }, NOW)
      assert.deepEqual(reviewed.accessKeyReview, { variant: 'console_only', keyIds: ['AKIA1', 'AKIA2'], at: NOW, by: 'admin-1' })
      assert.equal(reviewed.awsPolicyVariant, 'console_only')
      await campaigns.setArmed(created.id, null, null, NOW)
      assert.equal((await campaigns.find(created.id))?.armedAt, null)
    })

    test('a campaign carries its wave starts by wave and its pauses oldest first', async () => {
      const { campaigns } = stores
      const created = await campaigns.create(campaignInput(NOW, { name: 'Paused' }), null, NOW)
      await addWaveStartAndPauses(stores.connection, created.id)
      const found = await campaigns.find(created.id)
      assert.deepEqual(found?.waveStarts, [{ wave: 1, at: new Date(NOW.getTime() - DAY), by: null }, { wave: 2, at: NOW, by: 'admin-1' }])
      assert.deepEqual(found?.pauses.map((p) => [p.id, p.signal, p.resumedBy, p.resumeReason, p.figures.value]), [['pause-1', 'passes', 'admin-1', 'false alarm', 30], ['pause-2', 'failures', null, null, 30]])
      assert.equal(found?.pauses[1].resumedAt, null)
      // The list every page reads carries them the same way; a campaign without any carries none.
      const listed = await campaigns.list()
      assert.deepEqual(listed.find((c) => c.id === created.id), found)
      const plain = await campaigns.create(campaignInput(NOW, { name: 'Plain' }), null, NOW)
      assert.deepEqual([plain.waveStarts, plain.pauses], [[], []])
      assert.deepEqual(listed.filter((c) => c.id !== created.id).flatMap((c) => [...c.waveStarts, ...c.pauses]), [])
    })

    test("a user's extensions are listed per campaign", async () => {
      const { campaigns } = stores
      await addUser(stores.connection, 'ext-user')
      const campaign = await campaigns.create(campaignInput(NOW, { name: 'Extended' }), null, NOW)
      await campaigns.addExtension('ext-user', campaign.id, 5, 'travelling', 'admin-1', NOW)
      await campaigns.addExtension('ext-user', campaign.id, 3, 'still travelling', null, NOW)
      assert.deepEqual((await campaigns.extensionsFor('ext-user')).map((e) => e.days).sort(), [3, 5])
      assert.deepEqual(await campaigns.extensionsFor('admin-1'), [])
    })

    test('active exemptions come soonest to expire first with the permanent ones last; ended ones most recently ended first', async () => {
      const { campaigns } = stores
      for (const id of ['ex-soon', 'ex-later', 'ex-never', 'ex-expired', 'ex-revoked']) await addUser(stores.connection, id)
      const exemption = (expiresAt: Date | null) => ({ kind: 'other' as const, reason: 'contractor', owner: 'it@example.test', expiresAt })
      await campaigns.addExemption('ex-never', { ...exemption(null), kind: 'break_glass' }, 'admin-1', NOW)
      await campaigns.addExemption('ex-later', exemption(new Date(NOW.getTime() + 9 * DAY)), null, NOW)
      await campaigns.addExemption('ex-soon', exemption(new Date(NOW.getTime() + DAY)), 'admin-1', NOW)
      await campaigns.addExemption('ex-expired', exemption(new Date(NOW.getTime() - 2 * DAY)), null, NOW)
      await campaigns.addExemption('ex-revoked', exemption(new Date(NOW.getTime() + 30 * DAY)), null, NOW)

      const revokedId = (await campaigns.listExemptions('active', NOW, 10)).find((e) => e.userId === 'ex-revoked')?.id ?? ''
      assert.deepEqual(await campaigns.revokeExemption(revokedId, new Date(NOW.getTime() - DAY)), { userId: 'ex-revoked', kind: 'other', reason: 'contractor' })
      assert.equal(await campaigns.revokeExemption(revokedId, NOW), undefined, 'revoked twice')

      const active = await campaigns.listExemptions('active', NOW, 10)
      assert.deepEqual(active.map((e) => e.userId), ['ex-soon', 'ex-later', 'ex-never'])
      assert.equal(active[0].createdByEmail, 'admin@example.test')
      assert.equal(active[1].createdByEmail, null)
      assert.equal(active[2].expiresAt, null)
      assert.equal(active[0].email, 'ex-soon@example.test')
      assert.deepEqual(active[0].createdAt, NOW)
      assert.deepEqual((await campaigns.listExemptions('active', NOW, 2)).map((e) => e.userId), ['ex-soon', 'ex-later'])

      const ended = await campaigns.listExemptions('ended', NOW, 10)
      assert.deepEqual(ended.map((e) => e.userId), ['ex-revoked', 'ex-expired'])
      assert.deepEqual(ended[0].revokedAt, new Date(NOW.getTime() - DAY))

      const expiredId = ended[1].id
      assert.equal(await campaigns.revokeExemption(expiredId, NOW), undefined, 'an exemption that ran out cannot be revoked')
    })

    test('a drift flag is cleared once', async () => {
      const { campaigns } = stores
      await addUser(stores.connection, 'drifted', { driftFlaggedAt: NOW.getTime() })
      assert.equal(await campaigns.clearDriftFlag('drifted'), true)
      assert.equal(await campaigns.clearDriftFlag('drifted'), false)
      assert.equal(await campaigns.clearDriftFlag('nobody'), false)
    })

    test("a user's deadline facts carry when they joined, their privilege, groups and flip time", async () => {
      const { campaigns } = stores
      await addUser(stores.connection, 'subject', { privileged: true, provider: 'entra', directoryCreatedAt: NOW.getTime() - 3 * DAY, enforcedAt: NOW.getTime() })
      await addGroup(stores.connection, 'subject', 'Finance')
      await addGroup(stores.connection, 'subject', 'Admins')
      const subject = await campaigns.firstSeenAndPrivilege('subject')
      assert.deepEqual({ ...subject, groups: subject?.groups?.sort() }, {
        firstSeenAt: new Date(NOW.getTime() - 90 * DAY), directoryCreatedAt: new Date(NOW.getTime() - 3 * DAY), provider: 'entra', privileged: true,
        userId: 'subject', groups: ['Admins', 'Finance'], enforcedAt: NOW
      })
      await addUser(stores.connection, 'plain')
      assert.deepEqual(await campaigns.firstSeenAndPrivilege('plain'), {
        firstSeenAt: new Date(NOW.getTime() - 90 * DAY), directoryCreatedAt: null, provider: 'local', privileged: false, userId: 'plain', groups: [], enforcedAt: null
      })
      assert.equal(await campaigns.firstSeenAndPrivilege('nobody'), undefined)
    })

    test('the home page\'s read: a user\'s deadline facts come with the live campaigns exactly as the list gives them', async () => {
      const { campaigns, connection } = stores
      const engine = connection.dialect === 'sqlite' ? new SqliteEngineStore(connection.database.access, campaigns) : new PgEngineStore(connection.access, campaigns)
      // Every kind of setting: waves with a start and pauses, an armed campaign with reviewed access keys, one archived.
      const rich = await campaigns.create(campaignInput(NOW, {
        name: 'Rich', targetKind: 'group', targetValue: 'Finance', privilegedDeadline: new Date(NOW.getTime() + DAY), reminderOffsets: [7, 1], softBlockDays: 2,
        smsPolicy: 'weak', driftPolicy: 'flag', methodsRequired: 'two', smsSunsetAt: new Date(NOW.getTime() + 5 * DAY), smsAfterSunset: 'weak', smsSunsetGraceDays: 3,
        waves: { pilot: { kind: 'group', group: 'Finance' }, offsetsDays: [7] }, breaker: { passesPer100: 5, failurePercent: 10, notMePer100: 1, minFlips: 4 }
      }), 'admin-1', new Date(NOW.getTime() + 1000))
      await addWaveStartAndPauses(connection, rich.id, ['rich-pause-1', 'rich-pause-2'])
      await campaigns.confirmAccessKeys(rich.id, { variant: 'console_only', keyIds: ['AKIA1'], at: NOW, by: 'admin-1' }, NOW)
      await campaigns.setArmed(rich.id, NOW, 'admin-1', NOW)
      const gone = await campaigns.create(campaignInput(NOW, { name: 'Gone' }), null, new Date(NOW.getTime() + 2000))
      await archive(connection, gone.id)

      const read = await engine.deadlineFactsWithCampaigns('admin-1')
      const listed = await campaigns.list()
      assert.deepEqual(read, { facts: await engine.deadlineFacts('admin-1'), campaigns: listed })
      // The home page reads them with its session: the same facts and campaigns, in the same statement.
      const sessions = await signedInSession(connection, new FakeClock(NOW), 'admin-1-browser', 'admin-1')
      assert.deepEqual((await sessions.get('admin-1-browser', { deadline: true }))?.signedIn?.deadline, read)
      const [first] = listed
      assert.deepEqual([first.id, first.waveStarts.length, first.pauses.length, first.accessKeyReview?.keyIds, first.armedAt], [rich.id, 2, 2, ['AKIA1'], NOW])
      assert.equal(listed.some((c) => c.id === gone.id), false)
      assert.equal(await engine.deadlineFactsWithCampaigns('nobody'), undefined)
    })

    if (name === 'PostgreSQL') {
      test('of two instances revoking the same exemption at once, exactly one does it', async () => {
        const other = await storesOn(backend)
        try {
          await addUser(stores.connection, 'ex-race')
          await stores.campaigns.addExemption('ex-race', { kind: 'other', reason: 'race', owner: 'it', expiresAt: null }, null, NOW)
          const id = (await stores.campaigns.listExemptions('active', NOW, 50)).find((e) => e.userId === 'ex-race')?.id ?? ''
          const results = await Promise.all([stores.campaigns.revokeExemption(id, NOW), other.campaigns.revokeExemption(id, NOW)])
          assert.equal(results.filter((r) => r !== undefined).length, 1)
        } finally {
          await other.close()
        }
      })
    }
  })
}
