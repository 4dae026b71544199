/** An enrollment waiting for proof: an authenticator-app secret, or a phone and the code sent to it. */
export interface PendingEnrollment {
  id: string
  userId: string
  kind: 'totp' | 'phone' | 'step_up_phone'
  phone: string | null
  codeHash: string | null
  attempts: number
  sentAt: Date | null
  expiresAt: Date
}

export interface PendingStore {
  /** Replaces any earlier pending authenticator-app setup of the user; the secret is sealed at rest. */
  startTotp(userId: string, secretBase32: string, expiresAt: Date): Promise<PendingEnrollment>
  findTotp(userId: string): Promise<(PendingEnrollment & { secret: string }) | undefined>
  /** Replaces any earlier pending phone of the same kind; `codeHash` is computed over the new row's id. */
  startPhone(userId: string, kind: 'phone' | 'step_up_phone', phone: string, hashFor: (id: string) => string, sentAt: Date, expiresAt: Date): Promise<PendingEnrollment>
  findPhone(userId: string, kind: 'phone' | 'step_up_phone'): Promise<PendingEnrollment | undefined>
  resendCode(id: string, codeHash: string, sentAt: Date, expiresAt: Date): Promise<void>
  /** Atomically adds one failed attempt and returns the new count. */
  addAttempt(id: string): Promise<number>
  /** Claims (deletes) a pending row once; false if it was already claimed. */
  claim(id: string): Promise<boolean>
  recordSms(userId: string, phone: string, at: Date): Promise<void>
  smsCountSince(userId: string, since: Date): Promise<number>
  /** Seals every secret again under the current key (key rotation); how many rows. */
  resealAll(): Promise<number>
  /** Deletes setups that expired before `now`; how many. */
  purgeExpired(now: Date): Promise<number>
}
