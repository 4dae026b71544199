import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { addVirtualAuthenticator, launchBrowser, openPage, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'
import { startSmtpSink } from '../helpers/smtp.ts'

let browser: Browser
let testApp: BrowserApp

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

/**
 * A bare SMTP client: `reply()` resolves with the server's next complete reply (a reply ends on a line whose
 * code is followed by a space) and rejects once the connection has failed.
 */
function smtpDialogue (port: number): { say(line: string): void, reply(): Promise<string>, hangUp(): Promise<void> } {
  const socket = connect(port, '127.0.0.1')
  let buffer = ''
  let failure: Error | undefined
  const replies: string[] = []
  const waiting: Array<{ resolve(reply: string): void, reject(err: Error): void }> = []
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.setEncoding('utf8')
  socket.on('error', (err) => {
    failure = err
    for (const waiter of waiting.splice(0)) waiter.reject(err)
  })
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let end: RegExpExecArray | null
    while ((end = /^\d{3} .*\r\n/m.exec(buffer)) !== null) {
      const reply = buffer.slice(0, end.index + end[0].length)
      buffer = buffer.slice(reply.length)
      const waiter = waiting.shift()
      if (waiter === undefined) replies.push(reply)
      else waiter.resolve(reply)
    }
  })
  return {
    say: (line) => { socket.write(`${line}\r\n`) },
    reply: async () => {
      const reply = replies.shift()
      if (reply !== undefined) return reply
      if (failure !== undefined) throw failure
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }))
    },
    hangUp: async () => {
      socket.end()
      await closed
      if (failure !== undefined) throw failure
    }
  }
}

/** One message over a bare SMTP dialogue, so the sink is tested without any mail library on the client side. */
async function sendRawMail (port: number, from: string, to: string, message: string): Promise<void> {
  const smtp = smtpDialogue(port)
  const exchange = async (line: string | null, code: string): Promise<void> => {
    if (line !== null) smtp.say(line)
    const reply = await smtp.reply()
    assert.ok(reply.startsWith(code), `after ${line ?? 'connecting'} expected ${code}, got ${reply}`)
  }
  await exchange(null, '220')
  await exchange('EHLO harness.test', '250')
  await exchange(`MAIL FROM:<${from}>`, '250')
  await exchange(`RCPT TO:<${to}>`, '250')
  await exchange('DATA', '354')
  await exchange(`${message.replace(/\r?\n/g, '\r\n')}\r\n.`, '250')
  await exchange('QUIT', '221')
  await smtp.hangUp()
}

test('the SMTP sink receives a message and decodes its subject and quoted-printable body', async () => {
  const smtp = await startSmtpSink()
  try {
    assert.equal(smtp.url, `smtp://127.0.0.1:${smtp.port}`)
    await sendRawMail(smtp.port, 'portal@test.example', 'alice@test.example', [
      'From: MFA portal <portal@test.example>',
      'To: Alice <alice@test.example>',
      'Subject: =?UTF-8?Q?Your_new_sign-in_method_=E2=9C=93?=',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Caf=C3=A9 passkey added. If this was not you, contact your helpdesk =',
      'straight away.'
    ].join('\n'))
    const mail = await smtp.waitFor((received) => received.to.includes('alice@test.example'), 2000)

    assert.equal(mail.from, 'portal@test.example')
    assert.deepEqual(mail.to, ['alice@test.example'])
    assert.deepEqual(mail.headerTo, ['alice@test.example'])
    assert.equal(mail.subject, 'Your new sign-in method ✓')
    assert.match(mail.text, /Café passkey added\. If this was not you, contact your helpdesk straight away\./)
    assert.match(mail.raw, /^From: MFA portal/)
    assert.equal(smtp.messages.length, 1)
    assert.deepEqual(smtp.errors, [])
    await assert.rejects(smtp.waitFor((m) => m.to.includes('nobody@test.example'), 50), /no matching mail within 50 ms; received 1/)
  } finally {
    await smtp.close()
  }
})

test('the browser app is served on localhost at the port its public URL names', async () => {
  assert.match(testApp.baseUrl, /^http:\/\/localhost:\d+$/)
  assert.equal(testApp.config.publicUrl.origin, testApp.baseUrl)
  const { context, page } = await openPage(browser)
  try {
    const response = await page.goto(`${testApp.baseUrl}/login`)
    assert.equal(response?.status(), 200)
    // WebAuthn needs a secure context; http://localhost is one, http://127.0.0.1 pages are refused an RP ID.
    assert.equal(await page.evaluate(() => window.isSecureContext), true)
  } finally {
    await context.close()
  }
})

test('a virtual authenticator can be attached to a page for WebAuthn tests', async () => {
  const { context, page } = await openPage(browser)
  try {
    await page.goto(`${testApp.baseUrl}/login`)
    const platform = await addVirtualAuthenticator(page, { transport: 'internal' })
    const securityKey = await addVirtualAuthenticator(page, { transport: 'usb' })
    assert.match(platform.authenticatorId, /\S/)
    assert.notEqual(platform.authenticatorId, securityKey.authenticatorId)
    const { credentials } = await platform.cdp.send('WebAuthn.getCredentials', { authenticatorId: platform.authenticatorId })
    assert.deepEqual(credentials, [])
    await securityKey.remove()
    await platform.remove()
  } finally {
    await context.close()
  }
})
