import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { PHONE_RULES } from '../../server/domain/phone.ts'
import type { User } from '../../server/domain/users.ts'
import { anonymous, createTestUser, csrfFor, readable, signIn, startTestApp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

interface PendingRow { phone: string, code_hash: string, attempts: number }

async function pendingRows (t: TestApp, userId: string): Promise<PendingRow[]> {
  return await sqlOn(t.services).all<PendingRow>('SELECT phone, code_hash, attempts FROM pending_enrollments WHERE user_id = ?', userId)
}

async function textMessages (t: TestApp) {
  return (await t.services.outbox.latest(1000)).filter((m) => m.channel === 'sms')
}

/** The 6 digits of the newest text message, which only the phone's owner would see. */
async function latestCode (t: TestApp): Promise<string> {
  const text = (await textMessages(t))[0]?.bodyText ?? ''
  const code = /\b(\d{6})\b/.exec(text)?.[1]
  assert.ok(code !== undefined, `a 6-digit code in the latest text message: "${text}"`)
  return code
}

async function enrollingUser (t: TestApp): Promise<{ user: User, agent: Agent }> {
  const user = await createTestUser(t.services)
  return { user, agent: await signIn(t, user.email) }
}

/** Posts a form the way the page does: with the session's CSRF token. */
async function submit (agent: Agent, path: string, fields: Record<string, string> = {}) {
  return submitForm(agent, '/enroll/phone', path, fields)
}

const MOBILE = '+12025550143'

describe('choosing your own number', () => {
  let t: TestApp
  // Many people here share one test number, and UK and Guernsey (+44 7911) numbers are texted too; the toll-fraud
  // limits have their own tests below.
  before(async () => { t = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'US,GB,GG', SMS_MAX_PER_NUMBER_PER_HOUR: '1000' }) })
  after(async () => { await t.close() })

  test('the page asks for a mobile number with a phone keyboard, and says which country is assumed', async () => {
    const { agent } = await enrollingUser(t)
    const page = await agent.get('/enroll/phone')
    assert.equal(page.status, 200)
    assert.match(page.text, /<input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel"/)
    assert.match(page.text, /unless it is a United States number/)
    assert.match(page.text, /action="\/enroll\/phone"/)
    assert.doesNotMatch(page.text, /action="\/enroll\/phone\/verify"/, 'no code form before a code was sent')
  })

  for (const [typed, why] of [
    ['', /Enter your mobile number/],
    ['12', /is not a valid phone number/],
    ['abc', /is not a valid phone number/],
    ['+44 20 7946 0000', /cannot receive text messages/],
    ['+1 800 555 0100', /cannot receive text messages/],
    ['+1 202 555 0143 0143 0143 0143 0143 0143 01', /too long to be a phone number/]
  ] as const) {
    test(`"${typed}" is refused with a clear message, kept in the field, and nothing is sent`, async () => {
      const { user, agent } = await enrollingUser(t)
      const before = (await textMessages(t)).length
      const res = await submit(agent, '/enroll/phone', { phone: typed })
      assert.equal(res.status, 400)
      assert.match(res.text, why)
      assert.match(res.text, /<title>Error: /)
      assert.match(res.text, /aria-describedby="phone-hint form-error" aria-invalid="true"/)
      if (typed !== '') assert.ok(res.text.includes(`value="${typed}"`), 'what was typed is kept')
      assert.equal((await textMessages(t)).length, before)
      assert.deepEqual(await pendingRows(t, user.id), [])
    })
  }

  for (const [typed, e164, shown] of [
    ['(202) 555-0143', '+12025550143', '+1 202 555 0143'],
    ['+44 7911 123456', '+447911123456', '+44 7911 123456'],
    ['  +44 (0)7911-123 456 ', '+447911123456', '+44 7911 123456']
  ] as const) {
    test(`"${typed}" is texted at ${e164}`, async () => {
      const { user, agent } = await enrollingUser(t)
      const res = await submit(agent, '/enroll/phone', { phone: typed })
      assert.equal(res.status, 303)
      assert.equal(res.headers.location, '/enroll/phone')
      assert.equal((await textMessages(t))[0].recipient, e164)
      assert.deepEqual((await pendingRows(t, user.id)).map((r) => r.phone), [e164])
      const page = await agent.get('/enroll/phone')
      assert.ok(page.text.includes(`We sent a code to ${shown}.`), 'the flash names the number')
      assert.match(page.text, /action="\/enroll\/phone\/verify"/)
      assert.match(page.text, /autocomplete="one-time-code"/)
    })
  }

  test('the texted code adds the phone once: the method exists, the change is audited and emailed, and the code cannot be used again', async () => {
    const { user, agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)

    const res = await submit(agent, '/enroll/phone/verify', { code })
    assert.equal(res.status, 303)
    assert.equal(res.headers.location, '/')
    const methods = await t.services.methods.listFor(user.id)
    assert.deepEqual(methods.map((m) => [m.kind, m.phone]), [['phone', MOBILE]])
    const home = await agent.get('/')
    assert.match(home.text, /was added as a sign-in method/)
    assert.ok(readable(home.text).includes(methods[0].name), 'the new method is listed on the home page')
    const added = await t.services.audit.list({ subjectUserId: user.id, action: 'method.added' })
    assert.equal(added.length, 1)
    assert.equal(JSON.parse(added[0].details).kind, 'phone')
    const email = (await t.services.outbox.latest()).find((m) => m.channel === 'email' && m.recipient === user.email)
    assert.ok(email !== undefined, 'the user is emailed about the new method')
    assert.match(email.subject ?? '', /added/)
    assert.deepEqual(await pendingRows(t, user.id), [])

    // Even with a fresh step-up (needed now that a method exists), the used code does not work again.
    await submit(agent, '/step-up/phone/send', { methodId: methods[0].id, next: '/enroll/phone' })
    assert.equal((await submit(agent, '/step-up/phone', { code: await latestCode(t), next: '/enroll/phone' })).status, 303)
    const again = await submit(agent, '/enroll/phone/verify', { code })
    assert.equal(again.status, 400)
    assert.match(again.text, /no code waiting/)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })

  test('a code typed with spaces or a dash still works', async () => {
    const { user, agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)
    const res = await submit(agent, '/enroll/phone/verify', { code: ` ${code.slice(0, 3)}-${code.slice(3)} ` })
    assert.equal(res.status, 303)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })

  test('a number that is already one of your methods is refused, and not texted', async () => {
    const { user, agent } = await enrollingUser(t)
    const existing = await t.services.methods.addPhone(user.id, 'Mobile', MOBILE)
    // A second method needs a fresh step-up with the first.
    await submit(agent, '/step-up/phone/send', { methodId: existing.id, next: '/enroll/phone' })
    assert.equal((await submit(agent, '/step-up/phone', { code: await latestCode(t), next: '/enroll/phone' })).status, 303)
    const before = (await textMessages(t)).length
    const res = await submit(agent, '/enroll/phone', { phone: '(202) 555-0143' })
    assert.equal(res.status, 409)
    assert.match(res.text, /This number is already one of your sign-in methods./)
    assert.equal((await textMessages(t)).length, before)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })

  test('a code older than 10 minutes is refused, and a new one can be asked for', async () => {
    const { user, agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)
    t.clock.advance(PHONE_RULES.codeLifetimeMs + 60_000)
    const res = await submit(agent, '/enroll/phone/verify', { code })
    assert.equal(res.status, 400)
    assert.match(res.text, /This code has expired/)
    assert.match(res.text, /action="\/enroll\/phone\/resend"/, 'the page offers a new code')
    assert.equal(await t.services.methods.countFor(user.id), 0)

    const resent = await submit(agent, '/enroll/phone/resend')
    assert.equal(resent.status, 303)
    const fresh = await submit(agent, '/enroll/phone/verify', { code: await latestCode(t) })
    assert.equal(fresh.status, 303)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })

  test('after five wrong codes even the right code is refused', async () => {
    const { user, agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)
    const wrong = code === '000000' ? '111111' : '000000'

    const first = await submit(agent, '/enroll/phone/verify', { code: wrong })
    assert.equal(first.status, 400)
    assert.match(first.text, /That code is not right. You have 4 more tries./)
    assert.match(first.text, /aria-describedby="code-hint form-error" aria-invalid="true"/)
    for (let i = 2; i <= 4; i++) await submit(agent, '/enroll/phone/verify', { code: wrong })
    const fifth = await submit(agent, '/enroll/phone/verify', { code: wrong })
    assert.match(fifth.text, /Too many wrong codes/)

    const right = await submit(agent, '/enroll/phone/verify', { code })
    assert.equal(right.status, 400)
    assert.match(right.text, /Too many wrong codes. Ask for a new code./)
    assert.equal(await t.services.methods.countFor(user.id), 0)
    assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'phone.code_rejected' })).length, 5)
  })

  test('a new code can be asked for after a minute, not before, and replaces the old one', async () => {
    const { user, agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const first = await latestCode(t)
    const before = (await textMessages(t)).length

    const tooSoon = await submit(agent, '/enroll/phone/resend')
    assert.equal(tooSoon.status, 429)
    assert.match(tooSoon.text, /A code was just sent. You can ask for another in 60 seconds./)
    assert.equal(tooSoon.headers['retry-after'], '60')
    assert.equal((await textMessages(t)).length, before)

    t.clock.advance(PHONE_RULES.resendAfterMs + 1000)
    const resent = await submit(agent, '/enroll/phone/resend')
    assert.equal(resent.status, 303)
    assert.equal((await textMessages(t)).length, before + 1)
    assert.equal((await textMessages(t))[0].recipient, MOBILE)
    const second = await latestCode(t)
    if (second !== first) {
      const old = await submit(agent, '/enroll/phone/verify', { code: first })
      assert.equal(old.status, 400, 'the first code stopped working')
    }
    assert.equal((await submit(agent, '/enroll/phone/verify', { code: second })).status, 303)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })

  test('typing the number again within a minute does not send another text, and offers the code form', async () => {
    const { agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const before = (await textMessages(t)).length
    const res = await submit(agent, '/enroll/phone', { phone: MOBILE })
    assert.equal(res.status, 429)
    assert.match(res.text, /You can ask for another in/)
    assert.match(res.text, /action="\/enroll\/phone\/verify"/)
    assert.equal((await textMessages(t)).length, before)
  })

  test('no more than five codes are sent in an hour', async () => {
    const { agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: '+447911123456' })
    for (let sent = 1; sent < PHONE_RULES.maxSendsPerHour; sent++) {
      t.clock.advance(PHONE_RULES.resendAfterMs + 1000)
      assert.equal((await submit(agent, '/enroll/phone/resend')).status, 303)
    }
    const before = (await textMessages(t)).length
    t.clock.advance(PHONE_RULES.resendAfterMs + 1000)
    const sixth = await submit(agent, '/enroll/phone/resend')
    assert.equal(sixth.status, 429)
    assert.match(sixth.text, /Too many codes were sent in the last hour/)
    const anotherNumber = await submit(agent, '/enroll/phone', { phone: MOBILE })
    assert.equal(anotherNumber.status, 429, 'a different number does not reset the limit')
    assert.equal((await textMessages(t)).length, before)
  })

  test('hammering the code check is slowed per person, not per address', async () => {
    const { agent } = await enrollingUser(t)
    const statuses: number[] = []
    for (let i = 0; i < 21; i++) statuses.push((await submit(agent, '/enroll/phone/verify', { code: '123456' })).status)
    assert.ok(statuses.slice(0, 20).every((s) => s === 400), statuses.join(','))
    assert.equal(statuses[20], 429)
    // Someone else behind the same address is not held up.
    const { agent: colleague } = await enrollingUser(t)
    assert.equal((await submit(colleague, '/enroll/phone/verify', { code: '123456' })).status, 400)
  })

  test('the code is never shown on a page, and the database holds only a hash of it', async () => {
    const { user, agent } = await enrollingUser(t)
    const sent = await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)
    assert.ok(!sent.text.includes(code))
    const page = await agent.get('/enroll/phone')
    assert.ok(!page.text.includes(code), 'the code form does not show the code')
    // Even a refused right code is not put back into the form.
    t.clock.advance(PHONE_RULES.codeLifetimeMs + 1000)
    const expired = await submit(agent, '/enroll/phone/verify', { code })
    assert.equal(expired.status, 400)
    assert.ok(!expired.text.includes(code))
    const [row] = await pendingRows(t, user.id)
    assert.notEqual(row.code_hash, code)
    assert.ok(!row.code_hash.includes(code))
    assert.ok(row.code_hash.length >= 32)
  })
})

describe('who may add a phone', () => {
  test('from outside the trusted networks, the first method is refused with the reason, and nothing is sent', async () => {
    const t = await startTestApp({ TRUSTED_NETWORKS: '192.0.2.0/24' })
    try {
      const { user, agent } = await enrollingUser(t)
      const page = await agent.get('/enroll/phone')
      assert.equal(page.status, 403)
      assert.match(page.text, /can only be set up from your organisation&#39;s network/)
      assert.doesNotMatch(page.text, /name="phone"/)
      const res = await submit(agent, '/enroll/phone', { phone: MOBILE })
      assert.equal(res.status, 403)
      assert.match(res.text, /temporary access pass/)
      assert.equal((await textMessages(t)).length, 0)
      assert.deepEqual(await pendingRows(t, user.id), [])
    } finally {
      await t.close()
    }
  })

  test('with a method already, the page asks to confirm it is you first, and the link leads back here', async () => {
    const t = await startTestApp()
    try {
      const { user, agent } = await enrollingUser(t)
      const existing = await t.services.methods.addPhone(user.id, 'Work mobile', '+447911123456')
      const page = await agent.get('/enroll/phone')
      assert.equal(page.status, 403)
      assert.match(page.text, /first confirm it&#39;s you/)
      assert.match(page.text, /href="\/step-up\?next=\/enroll\/phone"/)
      const refused = await submit(agent, '/enroll/phone', { phone: MOBILE })
      assert.equal(refused.status, 403)
      assert.equal((await textMessages(t)).length, 0)

      await submit(agent, '/step-up/phone/send', { methodId: existing.id, next: '/enroll/phone' })
      const stepped = await submit(agent, '/step-up/phone', { code: await latestCode(t), next: '/enroll/phone' })
      assert.equal(stepped.status, 303)
      assert.equal(stepped.headers.location, '/enroll/phone')
      const open = await agent.get('/enroll/phone')
      assert.equal(open.status, 200)
      assert.match(open.text, /name="phone"/)
    } finally {
      await t.close()
    }
  })
})

describe('numbers pinned to the directory', () => {
  let t: TestApp
  before(async () => { t = await startTestApp({ PHONE_SOURCE: 'directory' }) })
  after(async () => { await t.close() })

  async function directoryUser (phone: string | null): Promise<{ user: User, agent: Agent }> {
    const created = await createTestUser(t.services)
    await t.services.users.upsertDirectoryUsers([{ email: created.email, displayName: created.displayName, phone, groups: [], privileged: false }])
    return { user: (await t.services.users.findById(created.id))!, agent: await signIn(t, created.email) }
  }

  test('the page shows the directory number and a button, with no field to type another', async () => {
    const { agent } = await directoryUser(MOBILE)
    const page = await agent.get('/enroll/phone')
    assert.equal(page.status, 200)
    assert.match(page.text, /<strong>\+1 202 555 0143<\/strong>/)
    assert.match(page.text, />Text me a code</)
    assert.doesNotMatch(page.text, /name="phone"/)
  })

  test('the code goes to the directory number and proves it', async () => {
    const { user, agent } = await directoryUser(MOBILE)
    assert.equal((await submit(agent, '/enroll/phone')).status, 303)
    assert.equal((await textMessages(t))[0].recipient, MOBILE)
    assert.equal((await submit(agent, '/enroll/phone/verify', { code: await latestCode(t) })).status, 303)
    assert.deepEqual((await t.services.methods.listFor(user.id)).map((m) => m.phone), [MOBILE])
  })

  test('posting another number is refused: nothing is sent and nothing stored', async () => {
    const { user, agent } = await directoryUser(MOBILE)
    const before = (await textMessages(t)).length
    const res = await submit(agent, '/enroll/phone', { phone: '+44 7911 123456' })
    assert.equal(res.status, 400)
    assert.match(res.text, /sets your mobile number from its directory/)
    assert.equal((await textMessages(t)).length, before)
    assert.deepEqual(await pendingRows(t, user.id), [])
    assert.equal(await t.services.methods.countFor(user.id), 0)
    assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'phone.pinned_number_refused' })).length, 1)
  })

  test('with no number in the directory, the page says to contact the helpdesk and offers nothing to send', async () => {
    const { user, agent } = await directoryUser(null)
    const page = await agent.get('/enroll/phone')
    assert.equal(page.status, 200)
    assert.match(page.text, /Your organisation has no mobile number on record for you. Contact your helpdesk./)
    assert.doesNotMatch(page.text, />Text me a code</)
    const before = (await textMessages(t)).length
    const res = await submit(agent, '/enroll/phone')
    assert.equal(res.status, 400)
    assert.match(res.text, /no mobile number on record/)
    assert.equal((await textMessages(t)).length, before)
    assert.deepEqual(await pendingRows(t, user.id), [])
  })
})

describe('bad input', () => {
  let t: TestApp
  let user: User
  let agent: Agent
  before(async () => {
    t = await startTestApp()
    ;({ user, agent } = await enrollingUser(t))
  })
  after(async () => { await t.close() })

  const ROUTES = ['/enroll/phone', '/enroll/phone/verify', '/enroll/phone/resend']

  test('anonymous visitors are sent to sign in, and their posts are refused', async () => {
    const visitor = anonymous(t)
    const page = await visitor.get('/enroll/phone')
    assert.equal(page.status, 303)
    assert.equal(page.headers.location, '/login?next=%2Fenroll%2Fphone')
    for (const path of ROUTES) {
      const res = await visitor.post(path).type('form').send({ phone: MOBILE, code: '123456' })
      assert.equal(res.status, 403, path)
    }
  })

  // [what, route, request] → expected status. Every one answers with a page that says what was wrong.
  const CASES: Array<[string, string, (a: Agent, csrf: string) => Promise<{ status: number, text: string }>, number, RegExp]> = [
    ['no CSRF token', '/enroll/phone', (a) => a.post('/enroll/phone').type('form').send({ phone: MOBILE }), 403, /This form has expired/],
    ['an oversized number', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').type('form').send({ phone: '1'.repeat(65), _csrf: csrf }), 400, /not valid/],
    ['two numbers', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').type('form').send(`phone=%2B12025550143&phone=%2B447911123456&_csrf=${encodeURIComponent(csrf)}`), 400, /not valid/],
    ['a JSON object as the number', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').send({ phone: { number: MOBILE }, _csrf: csrf }), 400, /not valid/],
    ['plain text', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').set('x-csrf-token', csrf).type('text/plain').send(`phone=${MOBILE}`), 400, /not valid/],
    ['XML', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').set('x-csrf-token', csrf).type('application/xml').send(`<phone>${MOBILE}</phone>`), 415, /does not accept that kind of content/],
    ['a huge body', '/enroll/phone', (a, csrf) => a.post('/enroll/phone').type('form').send({ phone: MOBILE, filler: 'x'.repeat(70_000), _csrf: csrf }), 413, /larger than this page accepts/],
    ['no code', '/enroll/phone/verify', (a, csrf) => a.post('/enroll/phone/verify').type('form').send({ _csrf: csrf }), 400, /not valid/],
    ['an oversized code', '/enroll/phone/verify', (a, csrf) => a.post('/enroll/phone/verify').type('form').send({ code: '1'.repeat(21), _csrf: csrf }), 400, /not valid/],
    ['a code with nothing sent', '/enroll/phone/verify', (a, csrf) => a.post('/enroll/phone/verify').type('form').send({ code: '123456', _csrf: csrf }), 400, /no code waiting/],
    ['XML', '/enroll/phone/verify', (a, csrf) => a.post('/enroll/phone/verify').set('x-csrf-token', csrf).type('application/xml').send('<code>123456</code>'), 415, /does not accept that kind of content/],
    ['a resend with nothing sent', '/enroll/phone/resend', (a, csrf) => a.post('/enroll/phone/resend').type('form').send({ _csrf: csrf }), 400, /no code to resend/],
    ['multipart', '/enroll/phone/resend', (a, csrf) => a.post('/enroll/phone/resend').set('x-csrf-token', csrf).field('again', 'yes'), 415, /does not accept that kind of content/]
  ]

  for (const [what, path, send, status, message] of CASES) {
    test(`${path} with ${what} answers ${status} with a clear message`, async () => {
      const res = await send(agent, await csrfFor(agent, '/enroll/phone'))
      assert.equal(res.status, status)
      assert.match(res.text, message)
      assert.doesNotMatch(res.text, /Something went wrong/)
    })
  }

  test('none of it sent or stored anything', async () => {
    assert.equal((await textMessages(t)).length, 0)
    assert.deepEqual(await pendingRows(t, user.id), [])
    assert.equal(await t.services.methods.countFor(user.id), 0)
  })
})

describe('the admin outbox', () => {
  let t: TestApp
  before(async () => { t = await startTestApp() })
  after(async () => { await t.close() })

  test('admins see the texts and emails kept in the sandbox, as escaped text', async () => {
    const { agent } = await enrollingUser(t)
    await submit(agent, '/enroll/phone', { phone: MOBILE })
    const code = await latestCode(t)
    await t.services.outbox.add({ channel: 'email', recipient: 'someone@test.example', subject: 'Hello <there>', bodyText: 'Plain <b>text</b> part', bodyHtml: '<p>HTML <script>alert(1)</script></p>' }, t.clock.now())

    const admin = await createTestUser(t.services, { role: 'admin' })
    const page = await (await signIn(t, admin.email)).get('/admin/outbox')
    assert.equal(page.status, 200)
    assert.match(page.text, /Sandbox: e-mail and text messages are kept here instead of being sent./)
    assert.match(page.text, /<th scope="col">To<\/th>/)
    assert.match(page.text, /<td>Text message<\/td>\s*<td>\+12025550143<\/td>/)
    assert.ok(page.text.includes(`${code} is your`), 'the admin can read the text message')
    assert.match(page.text, /Plain &lt;b&gt;text&lt;\/b&gt; part/)
    assert.match(page.text, /Hello &lt;there&gt;/)
    assert.doesNotMatch(page.text, /<script>alert|HTML &lt;script/, 'the HTML part is not shown at all')
  })

  for (const role of ['user', 'helpdesk'] as const) {
    test(`a ${role} gets 403 and sees no message`, async () => {
      const person = await createTestUser(t.services, { role })
      const page = await (await signIn(t, person.email)).get('/admin/outbox')
      assert.equal(page.status, 403)
      assert.doesNotMatch(page.text, /is your .* verification code/)
    })
  }
})

describe('toll-fraud limits on text messages', () => {
  const refusals = async (t: TestApp, reason: string) => (await t.services.audit.list({ action: 'phone.send_refused' }))
    .map((row) => JSON.parse(row.details) as { reason: string, phone: string, country?: string | null })
    .filter((d) => d.reason === reason)

  test('only numbers of the default region\'s country are texted unless more are allowed, +1 numbers of other countries included; refusals are audited', async () => {
    const t = await startTestApp()
    try {
      for (const [typed, country] of [['+44 7400 123456', 'GB'], ['+1 876 210 1234', 'JM']] as const) {
        const { agent } = await enrollingUser(t)
        const before = (await textMessages(t)).length
        const res = await submit(agent, '/enroll/phone', { phone: typed })
        assert.equal(res.status, 400)
        assert.match(res.text, /This portal only texts mobile numbers from: United States\./)
        assert.match(res.text, /aria-invalid="true"/, 'the message points at the number field')
        assert.equal((await textMessages(t)).length, before, 'nothing was texted')
        assert.equal((await refusals(t, 'country_not_allowed')).filter((d) => d.country === country).length, 1)
      }
    } finally {
      await t.close()
    }
    const wider = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'us,gb' })
    try {
      const { agent } = await enrollingUser(wider)
      assert.equal((await submit(agent, '/enroll/phone', { phone: '+44 7400 123456' })).status, 303)
      assert.equal((await textMessages(wider))[0].recipient, '+447400123456')
    } finally {
      await wider.close()
    }
  })

  test('one number gets at most 5 codes an hour, whoever asks for them', async () => {
    const t = await startTestApp()
    try {
      for (let i = 0; i < 5; i++) {
        const { agent } = await enrollingUser(t)
        assert.equal((await submit(agent, '/enroll/phone', { phone: MOBILE })).status, 303)
      }
      const { agent } = await enrollingUser(t)
      const sixth = await submit(agent, '/enroll/phone', { phone: MOBILE })
      assert.equal(sixth.status, 429)
      assert.match(sixth.text, /Too many codes were sent to this number in the last hour/)
      assert.equal((await textMessages(t)).filter((m) => m.recipient === MOBILE).length, 5)
      assert.deepEqual((await refusals(t, 'number_limit')).map((d) => d.phone), ['•••• 0143'])
      assert.equal((await submit(agent, '/enroll/phone', { phone: '+12025550144' })).status, 303, 'other numbers are still texted')
      t.clock.advance(61 * 60_000)
      const later = await enrollingUser(t)
      assert.equal((await submit(later.agent, '/enroll/phone', { phone: MOBILE })).status, 303, 'an hour later the number is texted again')
    } finally {
      await t.close()
    }
  })

  test('one address asks for at most SMS_MAX_PER_ADDRESS_PER_HOUR codes, and the portal sends at most SMS_MAX_PER_HOUR', async () => {
    const t = await startTestApp({ SMS_MAX_PER_ADDRESS_PER_HOUR: '3', SMS_MAX_PER_HOUR: '1000' })
    try {
      for (let i = 0; i < 3; i++) {
        const { agent } = await enrollingUser(t)
        assert.equal((await submit(agent, '/enroll/phone', { phone: `+1202555016${i}` })).status, 303)
      }
      const { agent } = await enrollingUser(t)
      const fourth = await submit(agent, '/enroll/phone', { phone: '+12025550169' })
      assert.equal(fourth.status, 429)
      assert.match(fourth.text, /Too many codes were asked for from your network in the last hour/)
      assert.equal((await refusals(t, 'address_limit')).length, 1)
      assert.equal((await textMessages(t)).length, 3)
    } finally {
      await t.close()
    }
    const busy = await startTestApp({ SMS_MAX_PER_HOUR: '2' })
    try {
      for (let i = 0; i < 2; i++) {
        const { agent } = await enrollingUser(busy)
        assert.equal((await submit(agent, '/enroll/phone', { phone: `+1202555017${i}` })).status, 303)
      }
      const { agent } = await enrollingUser(busy)
      const third = await submit(agent, '/enroll/phone', { phone: '+12025550179' })
      assert.equal(third.status, 429)
      assert.match(third.text, /Text messages are paused for a while/)
      assert.equal((await refusals(busy, 'global_limit')).length, 1)
      assert.equal((await textMessages(busy)).length, 2)
    } finally {
      await busy.close()
    }
  })
})
