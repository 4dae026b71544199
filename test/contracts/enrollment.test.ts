import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { PendingStore } from '../../server/domain/pending.ts'
import type { ChallengeStore } from '../../server/domain/passkeys.ts'
import type { NoticeStore } from '../../server/domain/method-lifecycle.ts'
import type { AccessPassStore } from '../../server/domain/passes.ts'
import type { Outbox } from '../../server/domain/notifications.ts'
import { SqlitePendingStore } from '../../server/db/pending.ts'
import { PgPendingStore } from '../../server/db/pg/pending.ts'
import { SqliteAccessPassStore, SqliteChallengeStore, SqliteNoticeStore, SqliteOutbox } from '../../server/db/enrollment-stores.ts'
import { PgAccessPassStore, PgChallengeStore, PgNoticeStore, PgOutbox } from '../../server/db/pg/enrollment-stores.ts'
import { providerSeedBinding } from '../../server/db/provider-enrollments.ts'
import { Sealer } from '../../server/db/sealing.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { changeRows, insertUser, rowsOf } from './rows.ts'

const OLD_KEY = Buffer.alloc(32, 1)
const NEW_KEY = Buffer.alloc(32, 2)
const HOUR = 3_600_000

interface Stores {
  pending: PendingStore
  challenges: ChallengeStore
  notices: NoticeStore
  passes: AccessPassStore
  outbox: Outbox
}

function storesOn (connection: Connection, clock: FakeClock, sealer = new Sealer(OLD_KEY)): Stores {
  if (connection.dialect === 'sqlite') {
    const { access } = connection.database
    return { pending: new SqlitePendingStore(access, sealer, clock), challenges: new SqliteChallengeStore(access), notices: new SqliteNoticeStore(access), passes: new SqliteAccessPassStore(access), outbox: new SqliteOutbox(access) }
  }
  const { access } = connection
  return { pending: new PgPendingStore(access, sealer, clock), challenges: new PgChallengeStore(access), notices: new PgNoticeStore(access), passes: new PgAccessPassStore(access), outbox: new PgOutbox(access) }
}

async function countOf (connection: Connection, table: 'pending_enrollments' | 'access_passes', userId: string, extra = sql``): Promise<number> {
  const [{ n }] = await rowsOf<{ n: number }>(connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM ${sql.identifier(table)} WHERE user_id = ${userId} ${extra}`)
  return n
}

/** One instance more on the same database, for races between instances; closed after `work`. */
async function withSecondInstance (backend: Backend, clock: FakeClock, work: (other: Stores) => Promise<void>): Promise<void> {
  const other = await backend.connect()
  try {
    await work(storesOn(other, clock))
  } finally {
    await other.close()
  }
}

for (const { name, open } of BACKENDS) {
  describe(`enrollment stores on ${name}`, () => {
    const clock = new FakeClock('2026-11-25T09:00:00Z')
    let backend: Backend
    let connection: Connection & { close(): Promise<void> }
    let stores: Stores
    const inAnHour = () => new Date(clock.now().getTime() + HOUR)
    before(async () => {
      backend = await open()
      connection = await backend.connect()
      stores = storesOn(connection, clock)
      for (const id of ['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'gus']) await insertUser(connection, id)
    })
    after(async () => {
      await connection.close()
      await backend.drop()
    })

    // ---- Setups in progress ----

    test('an authenticator-app setup keeps its secret sealed, and a new setup replaces the one before', async () => {
      const { pending } = stores
      const first = await pending.startTotp('ann', 'JBSWY3DPEHPK3PXP', inAnHour())
      assert.deepEqual(first, { id: first.id, userId: 'ann', kind: 'totp', phone: null, codeHash: null, attempts: 0, sentAt: null, expiresAt: inAnHour() })
      const second = await pending.startTotp('ann', 'GEZDGNBVGY3TQOJQ', inAnHour())
      assert.deepEqual(await pending.findTotp('ann'), { ...second, secret: 'GEZDGNBVGY3TQOJQ' })
      assert.equal(await countOf(connection, 'pending_enrollments', 'ann'), 1)
      const [row] = await rowsOf<{ secret_sealed: string }>(connection, sql`SELECT secret_sealed FROM pending_enrollments WHERE id = ${second.id}`)
      assert.doesNotMatch(row.secret_sealed, /GEZDGNBVGY3TQOJQ/)
      assert.equal(await pending.findTotp('ben'), undefined)
    })

    test('a phone setup\'s code is hashed over the new row\'s id, and replaces only the earlier setup of its kind', async () => {
      const { pending } = stores
      const sentAt = clock.now()
      await pending.startPhone('ben', 'phone', '+4915100000001', (id) => `old:${id}`, sentAt, inAnHour())
      const stepUp = await pending.startPhone('ben', 'step_up_phone', '+4915100000001', (id) => `step-up:${id}`, sentAt, inAnHour())
      const phone = await pending.startPhone('ben', 'phone', '+4915100000002', (id) => `hash:${id}`, sentAt, inAnHour())
      assert.deepEqual(phone, { id: phone.id, userId: 'ben', kind: 'phone', phone: '+4915100000002', codeHash: `hash:${phone.id}`, attempts: 0, sentAt, expiresAt: inAnHour() })
      assert.deepEqual(await pending.findPhone('ben', 'phone'), phone)
      assert.deepEqual(await pending.findPhone('ben', 'step_up_phone'), stepUp)
      assert.equal(await pending.findPhone('ann', 'phone'), undefined)
    })

    test('failed attempts count up one at a time, and a new code starts the count again', async () => {
      const { pending } = stores
      const setup = await pending.startPhone('cat', 'phone', '+4915100000003', (id) => `first:${id}`, clock.now(), inAnHour())
      assert.equal(await pending.addAttempt(setup.id), 1)
      assert.equal(await pending.addAttempt(setup.id), 2)
      const resentAt = new Date(clock.now().getTime() + 60_000)
      await pending.resendCode(setup.id, 'second', resentAt, new Date(resentAt.getTime() + HOUR))
      assert.deepEqual(await pending.findPhone('cat', 'phone'), { ...setup, codeHash: 'second', attempts: 0, sentAt: resentAt, expiresAt: new Date(resentAt.getTime() + HOUR) })
      assert.equal(await pending.addAttempt(setup.id), 1)
    })

    test('an attempt on a setup that is gone counts as too many', async () => {
      assert.equal(await stores.pending.addAttempt('no-such-setup'), Number.MAX_SAFE_INTEGER)
    })

    test('a setup is claimed once', async () => {
      const { pending } = stores
      const setup = await pending.startPhone('cat', 'step_up_phone', '+4915100000003', (id) => id, clock.now(), inAnHour())
      assert.equal(await pending.claim(setup.id), true)
      assert.equal(await pending.claim(setup.id), false)
      assert.equal(await pending.findPhone('cat', 'step_up_phone'), undefined)
    })

    test('text messages sent are counted per user since a moment', async () => {
      const { pending } = stores
      const start = clock.now().getTime()
      await pending.recordSms('dan', '+4915100000004', new Date(start))
      await pending.recordSms('dan', '+4915100000004', new Date(start + 10 * 60_000))
      await pending.recordSms('eve', '+4915100000005', new Date(start + 10 * 60_000))
      assert.equal(await pending.smsCountSince('dan', new Date(start)), 2)
      assert.equal(await pending.smsCountSince('dan', new Date(start + 1)), 1)
      assert.equal(await pending.smsCountSince('fay', new Date(start)), 0)
    })

    test('housekeeping forgets setups expired by now and text messages sent more than a day before', async () => {
      const { pending } = stores
      // Long before every other test's rows, so that only these are old enough.
      const now = new Date('2001-01-02T00:00:00Z')
      await pending.startTotp('fay', 'JBSWY3DPEHPK3PXP', now)
      await pending.startPhone('fay', 'phone', '+4915100000006', (id) => id, now, new Date(now.getTime() + 1))
      await pending.recordSms('fay', '+4915100000006', new Date(now.getTime() - 24 * HOUR))
      await pending.recordSms('fay', '+4915100000006', new Date(now.getTime() - 24 * HOUR + 1))
      assert.equal(await pending.purgeExpired(now), 2)
      assert.equal(await pending.findTotp('fay'), undefined)
      assert.notEqual(await pending.findPhone('fay', 'phone'), undefined)
      assert.equal(await pending.smsCountSince('fay', new Date(0)), 1)
    })

    test('key rotation re-seals the secrets of setups in progress and of directory setups, all or nothing', async () => {
      const { pending } = stores
      await pending.startTotp('gus', 'JBSWY3DPEHPK3PXP', inAnHour())
      const seedId = randomUUID()
      const sealedSeed = new Sealer(OLD_KEY).seal('SEEDSEEDSEED', providerSeedBinding(seedId))
      await changeRows(connection, sql`INSERT INTO provider_enrollments (id, user_id, provider, kind, secret_sealed, attempts, created_at, expires_at)
        VALUES (${seedId}, 'gus', 'aws', 'virtual_mfa', ${sealedSeed}, 0, 0, ${inAnHour().getTime()})`)
      const [{ n: sealedRows }] = await rowsOf<{ n: number }>(connection, sql`SELECT CAST((SELECT count(*) FROM pending_enrollments WHERE kind = 'totp' AND secret_sealed IS NOT NULL) + (SELECT count(*) FROM provider_enrollments WHERE secret_sealed IS NOT NULL) AS INTEGER) AS n`)

      // A store that cannot open the old key's secrets changes none of them.
      await assert.rejects(async () => { await storesOn(connection, clock, new Sealer(NEW_KEY)).pending.resealAll() })
      assert.equal((await pending.findTotp('gus'))?.secret, 'JBSWY3DPEHPK3PXP')

      const rotating = storesOn(connection, clock, new Sealer(NEW_KEY, [OLD_KEY])).pending
      assert.equal(await rotating.resealAll(), sealedRows)
      assert.equal(await rotating.resealAll(), 0)
      assert.equal((await storesOn(connection, clock, new Sealer(NEW_KEY)).pending.findTotp('gus'))?.secret, 'JBSWY3DPEHPK3PXP')
      const [seed] = await rowsOf<{ secret_sealed: string }>(connection, sql`SELECT secret_sealed FROM provider_enrollments WHERE id = ${seedId}`)
      assert.equal(new Sealer(NEW_KEY).open(seed.secret_sealed, providerSeedBinding(seedId)), 'SEEDSEEDSEED')
    })

    // ---- WebAuthn challenges ----

    test('a challenge is handed out once, and only for its purpose and its user', async () => {
      const { challenges } = stores
      const now = clock.now()
      const forAnn = await challenges.create('register', 'ann', 'challenge-ann', inAnHour())
      assert.equal(await challenges.claim(forAnn, 'authenticate', 'ann', now), undefined)
      assert.equal(await challenges.claim(forAnn, 'register', 'ben', now), undefined)
      assert.equal(await challenges.claim(forAnn, 'register', null, now), undefined)
      assert.equal(await challenges.claim(forAnn, 'register', 'ann', now), 'challenge-ann')
      assert.equal(await challenges.claim(forAnn, 'register', 'ann', now), undefined)

      const anonymous = await challenges.create('authenticate', null, 'challenge-anyone', inAnHour())
      assert.equal(await challenges.claim(anonymous, 'authenticate', 'ann', now), undefined)
      assert.equal(await challenges.claim(anonymous, 'authenticate', null, now), 'challenge-anyone')
    })

    test('a challenge is refused from the moment it expires', async () => {
      const { challenges } = stores
      const expiresAt = inAnHour()
      const id = await challenges.create('step_up', 'ann', 'challenge-late', expiresAt)
      assert.equal(await challenges.claim(id, 'step_up', 'ann', expiresAt), undefined)
      assert.equal(await challenges.claim(id, 'step_up', 'ann', new Date(expiresAt.getTime() - 1)), 'challenge-late')
    })

    test('housekeeping deletes the challenges expired by now', async () => {
      const { challenges } = stores
      const now = new Date('2001-01-01T00:00:00Z')
      await challenges.create('register', 'ann', 'old', now)
      const fresh = await challenges.create('register', 'ann', 'fresh', new Date(now.getTime() + 1))
      assert.equal(await challenges.purge(now), 1)
      assert.equal(await challenges.claim(fresh, 'register', 'ann', now), 'fresh')
    })

    // ---- Method change notices ----

    test('a method notice is found by its token and claimed once', async () => {
      const { notices } = stores
      const expiresAt = inAnHour()
      const notice = await notices.create({ userId: 'ann', methodId: 'm-1', methodName: 'Yubikey', change: 'added', expiresAt, tokenHash: 'notice-token' })
      const expected = { id: notice.id, userId: 'ann', methodId: 'm-1', methodName: 'Yubikey', change: 'added', expiresAt, usedAt: null }
      const { tokenHash, ...created } = notice as typeof notice & { tokenHash?: string }
      assert.equal(tokenHash, 'notice-token')
      assert.deepEqual(created, expected)
      assert.deepEqual(await notices.findByTokenHash('notice-token'), expected)
      assert.equal(await notices.findByTokenHash('no-such-token'), undefined)
      const at = clock.now()
      assert.equal(await notices.claim(notice.id, at), true)
      assert.equal(await notices.claim(notice.id, at), false)
      assert.deepEqual(await notices.findByTokenHash('notice-token'), { ...expected, usedAt: at })
    })

    // ---- Temporary access passes ----

    test('a new pass revokes the user\'s earlier one: only the newest is active', async () => {
      const { passes } = stores
      const first = { id: randomUUID(), userId: 'ben', passHash: 'first', oneTime: true, expiresAt: inAnHour(), createdBy: 'helpdesk', createdAt: clock.now() }
      await passes.replace(first)
      clock.advance(1_000)
      const second = { id: randomUUID(), userId: 'ben', passHash: 'second', oneTime: false, expiresAt: inAnHour(), createdBy: null, createdAt: clock.now() }
      await passes.replace(second)
      assert.deepEqual(await passes.activeFor('ben', clock.now()), { id: second.id, userId: 'ben', passHash: 'second', oneTime: false, expiresAt: second.expiresAt, usedAt: null })
      assert.equal(await countOf(connection, 'access_passes', 'ben', sql`AND revoked_at IS NULL`), 1)
    })

    test('a pass is not active once used, or from the moment it expires', async () => {
      const { passes } = stores
      const pass = { id: randomUUID(), userId: 'cat', passHash: 'h', oneTime: true, expiresAt: inAnHour(), createdBy: null, createdAt: clock.now() }
      await passes.replace(pass)
      assert.equal(await passes.activeFor('cat', pass.expiresAt), undefined)
      assert.equal((await passes.activeFor('cat', new Date(pass.expiresAt.getTime() - 1)))?.id, pass.id)
      assert.equal(await passes.consume(pass.id, clock.now()), true)
      assert.equal(await passes.activeFor('cat', clock.now()), undefined)
      assert.equal(await passes.activeFor('nobody', clock.now()), undefined)
    })

    test('a one-time pass is used once, even by 50 sign-ins at the same moment', async () => {
      const { passes } = stores
      const pass = { id: randomUUID(), userId: 'dan', passHash: 'h', oneTime: true, expiresAt: inAnHour(), createdBy: null, createdAt: clock.now() }
      await passes.replace(pass)
      const uses = await Promise.all(Array.from({ length: 50 }, async () => await passes.consume(pass.id, clock.now())))
      assert.equal(uses.filter(Boolean).length, 1)
      assert.equal(await passes.consume(pass.id, clock.now()), false)
    })

    // ---- Sandbox outbox ----

    test('the outbox shows the newest messages first, 100 unless told otherwise', async () => {
      const { outbox } = stores
      const base = clock.now().getTime()
      for (let i = 0; i < 101; i++) {
        await outbox.add({ channel: i % 2 === 0 ? 'email' : 'sms', recipient: `r${i}`, subject: i % 2 === 0 ? `s${i}` : null, bodyText: `t${i}`, bodyHtml: i % 2 === 0 ? `<p>${i}</p>` : null }, new Date(base + i))
      }
      const latest = await outbox.latest()
      assert.equal(latest.length, 100)
      assert.equal(latest[99].recipient, 'r1')
      const [newest, before] = await outbox.latest(2)
      assert.deepEqual({ ...newest, id: 0 }, { id: 0, channel: 'email', recipient: 'r100', subject: 's100', bodyText: 't100', bodyHtml: '<p>100</p>', createdAt: new Date(base + 100) })
      assert.deepEqual({ ...before, id: 0 }, { id: 0, channel: 'sms', recipient: 'r99', subject: null, bodyText: 't99', bodyHtml: null, createdAt: new Date(base + 99) })
      assert.ok(newest.id > before.id)
    })

    if (name === 'PostgreSQL') {
      test('50 sign-ins with one one-time pass spread over two instances: exactly one succeeds', async () => {
        await withSecondInstance(backend, clock, async (other) => {
          const pass = { id: randomUUID(), userId: 'eve', passHash: 'h', oneTime: true, expiresAt: inAnHour(), createdBy: null, createdAt: clock.now() }
          await stores.passes.replace(pass)
          const uses = await Promise.all(Array.from({ length: 50 }, async (_, i) => await (i % 2 === 0 ? stores : other).passes.consume(pass.id, clock.now())))
          assert.equal(uses.filter(Boolean).length, 1)
        })
      })

      test('passes issued for one person on two instances at once leave exactly one active', async () => {
        await withSecondInstance(backend, clock, async (other) => {
          const pass = () => ({ id: randomUUID(), userId: 'fay', passHash: 'h', oneTime: true, expiresAt: inAnHour(), createdBy: null, createdAt: clock.now() })
          await Promise.all(Array.from({ length: 10 }, async (_, i) => { await (i % 2 === 0 ? stores : other).passes.replace(pass()) }))
          assert.equal(await countOf(connection, 'access_passes', 'fay', sql`AND revoked_at IS NULL`), 1)
        })
      })

      test('a challenge, a notice and a setup claimed on two instances at once are each claimed once', async () => {
        await withSecondInstance(backend, clock, async (other) => {
          const both = [stores, other]
          const challenge = await stores.challenges.create('authenticate', null, 'raced', inAnHour())
          const challenges = await Promise.all(Array.from({ length: 20 }, async (_, i) => await both[i % 2].challenges.claim(challenge, 'authenticate', null, clock.now())))
          assert.deepEqual(challenges.filter((c) => c !== undefined), ['raced'])

          const notice = await stores.notices.create({ userId: 'gus', methodId: 'm', methodName: 'Key', change: 'removed', expiresAt: inAnHour(), tokenHash: 'raced-notice' })
          const noticeClaims = await Promise.all(Array.from({ length: 20 }, async (_, i) => await both[i % 2].notices.claim(notice.id, clock.now())))
          assert.equal(noticeClaims.filter(Boolean).length, 1)

          const setup = await stores.pending.startPhone('gus', 'phone', '+4915100000007', (id) => id, clock.now(), inAnHour())
          const setupClaims = await Promise.all(Array.from({ length: 20 }, async (_, i) => await both[i % 2].pending.claim(setup.id)))
          assert.equal(setupClaims.filter(Boolean).length, 1)
        })
      })

      test('setups started for one person on two instances at once leave exactly one', async () => {
        await withSecondInstance(backend, clock, async (other) => {
          await Promise.all(Array.from({ length: 10 }, async (_, i) => await (i % 2 === 0 ? stores : other).pending.startTotp('eve', 'JBSWY3DPEHPK3PXP', inAnHour())))
          assert.equal(await countOf(connection, 'pending_enrollments', 'eve', sql`AND kind = 'totp'`), 1)
        })
      })
    }
  })
}
