import type { Services } from '../../server/wiring.ts'
import type { User } from '../../server/domain/users.ts'
import type { UserState } from '../../server/domain/states.ts'
import type { FakeClock } from './app.ts'
import { createTestUser } from './app.ts'
import { campaignInput, DAY } from './campaigns.ts'
import { sqlOn } from './sql.ts'

/**
 * A population in every state, with methods held in the portal and reported by providers, from three providers,
 * under one armed campaign for everyone whose deadline passed yesterday. Counts below are what an admin should see.
 *
 * | user            | first seen  | provider | methods (portal / provider) | state        |
 * |-----------------|-------------|----------|-----------------------------|--------------|
 * | admin           | now         | local    | –                           | pending      |
 * | newcomer        | now         | local    | –                           | pending      |
 * | entraNewcomer   | now         | entra    | –                           | pending      |
 * | late            | 90 days ago | local    | –                           | overdue      |
 * | entraLate       | 90 days ago | entra    | – / email (does not count)  | overdue      |
 * | appUser         | 90 days ago | local    | totp                        | enrolled     |
 * | awsUser         | 90 days ago | aws      | passkey / passkey           | enrolled     |
 * | enforcedUser    | 90 days ago | local    | phone                       | enforced     |
 * | drifted         | 90 days ago | local    | phone; drift flagged        | attention    |
 * | breakGlass      | 90 days ago | local    | – ; break-glass exemption   | attention    |
 * | serviceAccount  | 90 days ago | local    | passkey; exempt             | exempt       |
 * | leaver          | 90 days ago | local    | – ; disabled                | not_targeted |
 */
export interface Population {
  admin: User
  users: Record<'newcomer' | 'entraNewcomer' | 'late' | 'entraLate' | 'appUser' | 'awsUser' | 'enforcedUser' | 'drifted' | 'breakGlass' | 'serviceAccount' | 'leaver', User>
  campaignId: string
}

export const POPULATION_STATES: Record<UserState, number> = { exempt: 1, not_targeted: 1, pending: 3, enrolled: 2, overdue: 2, enforced: 1, attention: 2 }

/** Users holding each kind: [in the portal, reported by the provider, counting where they sign in]. */
export const POPULATION_METHODS: Record<string, [number, number, number]> = {
  passkey: [2, 1, 2],
  totp: [1, 0, 1],
  phone: [2, 0, 2],
  email: [0, 1, 1]
}

/** provider -> [users, not yet enrolled, enrolled, enforced, exempt, needs attention] */
export const POPULATION_PROVIDERS: Record<string, [number, number, number, number, number, number]> = {
  aws: [1, 0, 1, 0, 0, 0],
  entra: [2, 2, 0, 0, 0, 0],
  local: [9, 3, 1, 1, 1, 2]
}

export async function seedPopulation (services: Services, clock: FakeClock): Promise<Population> {
  const now = clock.now().getTime()
  const db = sqlOn(services)
  const admin = await createTestUser(services, { role: 'admin', email: 'admin@test.example' })
  const make = async (name: string) => createTestUser(services, { email: `${name.toLowerCase()}@test.example` })
  const users = {
    newcomer: await make('newcomer'),
    entraNewcomer: await make('entraNewcomer'),
    late: await make('late'),
    entraLate: await make('entraLate'),
    appUser: await make('appUser'),
    awsUser: await make('awsUser'),
    enforcedUser: await make('enforcedUser'),
    drifted: await make('drifted'),
    breakGlass: await make('breakGlass'),
    serviceAccount: await make('serviceAccount'),
    leaver: await make('leaver')
  }
  const longAgo = now - 90 * DAY
  for (const user of [users.late, users.entraLate, users.appUser, users.awsUser, users.enforcedUser, users.drifted, users.breakGlass, users.serviceAccount, users.leaver]) {
    await db.run('UPDATE users SET first_seen_at = ? WHERE id = ?', longAgo, user.id)
  }
  const fromProvider = 'UPDATE users SET provider = ?, external_id = ?, provider_methods = ? WHERE id = ?'
  await db.run(fromProvider, 'entra', 'entra-newcomer', '[]', users.entraNewcomer.id)
  await db.run(fromProvider, 'entra', 'entra-late', '["email"]', users.entraLate.id)
  await db.run(fromProvider, 'aws', 'aws-user', '["passkey"]', users.awsUser.id)
  await db.run('UPDATE users SET disabled = TRUE WHERE id = ?', users.leaver.id)

  const passkey = (id: string) => ({ name: 'Key', credentialId: `cred-${id}`, publicKey: new Uint8Array([1]), counter: 0, transports: [], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false })
  await services.methods.addTotp(users.appUser.id, 'Phone app', 'JBSWY3DPEHPK3PXP', 0)
  await services.methods.addPasskey(users.awsUser.id, passkey(users.awsUser.id))
  await services.methods.addPasskey(users.serviceAccount.id, passkey(users.serviceAccount.id))
  await services.methods.addPhone(users.enforcedUser.id, 'Work phone', '+14155550100')
  await services.methods.addPhone(users.drifted.id, 'Work phone', '+14155550101')

  const actor = { id: admin.id, label: admin.email }
  await services.campaigns.exempt(users.breakGlass.id, { kind: 'break_glass', reason: 'Emergency access', owner: 'Security team', expiresAt: null }, actor)
  await services.campaigns.exempt(users.serviceAccount.id, { kind: 'service_account', reason: 'Nightly backup job', owner: 'Ops', expiresAt: new Date(now + 30 * DAY) }, actor)
  const campaign = await services.campaigns.create(campaignInput(now, { name: 'Everyone', deadline: new Date(now - DAY), privilegedDeadline: new Date(now - 5 * DAY) }), actor)
  await services.campaigns.arm(campaign.id, actor)

  // As if the sweep had flipped these two, and someone then switched one off by hand under a "flag" policy.
  await services.engineStore.setEnforcedAt(users.enforcedUser.id, new Date(now - DAY))
  await services.engineStore.setDriftFlagged(users.drifted.id, new Date(now))
  await services.engine.refreshUser(users.enforcedUser.id)
  await services.engine.refreshUser(users.drifted.id)
  return { admin, users, campaignId: campaign.id }
}

/** Daily snapshots for the last three days (not yet enrolled: 9, 8, 7), written as the snapshot job writes them. */
export async function storeSnapshots (services: Services, clock: FakeClock): Promise<Array<{ day: string, notYetEnrolled: number }>> {
  const snapshots = snapshotRows(clock)
  for (const { day, takenAt, counts } of snapshots) {
    await sqlOn(services).run('INSERT INTO rollout_snapshots (day, taken_at, counts) VALUES (?, ?, ?)', day, takenAt, counts)
  }
  return snapshots.map(({ day, notYetEnrolled }) => ({ day, notYetEnrolled }))
}

/** storeSnapshots at once, for tests on the SQLite file only (the browser and copy-database tests). */
export function seedSnapshots (services: Services, clock: FakeClock): Array<{ day: string, notYetEnrolled: number }> {
  const snapshots = snapshotRows(clock)
  const insert = services.database.sqlite.prepare('INSERT INTO rollout_snapshots (day, taken_at, counts) VALUES (?, ?, ?)')
  for (const { day, takenAt, counts } of snapshots) insert.run(day, takenAt, counts)
  return snapshots.map(({ day, notYetEnrolled }) => ({ day, notYetEnrolled }))
}

function snapshotRows (clock: FakeClock): Array<{ day: string, takenAt: number, counts: string, notYetEnrolled: number }> {
  const now = clock.now().getTime()
  const rows = [
    { daysAgo: 3, counts: { pending: 9, enrolled: 1 } },
    { daysAgo: 2, counts: { pending: 6, overdue: 2, enrolled: 2 } },
    { daysAgo: 1, counts: { pending: 3, overdue: 4, enrolled: 2, attention: 1 } }
  ]
  return rows.map(({ daysAgo, counts }) => ({
    day: new Date(now - daysAgo * DAY).toISOString().slice(0, 10),
    takenAt: now - daysAgo * DAY,
    counts: JSON.stringify(counts),
    notYetEnrolled: counts.pending + ('overdue' in counts ? counts.overdue ?? 0 : 0)
  }))
}
