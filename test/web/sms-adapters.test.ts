import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SnsSms, TwilioSms } from '../../server/notify/sms.ts'
import { startFakeSns, type FakeSns } from '../fakes/sns.ts'
import { startFakeTwilio, type FakeTwilio } from '../fakes/twilio.ts'
import { createTestUser, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'

const ACCOUNT = { accountSid: 'AC00000000000000000000000000000001', authToken: 'twilio-test-auth-token' }
const TO = '+12025550143'

describe('Twilio', () => {
  let twilio: FakeTwilio
  before(async () => { twilio = await startFakeTwilio(ACCOUNT) })
  after(async () => { await twilio.close() })

  test('a text goes to the account\'s Messages resource as a form, with To, From and Body, under Basic auth', async () => {
    twilio.requests.length = 0
    const sms = new TwilioSms({ ...ACCOUNT, from: '+15005550006', baseUrl: twilio.url })
    await sms.send(TO, '123456 is your code')
    assert.equal(twilio.requests.length, 1)
    const [sent] = twilio.requests
    assert.equal(sent.method, 'POST')
    assert.equal(sent.path, `/2010-04-01/Accounts/${ACCOUNT.accountSid}/Messages.json`)
    assert.match(sent.contentType ?? '', /^application\/x-www-form-urlencoded/)
    assert.equal(sent.credentials, `${ACCOUNT.accountSid}:${ACCOUNT.authToken}`)
    assert.deepEqual(sent.form, { To: TO, From: '+15005550006', Body: '123456 is your code' })
  })

  test('a messaging service SID is sent as MessagingServiceSid instead of From', async () => {
    twilio.requests.length = 0
    const sms = new TwilioSms({ ...ACCOUNT, from: 'MG00000000000000000000000000000001', baseUrl: `${twilio.url}/` })
    await sms.send(TO, 'hello')
    assert.deepEqual(twilio.requests[0].form, { To: TO, MessagingServiceSid: 'MG00000000000000000000000000000001', Body: 'hello' })
  })

  test('Twilio\'s refusal becomes an error carrying its code and message', async () => {
    twilio.failWith({ status: 400, code: 21211, message: 'Invalid \'To\' Phone Number: +1202555014' })
    try {
      const sms = new TwilioSms({ ...ACCOUNT, from: '+15005550006', baseUrl: twilio.url })
      await assert.rejects(sms.send('+1202555014', 'hello'), (err: Error) => {
        assert.match(err.message, /HTTP 400/)
        assert.match(err.message, /code 21211/)
        assert.match(err.message, /Invalid 'To' Phone Number/)
        return true
      })
    } finally {
      twilio.failWith(null)
    }
  })

  test('a wrong auth token is refused by Twilio and surfaces as an error, not a silent success', async () => {
    const sms = new TwilioSms({ ...ACCOUNT, authToken: 'not-the-token', from: '+15005550006', baseUrl: twilio.url })
    await assert.rejects(sms.send(TO, 'hello'), /HTTP 401 code 20003: Authenticate/)
  })
})

describe('Amazon SNS', () => {
  const KEYS = { accessKeyId: 'AKIDFAKESNSTEST00001', secretAccessKey: 'fake/secret/access/key/for/tests/0000000' }
  let sns: FakeSns
  const saved: Record<string, string | undefined> = {}
  before(async () => {
    sns = await startFakeSns(KEYS)
    // The SDK's default chain reads credentials from the environment first, as a deployment would set them.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) saved[name] = process.env[name]
    process.env.AWS_ACCESS_KEY_ID = KEYS.accessKeyId
    process.env.AWS_SECRET_ACCESS_KEY = KEYS.secretAccessKey
    delete process.env.AWS_SESSION_TOKEN
    delete process.env.AWS_PROFILE
  })
  after(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    await sns.close()
  })

  test('a text is published to the phone number as a transactional SMS, signed with the configured credentials', async () => {
    sns.requests.length = 0
    const sms = new SnsSms({ region: 'eu-west-1', endpoint: sns.url })
    await sms.send(TO, '123456 is your code')
    assert.equal(sns.requests.length, 1)
    const [sent] = sns.requests
    assert.equal(sent.accessKeyId, KEYS.accessKeyId)
    assert.equal(sent.scope, 'eu-west-1/sns')
    assert.equal(sent.signatureValid, true)
    assert.equal(sent.form.Action, 'Publish')
    assert.equal(sent.form.PhoneNumber, TO)
    assert.equal(sent.form.Message, '123456 is your code')
    assert.equal(sent.form['MessageAttributes.entry.1.Name'], 'AWS.SNS.SMS.SMSType')
    assert.equal(sent.form['MessageAttributes.entry.1.Value.DataType'], 'String')
    assert.equal(sent.form['MessageAttributes.entry.1.Value.StringValue'], 'Transactional')
  })

  test('a text signed with another secret is refused, so the signature check above means something', async () => {
    process.env.AWS_SECRET_ACCESS_KEY = 'not/the/secret'
    try {
      const sms = new SnsSms({ region: 'eu-west-1', endpoint: sns.url })
      await assert.rejects(sms.send(TO, 'hello'), { name: 'SignatureDoesNotMatch' })
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = KEYS.secretAccessKey
    }
  })

  test('an SNS refusal surfaces as the SDK\'s modelled exception for its code', async () => {
    sns.failWith({ status: 400, code: 'InvalidParameter', message: 'Invalid parameter: PhoneNumber Reason: +1202 is not valid to publish to' })
    try {
      const sms = new SnsSms({ region: 'eu-west-1', endpoint: sns.url })
      await assert.rejects(sms.send('+1202', 'hello'), (err: Error) => {
        // SNS answers code InvalidParameter; the SDK raises its modelled InvalidParameterException for it.
        assert.equal(err.name, 'InvalidParameterException')
        assert.match(err.message, /PhoneNumber/)
        return true
      })
    } finally {
      sns.failWith(null)
    }
  })
})

describe('phone enrollment through Twilio', () => {
  let twilio: FakeTwilio
  let t: TestApp
  before(async () => {
    twilio = await startFakeTwilio(ACCOUNT)
    t = await startTestApp({
      SMS_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
      TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
      TWILIO_FROM: '+15005550006',
      TWILIO_BASE_URL: twilio.url
    })
  })
  after(async () => {
    await t.close()
    await twilio.close()
  })

  test('the code arrives at Twilio, not in the outbox, and proves the phone', async () => {
    twilio.requests.length = 0
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const sent = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: '(202) 555-0143' })
    assert.equal(sent.status, 303)
    assert.equal(twilio.requests.length, 1)
    const { form } = twilio.requests[0]
    assert.equal(form.To, TO)
    assert.equal(form.From, '+15005550006')
    const code = /\b(\d{6})\b/.exec(form.Body)?.[1]
    assert.ok(code !== undefined, `a 6-digit code in "${form.Body}"`)
    assert.equal((await t.services.outbox.latest()).filter((m) => m.channel === 'sms').length, 0)

    const verified = await submitForm(agent, '/enroll/phone', '/enroll/phone/verify', { code })
    assert.equal(verified.status, 303)
    assert.equal(verified.headers.location, '/')
    assert.deepEqual((await t.services.methods.listFor(user.id)).map((m) => m.phone), [TO])
  })

  test('when Twilio refuses, the user sees a plain message and may try again straight away', async () => {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    twilio.failWith({ status: 400, code: 21608, message: 'The number is unverified' })
    try {
      const res = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: TO })
      assert.equal(res.status, 502)
      assert.match(res.text, /could not send a text message/i)
      assert.doesNotMatch(res.text, /21608|unverified|Twilio/)
      assert.match(res.text, /value="\+12025550143"/, 'the number is kept in the form')
    } finally {
      twilio.failWith(null)
    }
    // The failed send left no code behind that would make "try again" wait a minute.
    const retry = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: TO })
    assert.equal(retry.status, 303)
  })
})
