import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SqliteSessionStore, type SessionAuth } from '../../server/db/sessions.ts'
import { PgSessionStore } from '../../server/db/pg/sessions.ts'
import { sql } from 'drizzle-orm'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { changeRows, insertUser } from './rows.ts'

type Sessions = SqliteSessionStore | PgSessionStore
type Session = { auth?: SessionAuth, note?: string }

interface Stores {
  sessions: Sessions
  connection: Connection
  close(): Promise<void>
}

const MINUTE = 60_000
const timeouts = { idleMs: 30 * MINUTE, absoluteMs: 8 * 60 * MINUTE }

async function storesOn (backend: Backend, clock: FakeClock): Promise<Stores> {
  const connection = await backend.connect()
  const sessions = connection.dialect === 'sqlite'
    ? new SqliteSessionStore(connection.database.access, clock, timeouts)
    : new PgSessionStore(connection.access, clock, timeouts)
  return { sessions, connection, close: connection.close }
}

async function getSession (sessions: Sessions, sid: string): Promise<Session | null> {
  return (await sessions.get(sid))?.data as Session | undefined ?? null
}

async function setSession (sessions: Sessions, sid: string, session: Session): Promise<void> {
  await sessions.set(sid, session)
}

for (const { name, open } of BACKENDS) {
  describe(`sessions on ${name}`, () => {
    const clock = new FakeClock('2026-11-25T09:00:00Z')
    let backend: Backend
    let stores: Stores
    before(async () => {
      backend = await open()
      stores = await storesOn(backend, clock)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    const signedIn = (userId: string, fields: Partial<SessionAuth> = {}): Session => {
      const now = clock.now().getTime()
      return { auth: { userId, createdAt: now, lastSeenAt: now, ...fields } }
    }

    test('a session reads back as written (and as the text JSON.stringify made of it), a later write replaces it, and a destroyed one is gone', async () => {
      const { sessions } = stores
      assert.equal(await getSession(sessions, 'rw'), null)
      await setSession(sessions, 'rw', { note: 'anonymous' })
      assert.deepEqual(await getSession(sessions, 'rw'), { note: 'anonymous' })
      await setSession(sessions, 'rw', signedIn('alice'))
      assert.deepEqual(await getSession(sessions, 'rw'), signedIn('alice'))
      assert.equal((await sessions.get('rw'))?.json, JSON.stringify(signedIn('alice')))
      await sessions.destroy('rw')
      assert.equal(await getSession(sessions, 'rw'), null)
    })

    test('a signed-in session is read with its user, their groups and where they stand; a visitor\'s with no one', async () => {
      const { sessions, connection } = stores
      await insertUser(connection, 'dana')
      await changeRows(connection, sql`INSERT INTO user_groups (user_id, group_name) VALUES ('dana', 'finance'), ('dana', 'Admins')`)
      const deadline = Date.parse('2026-12-01T00:00:00Z')
      await changeRows(connection, sql`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, soft_block_at, updated_at)
        VALUES ('dana', 'pending', 'no method yet', ${deadline}, NULL, NULL, 3, ${deadline - 86_400_000}, 0)`)
      await setSession(sessions, 'dana-laptop', signedIn('dana'))
      const read = await sessions.get('dana-laptop')
      assert.deepEqual(read?.data, signedIn('dana'))
      assert.equal(read?.signedIn?.userId, 'dana')
      assert.equal(read.signedIn.user?.email, 'dana@example.test')
      assert.deepEqual(read.signedIn.user.groups, ['Admins', 'finance'])
      await changeRows(connection, sql`UPDATE users SET password_hash = 'scrypt$hash', provider = 'entra', provider_methods = '["totp","phone"]',
        provider_attributes = '{"targetable":false,"unrecognisedMethods":2}' WHERE id = 'dana'`)
      for (const options of [undefined, { deadline: true }]) {
        const { user, deadline } = (await sessions.get('dana-laptop', options))?.signedIn ?? {}
        assert.deepEqual([user?.id, Object.keys(user ?? {}).filter((key) => /password/i.test(key))], ['dana', []], 'the user read with a session carries no password hash')
        assert.deepEqual([user?.providerMethods, user?.providerAttributes], [['totp', 'phone'], { targetable: false, unrecognisedMethods: 2 }])
        if (options !== undefined) assert.deepEqual([deadline?.facts.methodKinds, deadline?.facts.targetable], [['phone', 'totp'], false])
      }
      assert.deepEqual(read.signedIn.state, {
        state: 'pending', deadline: new Date(deadline), deadlineVersion: 3, desired: null, campaignId: null, softBlockAt: new Date(deadline - 86_400_000)
      })
      await setSession(sessions, 'visitor', { note: 'anonymous' })
      assert.deepEqual(await sessions.get('visitor'), { data: { note: 'anonymous' }, json: '{"note":"anonymous"}', signedIn: null })
    })

    test('asked for, a signed-in session is read with the deadline facts of the user it names; a visitor\'s, or one whose user is gone, with none', async () => {
      const { sessions, connection } = stores
      await insertUser(connection, 'fay')
      await setSession(sessions, 'fay-laptop', signedIn('fay'))
      const read = await sessions.get('fay-laptop', { deadline: true })
      assert.deepEqual([read?.signedIn?.user?.id, read?.signedIn?.deadline?.facts.userId, read?.signedIn?.deadline?.facts.methods, read?.signedIn?.deadline?.campaigns],
        ['fay', 'fay', [], []])
      assert.equal(Object.hasOwn((await sessions.get('fay-laptop'))?.signedIn ?? {}, 'deadline'), false, 'not read unless asked for')
      await setSession(sessions, 'ghost-tablet', signedIn('ghost'))
      assert.deepEqual((await sessions.get('ghost-tablet', { deadline: true }))?.signedIn, { userId: 'ghost', user: undefined, state: undefined, deadline: undefined })
      await setSession(sessions, 'visitor-2', { note: 'anonymous' })
      assert.equal((await sessions.get('visitor-2', { deadline: true }))?.signedIn, null)
    })

    test('a session whose user is gone reads with no user, and one whose user was never assessed with no state', async () => {
      const { sessions, connection } = stores
      await insertUser(connection, 'erin')
      await setSession(sessions, 'erin-laptop', signedIn('erin'))
      const read = await sessions.get('erin-laptop')
      assert.equal(read?.signedIn?.user?.id, 'erin')
      assert.deepEqual(read.signedIn.user.groups, [])
      assert.equal(read.signedIn.state, undefined)
      await setSession(sessions, 'ghost-laptop', signedIn('ghost'))
      assert.deepEqual(await sessions.get('ghost-laptop'), {
        data: signedIn('ghost'), json: JSON.stringify(signedIn('ghost')), signedIn: { userId: 'ghost', user: undefined, state: undefined }
      })
    })

    test('an anonymous session is gone once it has been idle for the idle timeout', async () => {
      const { sessions } = stores
      await setSession(sessions, 'anon-idle', { note: 'cart' })
      clock.advance(timeouts.idleMs - 1)
      assert.deepEqual(await getSession(sessions, 'anon-idle'), { note: 'cart' })
      clock.advance(1)
      assert.equal(await getSession(sessions, 'anon-idle'), null)
    })

    test('an expired signed-in session is still handed back, so the user can be told why they were signed out', async () => {
      const { sessions } = stores
      const session = signedIn('alice')
      await setSession(sessions, 'signed-in-idle', session)
      clock.advance(timeouts.idleMs)
      assert.deepEqual(await getSession(sessions, 'signed-in-idle'), session)
    })

    test('housekeeping removes a signed-in session at the earliest of its idle, absolute and pass deadlines', async () => {
      const { sessions } = stores
      const now = clock.now().getTime()
      // Idle: seen a minute ago; absolute: signed in almost 8 hours ago; pass: ends in 10 minutes.
      await setSession(sessions, 'deadline-idle', signedIn('bob', { lastSeenAt: now - MINUTE }))
      await setSession(sessions, 'deadline-absolute', signedIn('bob', { createdAt: now - timeouts.absoluteMs + 5 * MINUTE }))
      await setSession(sessions, 'deadline-pass', signedIn('bob', { passSession: true, passUntil: now + 10 * MINUTE }))
      // Sessions earlier tests left to expire go first.
      await sessions.purgeExpired()

      clock.advance(5 * MINUTE)
      assert.equal(await sessions.purgeExpired(), 1)
      assert.equal(await getSession(sessions, 'deadline-absolute'), null)
      clock.advance(5 * MINUTE)
      assert.equal(await sessions.purgeExpired(), 1)
      assert.equal(await getSession(sessions, 'deadline-pass'), null)
      clock.advance(19 * MINUTE - 1)
      assert.equal(await sessions.purgeExpired(), 0)
      assert.notEqual(await getSession(sessions, 'deadline-idle'), null)
      clock.advance(1)
      assert.equal(await sessions.purgeExpired(), 1)
      assert.equal(await getSession(sessions, 'deadline-idle'), null)
    })

    test('revoking a user ends all their sessions and no one else\'s', async () => {
      const { sessions } = stores
      await setSession(sessions, 'carol-laptop', signedIn('carol'))
      await setSession(sessions, 'carol-phone', signedIn('carol'))
      await setSession(sessions, 'alice-laptop', signedIn('alice'))
      assert.equal(await sessions.revokeAllFor('carol'), 2)
      assert.equal(await getSession(sessions, 'carol-laptop'), null)
      assert.equal(await getSession(sessions, 'carol-phone'), null)
      assert.notEqual(await getSession(sessions, 'alice-laptop'), null)
      assert.equal(await sessions.revokeAllFor('carol'), 0)
    })

    test('signing out of a session leaves it no longer owned by the user: revoking them later does not count it', async () => {
      const { sessions } = stores
      await setSession(sessions, 'signed-out', signedIn('bob'))
      await setSession(sessions, 'signed-out', { note: 'signed out' })
      assert.equal(await sessions.revokeAllFor('bob'), 0)
      assert.deepEqual(await getSession(sessions, 'signed-out'), { note: 'signed out' })
    })

    if (name === 'PostgreSQL') {
      test('a session written by one instance is read, and ended, by another', async () => {
        const other = await storesOn(backend, clock)
        try {
          await stores.sessions.set('shared', signedIn('alice'))
          assert.deepEqual(await getSession(other.sessions, 'shared'), signedIn('alice'))
          await other.sessions.destroy('shared')
          assert.equal(await getSession(stores.sessions, 'shared'), null)
        } finally {
          await other.close()
        }
      })
    }
  })
}
