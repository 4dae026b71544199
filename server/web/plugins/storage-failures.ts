import fp from 'fastify-plugin'
import { storageFailureOf, type StorageMonitor } from '../../domain/storage.ts'
import { english } from '../english.ts'

/**
 * The answer to a request that failed on the database's storage, for the error pages (`key`, in the reader's
 * language) and the API's JSON (`message`, English).
 */
export function storageErrorAnswer (error: unknown): { status: number, code: string, key: string, message: string } | undefined {
  const failure = storageFailureOf(error)
  if (failure === undefined) return undefined
  const [status, code] = failure === 'full' ? [503, 'storage_full'] : failure === 'unavailable' ? [503, 'storage_unavailable'] : [500, 'storage_damaged']
  const key = `pages.${code}`
  return { status, code, key, message: english().t(key) }
}

/**
 * Every request that failed on the database's storage is reported to the storage monitor: /readyz then says so, and the
 * log gets one line a minute rather than one per request. (onError runs before the error handler answers.)
 */
export default fp<{ storage: StorageMonitor }>(async (app, { storage }) => {
  app.addHook('onError', async (request, _reply, error) => {
    const failure = storageFailureOf(error)
    if (failure === 'damaged') storage.damageSeen(request.log, error)
    else if (failure !== undefined) storage.writeFailed(failure, request.log)
  })
}, { name: 'storage-failures' })
