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

// Managed-policy versions as IAM keeps them (IAM API reference: CreatePolicyVersion, GetPolicyVersion,
// ListPolicyVersions, DeletePolicyVersion): what the drift check and its repair rely on.
describe('the fake IAM keeps managed-policy versions', () => {
  let fake: FakeIam
  const call = async (form: Record<string, string>): Promise<{ status: number, body: string }> => await post(fake, { Version: '2010-05-08', ...form })
  before(async () => {
    fake = await startFakeIam()
  })
  after(async () => { await fake.close() })

  test('GetPolicy names the default version, and GetPolicyVersion sends its document URL-encoded', async () => {
    const policy = fake.state.createPolicy('P', '/', '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}]}')
    assert.match((await call({ Action: 'GetPolicy', PolicyArn: policy.arn })).body, /<DefaultVersionId>v1<\/DefaultVersionId>/)
    const version = await call({ Action: 'GetPolicyVersion', PolicyArn: policy.arn, VersionId: 'v1' })
    assert.equal(version.status, 200)
    assert.match(version.body, /<Document>%7B%22Version%22%3A%222012-10-17%22/)
    assert.match(version.body, /<IsDefaultVersion>true<\/IsDefaultVersion>/)
    assert.equal((await call({ Action: 'GetPolicyVersion', PolicyArn: policy.arn, VersionId: 'v9' })).status, 404)
  })

  test('a sixth version is refused with LimitExceeded (409); the default version cannot be deleted (DeleteConflict)', async () => {
    const policy = fake.state.createPolicy('Q', '/', '{"Version":"2012-10-17","Statement":[]}')
    for (let n = 2; n <= 5; n++) {
      const created = await call({ Action: 'CreatePolicyVersion', PolicyArn: policy.arn, PolicyDocument: '{"Version":"2012-10-17","Statement":[]}', SetAsDefault: n === 5 ? 'true' : 'false' })
      assert.match(created.body, new RegExp(`<VersionId>v${n}</VersionId>`))
      assert.doesNotMatch(created.body, /<Document>/, 'CreatePolicyVersion does not echo the document')
    }
    const sixth = await call({ Action: 'CreatePolicyVersion', PolicyArn: policy.arn, PolicyDocument: '{"Version":"2012-10-17","Statement":[]}' })
    assert.equal(sixth.status, 409)
    assert.match(sixth.body, /<Code>LimitExceeded<\/Code>/)
    const listed = await call({ Action: 'ListPolicyVersions', PolicyArn: policy.arn })
    assert.equal([...listed.body.matchAll(/<VersionId>/g)].length, 5)
    assert.match(listed.body, /<member><VersionId>v5<\/VersionId><IsDefaultVersion>true<\/IsDefaultVersion>/)
    const conflict = await call({ Action: 'DeletePolicyVersion', PolicyArn: policy.arn, VersionId: 'v5' })
    assert.equal(conflict.status, 409)
    assert.match(conflict.body, /<Code>DeleteConflict<\/Code>/)
    assert.equal((await call({ Action: 'DeletePolicyVersion', PolicyArn: policy.arn, VersionId: 'v1' })).status, 200)
    // Ids are never reused: the next version after a deletion is v6.
    assert.match((await call({ Action: 'CreatePolicyVersion', PolicyArn: policy.arn, PolicyDocument: '{"Version":"2012-10-17","Statement":[]}' })).body, /<VersionId>v6<\/VersionId>/)
  })

  test('AWS managed policies take no versions, and policies attached to a group are listed for it', async () => {
    const managed = await call({ Action: 'CreatePolicyVersion', PolicyArn: 'arn:aws:iam::aws:policy/AdministratorAccess', PolicyDocument: '{"Version":"2012-10-17","Statement":[]}' })
    assert.equal(managed.status, 400)
    fake.state.addGroup('Ops')
    fake.state.attachGroupPolicy('Ops', 'arn:aws:iam::aws:policy/AdministratorAccess')
    const listed = await call({ Action: 'ListAttachedGroupPolicies', GroupName: 'Ops' })
    assert.match(listed.body, /<PolicyArn>arn:aws:iam::aws:policy\/AdministratorAccess<\/PolicyArn>/)
    assert.equal((await call({ Action: 'ListAttachedGroupPolicies', GroupName: 'Nobody' })).status, 404)
  })
})

// Issue #14: what real IAM allows and reports that the adapters used to assume away (contracts §2.4 "Access keys").
describe('the fake IAM on identities and access keys', () => {
  let fake: FakeIam
  const call = async (form: Record<string, string>): Promise<{ status: number, body: string }> => await post(fake, { Version: '2010-05-08', ...form })
  before(async () => {
    fake = await startFakeIam()
  })
  after(async () => { await fake.close() })

  test('two users may carry the same e-mail tag, and a rename keeps the user id', async () => {
    const first = fake.state.addUser({ userName: 'pat', tags: { email: 'shared@example.org' } })
    const second = fake.state.addUser({ userName: 'sam', tags: { email: 'shared@example.org' } })
    assert.notEqual(first.userId, second.userId)
    for (const userName of ['pat', 'sam']) assert.match((await call({ Action: 'ListUserTags', UserName: userName })).body, /<Value>shared@example\.org<\/Value>/)

    fake.state.renameUser('pat', 'patricia')
    const listed = await call({ Action: 'ListUsers' })
    assert.match(listed.body, new RegExp(`<UserName>patricia</UserName><UserId>${first.userId}</UserId>`))
    assert.equal((await call({ Action: 'ListUserTags', UserName: 'pat' })).status, 404, 'the old name is gone')
  })

  test('ListAccessKeys lists a user\'s keys with their status, and GetAccessKeyLastUsed tells their last use ("N/A" when never)', async () => {
    const used = new Date('2026-10-01T08:00:00Z')
    const user = fake.state.addUser({ userName: 'robot', accessKeys: [{ lastUsed: { date: used, serviceName: 's3', region: 'eu-west-1' } }, { status: 'Inactive' }] })
    const [active, inactive] = user.accessKeys
    assert.match(active.accessKeyId, /^AKIA[A-Z0-9]{16}$/)

    const listed = await call({ Action: 'ListAccessKeys', UserName: 'robot' })
    assert.equal(listed.status, 200)
    assert.match(listed.body, new RegExp(`<AccessKeyMetadata><member><UserName>robot</UserName><AccessKeyId>${active.accessKeyId}</AccessKeyId><Status>Active</Status>`))
    assert.match(listed.body, new RegExp(`<AccessKeyId>${inactive.accessKeyId}</AccessKeyId><Status>Inactive</Status>`))
    assert.equal((await call({ Action: 'ListAccessKeys', UserName: 'nobody' })).status, 404)

    const lastUsed = await call({ Action: 'GetAccessKeyLastUsed', AccessKeyId: active.accessKeyId })
    assert.match(lastUsed.body, /<UserName>robot<\/UserName><AccessKeyLastUsed><LastUsedDate>2026-10-01T08:00:00Z<\/LastUsedDate><ServiceName>s3<\/ServiceName><Region>eu-west-1<\/Region><\/AccessKeyLastUsed>/)
    const never = await call({ Action: 'GetAccessKeyLastUsed', AccessKeyId: inactive.accessKeyId })
    assert.match(never.body, /<AccessKeyLastUsed><ServiceName>N\/A<\/ServiceName><Region>N\/A<\/Region><\/AccessKeyLastUsed>/)
    assert.throws(() => fake.state.addAccessKey('robot'), /AccessKeysPerUser: 2/, 'two keys per user at most')
  })
})
