import fp from 'fastify-plugin'
import { storageFailureOf, type StorageMonitor } from '../../domain/storage.ts'

/** The answer to a request that failed on the database's storage, for the error pages and the API's JSON. */
export function storageErrorAnswer (error: unknown): { status: number, code: string, message: string } | undefined {
  switch (storageFailureOf(error)) {
    case 'full':
      return { status: 503, code: 'storage_full', message: 'The portal cannot save changes right now because its storage is full. Please try again later; the operators have been alerted.' }
    case 'unavailable':
      return { status: 503, code: 'storage_unavailable', message: 'The portal cannot save changes right now because its storage is not writable. Please try again later; the operators have been alerted.' }
    case 'damaged':
      return { status: 500, code: 'storage_damaged', message: 'Part of the portal\'s stored data cannot be read. The operators have been alerted.' }
  }
  return undefined
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
