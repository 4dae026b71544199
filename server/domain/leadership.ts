/**
 * Which instance runs the scheduler (sweeps, reminders, directory syncs, housekeeping): exactly one at a time. On
 * SQLite there is one instance, which always leads.
 */
export interface Leadership {
  /** Names the instance (host and process id) in /readyz and the log. */
  readonly instance: string
  isLeader(): boolean
  stop(): Promise<void>
}

export function soleLeader (instance: string): Leadership {
  return { instance, isLeader: () => true, stop: async () => {} }
}
