/**
 * Run by test/web/page-garbage.test.ts in a process of its own, under --trace-gc-nvp (V8 prints a line per
 * collection): a portal on a temporary SQLite file with one signed-in user, listening on 127.0.0.1. It tells its
 * parent where it listens and which session cookie to send, and prints a marker line when asked ('start', 'end'), so
 * that the parent can add up what the young-generation collections in between allocated and promoted while it asked
 * for pages. The requests come from the parent, so none of their garbage is this process's.
 */
import { fileURLToPath } from 'node:url'
import { createTestUser, signIn, startTestApp } from './app.ts'

export const START = 'page-garbage: start'
export const END = 'page-garbage: end'

export interface Ready { url: string, cookie: string }

// Only when run as the child: the test imports this module for the markers above.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.send !== undefined) {
  const testApp = await startTestApp({}, { backend: 'sqlite' })
  const user = await createTestUser(testApp.services)
  const { sessionCookie } = await signIn(testApp, user.email)
  await testApp.app.listen({ host: '127.0.0.1', port: 0 })
  const address = testApp.app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')
  process.on('message', (message) => {
    if (message === 'start') process.stdout.write(`\n${START}\n`)
    if (message === 'end') {
      process.stdout.write(`\n${END}\n`)
      void testApp.close().then(() => process.exit(0))
    }
  })
  process.send({ url: `http://127.0.0.1:${address.port}`, cookie: sessionCookie } satisfies Ready)
}
