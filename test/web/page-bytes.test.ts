import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, readable, signIn, startTestApp, type TestApp } from '../helpers/app.ts'

let t: TestApp
before(async () => {
  t = await startTestApp()
})
after(async () => {
  await t.close()
})

/** A page's bytes as they came, and as text read as the UTF-8 its content type names (a bad byte would read as U+FFFD). */
async function pageBytes (agent: Awaited<ReturnType<typeof signIn>>, path: string): Promise<{ bytes: Buffer, text: string, type: string }> {
  const res = await agent.get(path).buffer(true).parse((response, callback) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => { callback(null, Buffer.concat(chunks)) })
  })
  assert.equal(res.status, 200, path)
  const bytes = res.body as Buffer
  assert.equal(Number(res.headers['content-length']), bytes.length, 'the length sent is the length of the page')
  return { bytes, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), type: String(res.headers['content-type']) }
}

test('a page shows every character of a name as it is: Latin-1 letters as UTF-8, the rest as references the browser reads back, and "—" or curly quotes of the portal\'s own text the same way', async () => {
  const user = await createTestUser(t.services, { displayName: 'Zoë Łukasiewicz 東京 😀' })
  const agent = await signIn(t, user.email)
  const { bytes, text, type } = await pageBytes(agent, '/')
  assert.equal(type, 'text/html; charset=utf-8')
  assert.match(text, /<span class="who">Zoë &#321;ukasiewicz &#26481;&#20140; &#128512;<\/span>/)
  assert.match(readable(text), /<span class="who">Zoë Łukasiewicz 東京 😀<\/span>/)
  assert.ok(bytes.includes(Buffer.from('Zoë', 'utf8')), 'ë is sent as UTF-8')
  // The sandbox banner's dash, from the catalogue.
  assert.match(text, /Sandbox &#8212; no cloud provider configured/)
})

test('a page of plain English is all ASCII and arrives whole', async () => {
  const user = await createTestUser(t.services, { displayName: 'Ada Lovelace' })
  const agent = await signIn(t, user.email)
  const { bytes, text } = await pageBytes(agent, '/')
  assert.ok(bytes.every((byte) => byte < 0x80), 'no byte beyond ASCII')
  assert.match(text, /<span class="who">Ada Lovelace<\/span>/)
  assert.match(text, /<\/html>\s*$/)
})
