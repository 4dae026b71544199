import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { createTestUser, csrfFor, signIn, startTestApp, stepUp, submitForm, totpCode, type Agent, type TestApp } from '../helpers/app.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let smtp: SmtpSink
before(async () => {
  smtp = await startSmtpSink()
  t = await startTestApp({ SMTP_URL: smtp.url })
})
after(async () => {
  await t.close()
  await smtp.close()
})

const CODE = /<code>([A-Z2-9]{5}-[A-Z2-9]{5})<\/code>/g

function codesOn (html: string): string[] {
  return [...html.matchAll(CODE)].map((m) => m[1])
}

async function rows (userId: string): Promise<Array<Record<string, unknown>>> {
  return await sqlOn(t.services).all<Record<string, unknown>>('SELECT * FROM recovery_codes WHERE user_id = ?', userId)
}

async function audits (userId: string, action: string): Promise<number> {
  return (await t.services.audit.list({ subjectUserId: userId, action })).length
}

/** Creates a set through the page (after a step-up on `agent`) and returns the codes shown. */
async function createCodes (agent: Agent): Promise<string[]> {
  const res = await submitForm(agent, '/recovery-codes', '/recovery-codes')
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/recovery-codes')
  const page = await agent.get('/recovery-codes')
  return codesOn(page.text)
}

/** A local user with an authenticator app, signed in and stepped up, holding a fresh set of codes. */
async function userWithCodes () {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  await stepUp(t, agent, user)
  const codes = await createCodes(agent)
  return { user, agent, codes }
}

/** An enforced user (MFA owed at sign-in) signing in with a password: the session owes its second factor. */
async function signInOwingSecondFactor (email: string): Promise<Agent> {
  const agent = await signIn(t, email)
  assert.match((await agent.get('/')).headers.location ?? '', /^\/step-up/)
  return agent
}

test('a local user creates ten recovery codes after confirming it\'s them; they are shown once and only keyed hashes are stored', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  await t.services.methods.addTotp(user.id, 'App', new Secret({ size: 20 }).base32, 0)
  assert.match((await agent.get('/')).text, /href="\/recovery-codes"/, 'the home page offers them once a method is set up')

  const refused = await submitForm(agent, '/recovery-codes', '/recovery-codes')
  assert.match(refused.headers.location, /^\/step-up\?next=/, 'creating codes needs a step-up')
  assert.equal((await rows(user.id)).length, 0)

  await stepUp(t, agent, user)
  const codes = await createCodes(agent)
  assert.equal(codes.length, 10)
  assert.equal(new Set(codes).size, 10)
  assert.equal(await audits(user.id, 'recovery_codes.generated'), 1)

  const again = await agent.get('/recovery-codes')
  assert.equal(codesOn(again.text).length, 0, 'a second visit no longer shows them')
  assert.match(again.text, /<p id="recovery-remaining">You have <strong>10<\/strong> unused recovery codes/)

  const stored = await rows(user.id)
  assert.equal(stored.length, 10)
  const everything = JSON.stringify(await sqlOn(t.services).all('SELECT * FROM recovery_codes'))
  for (const code of codes) {
    assert.ok(!everything.includes(code) && !everything.includes(code.replace('-', '')), 'no code is stored in the clear')
  }
  assert.ok(!JSON.stringify(await t.services.audit.list({ subjectUserId: user.id })).includes(codes[0].replace('-', '')), 'nor in the audit log')
})

test('the codes download once as a text file right after they are created, never again', async () => {
  const { agent, codes } = await userWithCodes()
  const file = await agent.get('/recovery-codes/download')
  assert.equal(file.status, 200)
  assert.match(file.headers['content-disposition'], /^attachment; filename="recovery-codes\.txt"/)
  assert.match(file.headers['cache-control'], /no-store/)
  assert.match(file.headers['content-type'], /^text\/plain/)
  for (const code of codes) assert.ok(file.text.includes(code))

  const second = await agent.get('/recovery-codes/download')
  assert.equal(second.status, 303, 'the second download is refused')
  for (const code of codes) assert.ok(!(second.text ?? '').includes(code))
})

test('an enforced user signs in with a recovery code in place of the second factor, once; the second use is refused and they are e-mailed', async () => {
  const { user, codes } = await userWithCodes()
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)

  const agent = await signInOwingSecondFactor(user.email)
  const page = await agent.get('/step-up?next=/')
  assert.match(page.text, /Use a recovery code/)
  // Typed loosely: lower case, spaces instead of the dash.
  const res = await submitForm(agent, '/step-up?next=/', '/step-up/recovery-code', { code: ` ${codes[0].toLowerCase().replace('-', ' ')} `, next: '/' })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/')
  const home = await agent.get('/')
  assert.equal(home.status, 200)
  assert.match(home.text, /Signed in with a recovery code\. You have 9 recovery codes left\./)
  assert.equal(await audits(user.id, 'recovery_codes.used'), 1)
  const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /recovery code was used/.test(m.subject))
  assert.match(mail.text, /Was this you\?/)
  assert.match(mail.text, /You have 9 recovery codes left/)
  assert.match(mail.text, /This wasn't me/)

  const other = await signInOwingSecondFactor(user.email)
  const reused = await submitForm(other, '/step-up?next=/', '/step-up/recovery-code', { code: codes[0], next: '/' })
  assert.match(reused.headers.location, /^\/step-up\?next=/)
  assert.match((await other.get(reused.headers.location)).text, /That recovery code is not right, or it was already used/)
  assert.match((await other.get('/')).headers.location ?? '', /^\/step-up/, 'the second use does not sign in')
  assert.equal(await audits(user.id, 'recovery_codes.refused'), 1)
})

test('a recovery code sent twice at the same moment signs in only once', async () => {
  const { user, codes } = await userWithCodes()
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  const agents = [await signInOwingSecondFactor(user.email), await signInOwingSecondFactor(user.email)]
  const tokens = await Promise.all(agents.map(async (a) => await csrfFor(a, '/step-up?next=/')))
  const results = await Promise.all(agents.map(async (a, i) => await a.post('/step-up/recovery-code').type('form').send({ code: codes[3], next: '/', _csrf: tokens[i] })))
  const signedIn = results.filter((r) => r.headers.location === '/')
  assert.equal(signedIn.length, 1)
  assert.equal(await audits(user.id, 'recovery_codes.used'), 1)
  assert.equal((await rows(user.id)).filter((r) => r.used_at !== null).length, 1)
})

test('wrong recovery codes are regulated: after five, even a right one is refused for a while', async () => {
  const { user, codes } = await userWithCodes()
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  const agent = await signInOwingSecondFactor(user.email)
  for (let i = 0; i < 5; i++) await submitForm(agent, '/step-up?next=/', '/step-up/recovery-code', { code: 'AAAAA-AAAAA', next: '/' })
  const locked = await submitForm(agent, '/step-up?next=/', '/step-up/recovery-code', { code: codes[1], next: '/' })
  assert.match(locked.headers.location, /^\/step-up/)
  assert.equal(await audits(user.id, 'recovery_codes.used'), 0)
  assert.equal((await rows(user.id)).filter((r) => r.used_at !== null).length, 0, 'the right code was not used up while locked')
})

test('a recovery code does not stand in for a step-up before changes, only for the second factor at sign-in', async () => {
  const { user, codes } = await userWithCodes()
  const agent = await signIn(t, user.email)
  assert.doesNotMatch((await agent.get('/step-up?next=/')).text, /Use a recovery code/)
  const res = await submitForm(agent, '/step-up?next=/', '/step-up/recovery-code', { code: codes[0], next: '/' })
  assert.match(res.headers.location, /^\/step-up/)
  assert.equal((await rows(user.id)).filter((r) => r.used_at !== null).length, 0)
})

test('creating a new set needs a fresh step-up and voids the old codes', async () => {
  const { user, agent, codes } = await userWithCodes()
  t.clock.advance(11 * 60_000)
  const refused = await submitForm(agent, '/recovery-codes', '/recovery-codes')
  assert.match(refused.headers.location, /^\/step-up\?next=/)
  assert.equal(await audits(user.id, 'recovery_codes.regenerated'), 0)

  await stepUp(t, agent, user)
  const fresh = await createCodes(agent)
  assert.equal(fresh.length, 10)
  assert.equal(await audits(user.id, 'recovery_codes.regenerated'), 1)
  assert.equal(await t.services.recoveryCodes.remaining(user), 10)

  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  const old = await signInOwingSecondFactor(user.email)
  await submitForm(old, '/step-up?next=/', '/step-up/recovery-code', { code: codes[2], next: '/' })
  assert.match((await old.get('/')).headers.location ?? '', /^\/step-up/, 'an old code no longer signs in')
  const ok = await submitForm(old, '/step-up?next=/', '/step-up/recovery-code', { code: fresh[2], next: '/' })
  assert.equal(ok.headers.location, '/')
})

test('directory users get no recovery codes and are pointed at their directory\'s own recovery', async () => {
  const user = await createTestUser(t.services)
  await sqlOn(t.services).run("UPDATE users SET provider = 'aws', external_id = ? WHERE id = ?", `dir-${user.id}`, user.id)
  const secret = new Secret({ size: 20 }).base32
  const app = await t.services.methods.addTotp(user.id, 'App', secret, 0)
  const agent = await signIn(t, user.email)
  await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code: totpCode(secret, t.clock.now().getTime()), next: '/' })
  const home = await agent.get('/')
  assert.doesNotMatch(home.text, /href="\/recovery-codes"/)
  assert.match(home.text, /own account recovery/)
  const res = await submitForm(agent, '/recovery-codes', '/recovery-codes')
  assert.equal(res.status, 303)
  assert.equal((await rows(user.id)).length, 0)
  assert.match((await agent.get('/recovery-codes')).text, /directory's own account recovery/)
})

test('a helpdesk reset voids the person\'s recovery codes: whoever holds the old paper cannot sign in with it', async () => {
  const { user, codes } = await userWithCodes()
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const staff = await signIn(t, helpdesk.email)
  await stepUp(t, staff, helpdesk)
  const reset = await submitForm(staff, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/reset`, { reason: 'lost phone and paper', lifetimeMinutes: '60' })
  assert.equal(reset.status < 400, true, `reset answered ${reset.status}`)
  const [event] = await t.services.audit.list({ subjectUserId: user.id, action: 'methods.reset' })
  assert.equal(JSON.parse(event.details).recoveryCodesVoided, 10)
  assert.equal(await t.services.recoveryCodes.remaining(user), 0)

  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  await t.services.methods.addTotp(user.id, 'New app', new Secret({ size: 20 }).base32, 0)
  const agent = await signInOwingSecondFactor(user.email)
  const res = await submitForm(agent, '/step-up?next=/', '/step-up/recovery-code', { code: codes[1], next: '/' })
  assert.match(res.headers.location, /^\/step-up\?next=/)
  assert.match((await agent.get('/')).headers.location ?? '', /^\/step-up/, 'an old code does not sign in')
})
