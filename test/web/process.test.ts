import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import request from 'supertest'
import { DEMO_ACCOUNTS } from '../../server/domain/sandbox.ts'
import { csrfFrom, tempDir } from '../helpers/app.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function startPortal (env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    // Empty values (not absent ones) so a developer's own .env cannot fill them in.
    env: { PATH: process.env.PATH ?? '', SESSION_SECRET: '', ENCRYPTION_KEY: '', PUBLIC_URL: '', PROVIDERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  return { child, output: () => ({ stdout, stderr }) }
}

test('in production without SESSION_SECRET the portal exits 1 with one line naming SESSION_SECRET', async () => {
  const portal = startPortal({ NODE_ENV: 'production', DATA_DIR: tempDir(), PUBLIC_URL: 'https://mfa.example.org', ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') })
  const [code] = await once(portal.child, 'exit')
  const { stdout, stderr } = portal.output()
  assert.equal(code, 1)
  assert.equal(stdout, '')
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, stderr)
  assert.match(lines[0], /^mfa-rollout: configuration error: SESSION_SECRET: required in production/)
})

test('a first start with no provider seeds the documented demo accounts, shows the sandbox banner and stops cleanly on SIGTERM', async () => {
  const portal = startPortal({ NODE_ENV: 'development', DATA_DIR: tempDir(), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' })
  try {
    let address: string | undefined
    for (let i = 0; i < 200 && address === undefined; i++) {
      address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(portal.output().stdout)?.[1]
      if (address === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.ok(address, `the portal did not start: ${portal.output().stderr}`)
    assert.match(portal.output().stdout, /development defaults in use/)

    const agent = request.agent(address)
    const form = await agent.get('/login')
    assert.match(form.text, /Sandbox — no cloud provider configured/)
    const admin = DEMO_ACCOUNTS.find((a) => a.role === 'admin')!
    const res = await agent.post('/login').type('form').send({ email: admin.email, password: admin.password, _csrf: csrfFrom(form.text) })
    assert.equal(res.status, 303)
    assert.equal((await agent.get('/admin')).status, 200)

    portal.child.kill('SIGTERM')
    const [code] = await once(portal.child, 'exit')
    assert.equal(code, 0)
    assert.match(portal.output().stdout, /"msg":"stopped"/)
  } finally {
    if (portal.child.exitCode === null) portal.child.kill('SIGKILL')
  }
})
