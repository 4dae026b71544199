import type { AnchorPublisher, PublishedAnchor } from '../domain/audit-anchors.ts'

/** Sends each anchor as one JSON POST to AUDIT_ANCHOR_URL (a SIEM's or log collector's HTTP input). */
export class HttpAnchorPublisher implements AnchorPublisher {
  constructor (private readonly url: string, private readonly timeoutMs = 5_000) {}

  async publish (anchor: PublishedAnchor): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'mfa-rollout.audit-anchor', ...anchor }),
      signal: AbortSignal.timeout(this.timeoutMs)
    })
    if (!res.ok) throw new Error(`the collector answered HTTP ${res.status}`)
  }
}
