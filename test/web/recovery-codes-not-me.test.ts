import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, signIn, startTestApp, stepUp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'
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

function audits (userId: string, action: string) {
  return t.services.audit.list({ subjectUserId: userId, action })
}

/** An enforced local user holding ten codes, one of which someone else uses to sign in; the e-mail that follows. */
async function codeUsedBySomeoneElse () {
  const user = await createTestUser(t.services)
  const owner = await signIn(t, user.email)
  await stepUp(t, owner, user)
  await submitForm(owner, '/recovery-codes', '/recovery-codes')
  const codes = [...(await owner.get('/recovery-codes')).text.matchAll(CODE)].map((m) => m[1])
  assert.equal(codes.length, 10)
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)

  const intruder = await signIn(t, user.email)
  const used = await submitForm(intruder, '/step-up?next=/', '/step-up/recovery-code', { code: codes[0], next: '/' })
  assert.equal(used.headers.location, '/')
  assert.equal((await intruder.get('/')).status, 200, 'the intruder is signed in')
  const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /recovery code was used/.test(m.subject))
  return { user, owner, intruder, codes, mail }
}

function notMeLink (mail: { text: string, html: string }): string {
  const match = /This wasn't me: (http:\/\/\S+)/.exec(mail.text)
  assert.ok(match !== null, 'the plain-text e-mail carries the link')
  assert.match(mail.html, /<a href="http:\/\/localhost:3000\/recovery-codes\/not-me\?token=[^"]+">This wasn(?:'|&#39;)t me<\/a>/)
  const url = new URL(match[1])
  return url.pathname + url.search
}

test('the recovery-code e-mail has a one-click "This wasn\'t me" link: it voids the remaining codes, ends every session, is audited and alerts the admins', async () => {
  const admin = await createTestUser(t.services, { role: 'admin' })
  const { user, owner, intruder, codes, mail } = await codeUsedBySomeoneElse()
  const link = notMeLink(mail)

  // Opening the link changes nothing (mail scanners follow links): it asks for confirmation.
  const page = await owner.get(link)
  assert.equal(page.status, 200)
  assert.match(page.text, /A recovery code was used to sign in to your account on/)
  assert.match(page.text, /Void my recovery codes and alert my administrators/)
  assert.equal(await t.services.recoveryCodes.remaining(user), 9)

  const token = new URL(link, 'http://x').searchParams.get('token')!
  const res = await submitForm(owner, link, '/recovery-codes/not-me', { token })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/')
  const home = await owner.get('/')
  assert.equal(home.status, 200, 'the person reporting stays signed in')
  assert.match(home.text, /Your remaining recovery codes no longer work/)

  assert.equal(await t.services.recoveryCodes.remaining(user), 0, 'the nine codes left are void')
  assert.notEqual((await intruder.get('/')).status, 200, 'the intruder\'s session has ended')
  const [event] = await audits(user.id, 'recovery_codes.reported_not_me')
  assert.ok(event !== undefined)
  const details = JSON.parse(event.details) as { voided: number, sessionsEnded: number }
  assert.equal(details.voided, 9)
  assert.ok(details.sessionsEnded >= 2)
  const alert = await smtp.waitFor((m) => m.to.includes(admin.email) && /reported a recovery-code sign-in they did not make/.test(m.subject))
  assert.match(alert.text, new RegExp(user.email.replace(/[.]/g, '\\.')))
  assert.match(alert.text, /9 remaining recovery codes were voided/)

  // A voided code no longer signs anyone in.
  const again = await signIn(t, user.email)
  const reused = await submitForm(again, '/step-up?next=/', '/step-up/recovery-code', { code: codes[1], next: '/' })
  assert.match(reused.headers.location, /^\/step-up\?next=/)
})

test('a "This wasn\'t me" link works once, only for the account it was sent to', async () => {
  const { user, owner, mail } = await codeUsedBySomeoneElse()
  const link = notMeLink(mail)
  const token = new URL(link, 'http://x').searchParams.get('token')!

  const stranger = await createTestUser(t.services)
  const other: Agent = await signIn(t, stranger.email)
  await stepUp(t, other, stranger)
  const foreign = await other.get(link)
  assert.equal(foreign.status, 404)
  assert.match(foreign.text, /This link is not valid for your account/)

  assert.equal((await submitForm(owner, link, '/recovery-codes/not-me', { token })).status, 303)
  const reused = await owner.get(link)
  assert.match(reused.text, /This link was already used/)
  assert.equal((await audits(user.id, 'recovery_codes.reported_not_me')).length, 1)
})
