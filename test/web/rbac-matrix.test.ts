import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ApiScope } from '../../server/domain/api-tokens.ts'
import { OPERATIONS } from '../../server/web/schemas/api.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { anonymous, createTestUser, csrfFor, signIn, signInStaff, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

/**
 * Every console and API route × every kind of caller → what they get. The routes come from the running app itself,
 * so a route added later without a guard fails here instead of shipping open.
 */
let t: TestApp
// Staff as signed in, and staff who have also just confirmed it's them (step-up), as console actions require.
const agents: Record<'anonymous' | 'user' | 'helpdesk' | 'admin' | 'helpdeskConfirmed' | 'adminConfirmed', Agent> = {} as never
const tokens: Record<string, string> = {}
let ids: Record<string, string>

before(async () => {
  t = await startTestApp()
  agents.anonymous = anonymous(t)
  for (const role of ['user', 'helpdesk', 'admin'] as const) agents[role] = await signIn(t, (await createTestUser(t.services, { role })).email)
  agents.helpdeskConfirmed = await signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
  agents.adminConfirmed = await signInStaff(t, await createTestUser(t.services, { role: 'admin' }))
  const target = await createTestUser(t.services)
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now()), { id: null, label: 'test' })
  const automation = automationServices(t.services)
  for (const scope of ['phones:write', 'status:read', 'compliance:read'] as ApiScope[]) {
    tokens[scope] = (await automation.tokens.create({ name: `only ${scope}`, scopes: [scope], expiresInDays: null }, { id: null, label: 'test' })).secret
  }
  // The console routes are called for real as admin (revoke included): they get a token of their own.
  const { token } = await automation.tokens.create({ name: 'for the console routes', scopes: ['status:read'], expiresInDays: null }, { id: null, label: 'test' })
  await t.services.campaigns.exempt(target.id, { kind: 'other', reason: 'matrix test', owner: 'IT', expiresAt: new Date(t.clock.now().getTime() + 86_400_000) }, { id: null, label: 'test' })
  const exemption = (await sqlOn(t.services).value('SELECT id FROM exemptions LIMIT 1')) as string
  // A two-person-rule request by an administrator who is none of the callers, so every admin caller may decide it.
  const requester = await createTestUser(t.services, { role: 'admin' })
  const privileged = await createTestUser(t.services, { privileged: true })
  const pending = await t.services.helpdesk.issuePass(privileged.id, { lifetimeMinutes: 60, oneTime: true, reason: 'matrix test' }, { id: requester.id, label: requester.email, role: 'admin' })
  assert.ok('pendingApproval' in pending)
  ids = { id: target.id, userId: target.id, state: 'pending', campaign: campaign.id, token: token.id, exemption, approval: pending.pendingApproval.id }
})
after(async () => { await t.close() })

interface Route { method: string, path: string }

/** The app's routes, from Fastify's own route tree (children are printed as suffixes of their parent). */
function routes (): Route[] {
  const found: Route[] = []
  const stack: Array<{ depth: number, path: string }> = []
  for (const line of t.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([\s│├└─]*)(\S.*?) \(([A-Z, -]+)\)$/.exec(line)
    if (match === null) continue
    const depth = match[1].length
    while (stack.length > 0 && stack[stack.length - 1].depth >= depth) stack.pop()
    const path = (stack.length === 0 ? '' : stack[stack.length - 1].path) + match[2]
    stack.push({ depth, path })
    for (const method of match[3].split(', ')) if (method === 'GET' || method === 'POST' || method === 'PUT') found.push({ method, path })
  }
  return found
}

function concrete (path: string): string {
  return path
    .replace('/campaigns/:id', `/campaigns/${ids.campaign}`)
    .replace('/tokens/:id', `/tokens/${ids.token}`)
    .replace('/exemptions/:id', `/exemptions/${ids.exemption}`)
    .replace('/approvals/:id', `/approvals/${ids.approval}`)
    .replace(/:(\w+)/g, (_, name: string) => ids[name] ?? 'x')
}

async function call (agent: Agent, route: Route, headers: Record<string, string> = {}) {
  const url = concrete(route.path)
  if (route.method === 'GET') return agent.get(url).set(headers).redirects(0)
  const open = (): ReturnType<Agent['post']> => route.method === 'PUT' ? agent.put(url) : agent.post(url)
  // The API takes bearer tokens and no CSRF token; it must refuse whatever the session says.
  if (url.startsWith('/api/')) return open().set(headers).send({}).redirects(0)
  // A valid CSRF token from the caller's own session, so what is tested is the role guard, not the CSRF check.
  // (Fetched before the request is opened: supertest attaches the agent's cookies when a request is created.)
  const csrf = await csrfFor(agent, agent === agents.anonymous ? '/login' : '/')
  return open().set({ 'x-csrf-token': csrf, ...headers }).type('form').send({ _csrf: csrf }).redirects(0)
}

const consoleRoutes = (): Route[] => routes().filter((r) => /^\/(admin|helpdesk)(\/|$)/.test(r.path))

test('the route tree is read: the consoles and the API have their routes', () => {
  assert.ok(consoleRoutes().length >= 30, `found ${consoleRoutes().length} console routes`)
  assert.ok(routes().some((r) => r.method === 'PUT' && r.path === '/api/v1/users/:id/phone'))
})

test('every console route: anonymous → sign in, ordinary users → 403, helpdesk → only /helpdesk, admins → everything; every action needs a fresh step-up', async () => {
  for (const route of consoleRoutes()) {
    const label = `${route.method} ${route.path}`
    const anon = await call(agents.anonymous, route)
    assert.equal(anon.status, 303, label)
    assert.match(anon.headers.location, /^\/login/, label)
    assert.equal((await call(agents.user, route)).status, 403, `user: ${label}`)
    for (const [staff, confirmed] of [[agents.helpdesk, agents.helpdeskConfirmed], [agents.admin, agents.adminConfirmed]]) {
      const role = staff === agents.helpdesk ? 'helpdesk' : 'admin'
      const unconfirmed = await call(staff, route)
      const through = await call(confirmed, route)
      if (role === 'helpdesk' && route.path.startsWith('/admin')) {
        assert.equal(unconfirmed.status, 403, `${role}: ${label}`)
        assert.equal(through.status, 403, `${role} after a step-up: ${label}`)
        continue
      }
      if (route.method === 'GET') assert.ok(allowed(unconfirmed), `${role}: ${label} got ${unconfirmed.status}`)
      else assert.equal(unconfirmed.headers.location, HELD, `${role} without a step-up: ${label} got ${unconfirmed.status}`)
      assert.ok(allowed(through) && through.headers.location !== HELD, `${role} after a step-up: ${label} got ${through.status} ${through.headers.location ?? ''}`)
    }
  }
})

// Where a console action without a fresh step-up is sent: confirm it's you, then the held action is offered.
const HELD = `/step-up?next=${encodeURIComponent('/step-up/continue')}`

function allowed (res: { status: number, headers: Record<string, string> }): boolean {
  return res.status !== 401 && res.status !== 403 && !(res.status === 303 && res.headers.location.startsWith('/login'))
}

test('every API route: no token or a session cookie → 401, a token without the scope → 403, with it → through', async () => {
  const api = Object.values(OPERATIONS).filter((op) => op.scope !== null)
  assert.equal(api.length, 5)
  for (const op of api) {
    const route = { method: op.method, path: `/api/v1${op.url}` }
    const label = `${route.method} ${route.path}`
    assert.equal((await call(anonymous(t), route, { accept: 'application/json' })).status, 401, `anonymous: ${label}`)
    assert.equal((await call(agents.admin, route, { accept: 'application/json' })).status, 401, `admin session: ${label}`)
    for (const [scope, secret] of Object.entries(tokens)) {
      const res = await call(anonymous(t), route, { authorization: `Bearer ${secret}`, accept: 'application/json' })
      if (scope === op.scope) assert.ok(res.status !== 401 && res.status !== 403, `${scope}: ${label} got ${res.status} ${JSON.stringify(res.body)}`)
      else {
        assert.equal(res.status, 403, `${scope}: ${label}`)
        assert.equal(res.body.error.code, 'insufficient_scope')
      }
    }
  }
})

test('one user cannot touch another user\'s methods by guessing ids', async () => {
  const victim = await createTestUser(t.services)
  const method = await t.services.methods.addPhone(victim.id, 'Victim phone', '+14155550123')
  const attacker = agents.user
  for (const action of ['rename', 'remove']) {
    const csrf = await csrfFor(attacker, '/')
    const res = await attacker.post(`/methods/${method.id}/${action}`).type('form').send({ _csrf: csrf, name: 'pwned' })
    assert.ok(res.status === 404 || res.status === 303, `${action}: ${res.status}`)
  }
  const [after] = await t.services.methods.listFor(victim.id)
  assert.equal(after.name, 'Victim phone', 'unchanged')
  assert.equal((await attacker.get(`/helpdesk/users/${victim.id}`)).status, 403)
})
