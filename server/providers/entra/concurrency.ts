/** Runs `work` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapLimit<T, R> (items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index], index)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}

/** Exponential backoff with jitter for retries without a Retry-After: 0.5 s, 1 s, 2 s … capped at 30 s. */
export function backoffMs (attempt: number): number {
  const base = Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1))
  return Math.round(base * (0.5 + Math.random() / 2))
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
