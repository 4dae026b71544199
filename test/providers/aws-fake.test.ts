import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

/** What the fake answers to a raw Query-protocol POST (a stand-in for the SDK's signed request). */
async function post (fake: FakeIam, form: Record<string, string>): Promise<{ status: number, body: string, requestId: string | null, type: string | null }> {
  const response = await fetch(`${fake.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIDRAWTEST000000001/20260302/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00' },
    body: new URLSearchParams(form).toString()
  })
  return { status: response.status, body: await response.text(), requestId: response.headers.get('x-amzn-requestid'), type: response.headers.get('content-type') }
}

// The provider tests trust the fake; these pin the wire shapes it promises (contracts Part 2, Part 3 "IAM").
describe('the fake IAM speaks the Query protocol', () => {
  let fake: FakeIam
  before(async () => {
    fake = await startFakeIam()
    for (let i = 0; i < 3; i++) fake.state.addUser({ userName: `u${i}`, createDate: new Date('2024-01-02T03:04:05.678Z') })
  })
  after(async () => { await fake.close() })

  test('a success is namespaced XML with a Result, ResponseMetadata and the x-amzn-RequestId header', async () => {
    const answer = await post(fake, { Action: 'ListUsers', Version: '2010-05-08', MaxItems: '2' })
    assert.equal(answer.status, 200)
    assert.equal(answer.type, 'text/xml')
    assert.match(answer.body, /^<ListUsersResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/"><ListUsersResult>/)
    assert.match(answer.body, /<IsTruncated>true<\/IsTruncated>/)
    assert.match(answer.body, /<CreateDate>2024-01-02T03:04:05Z<\/CreateDate>/)
    assert.match(answer.body, new RegExp(`<ResponseMetadata><RequestId>${answer.requestId}</RequestId></ResponseMetadata></ListUsersResponse>$`))
  })

  test('the last page carries no Marker', async () => {
    const first = await post(fake, { Action: 'ListUsers', Version: '2010-05-08', MaxItems: '2' })
    const marker = /<Marker>([^<]+)<\/Marker>/.exec(first.body)?.[1]
    assert.ok(marker !== undefined)
    const last = await post(fake, { Action: 'ListUsers', Version: '2010-05-08', MaxItems: '2', Marker: marker })
    assert.match(last.body, /<IsTruncated>false<\/IsTruncated>/)
    assert.doesNotMatch(last.body, /<Marker>/)
    assert.match(last.body, /<UserName>u2<\/UserName>/)
  })

  test('output-less operations answer a Response with only ResponseMetadata', async () => {
    fake.state.addGroup('G')
    const answer = await post(fake, { Action: 'AddUserToGroup', Version: '2010-05-08', GroupName: 'G', UserName: 'u0' })
    assert.match(answer.body, /^<AddUserToGroupResponse xmlns="[^"]+"><ResponseMetadata><RequestId>[^<]+<\/RequestId><\/ResponseMetadata><\/AddUserToGroupResponse>$/)
  })

  test('errors are ErrorResponse documents with the model\'s status codes', async () => {
    const missing = await post(fake, { Action: 'GetLoginProfile', Version: '2010-05-08', UserName: 'u1' })
    assert.equal(missing.status, 404)
    assert.match(missing.body, /<Error><Type>Sender<\/Type><Code>NoSuchEntity<\/Code><Message>Login Profile for User u1 cannot be found\.<\/Message><\/Error><RequestId>/)

    const report = await post(fake, { Action: 'GetCredentialReport', Version: '2010-05-08' })
    assert.equal(report.status, 410)
    assert.match(report.body, /<Code>ReportNotPresent<\/Code>/)
  })

  test('an unknown Action or another Version is refused with InvalidAction', async () => {
    assert.equal((await post(fake, { Action: 'DeleteEverything', Version: '2010-05-08' })).status, 400)
    const oldVersion = await post(fake, { Action: 'ListUsers', Version: '2006-03-01' })
    assert.equal(oldVersion.status, 400)
    assert.match(oldVersion.body, /<Code>InvalidAction<\/Code>/)
  })
})
