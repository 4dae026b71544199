import { randomBytes } from 'node:crypto'
import { ProviderError } from '../../domain/provider.ts'
import { hasStatus } from './errors.ts'
import { mayHaveHappened, type GraphApi } from './graph-client.ts'

/** A token to create in the directory (contracts 1.9). The portal generated the secret; Entra never returns it. */
export interface NewOathToken {
  /** Base32 secret shared with the user's authenticator. */
  secretKey: string
  /** Chosen by the portal (PORTAL-…) when not given; it is how a token is found again after a lost answer. */
  serialNumber?: string
  displayName?: string
  manufacturer?: string
  model?: string
  timeIntervalInSeconds?: 30 | 60
  hashFunction?: 'hmacsha1' | 'hmacsha256'
}

export interface OathDevice {
  id: string
  serialNumber: string
  status: 'available' | 'assigned' | 'activated' | 'failedActivation'
  assignedTo?: { id?: string } | null
}

/** What became of a token the portal set out to remove. */
export type OathRemoval = 'deleted' | 'already_gone' | 'in_use'

const DEVICES = '/directory/authenticationMethodDevices/hardwareOathDevices'
const POLICY = '/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/hardwareOath'
/** How long the policy's state is believed before it is read again (a page view must not cost a Graph call each). */
const POLICY_FRESH_MS = 5 * 60_000

function methodsPath (userId: string): string {
  return `/users/${encodeURIComponent(userId)}/authentication/hardwareOathMethods`
}

export function newSerialNumber (): string {
  return `PORTAL-${randomBytes(6).toString('hex').toUpperCase()}`
}

/**
 * Authenticator apps registered in Entra through the beta hardware-OATH token API (DESIGN.md Providers: the portal
 * generates the secret, the user proves a code, the portal creates the token assigned to the user and activates
 * it). A token that does not end up activated is removed, so no device holding the user's seed stays behind.
 */
export class HardwareOath {
  private policyState: { enabled: boolean, readAt: number } | null = null

  constructor (private readonly graph: GraphApi, private readonly now: () => Date) {}

  /** Refuses, in words, when the tenant's authentication methods policy has hardware OATH tokens turned off. */
  async assertPolicyEnabled (): Promise<void> {
    const at = this.now().getTime()
    if (this.policyState === null || at - this.policyState.readAt > POLICY_FRESH_MS) {
      const body = await this.graph.get<{ state?: string }>(POLICY, 'beta')
      this.policyState = { enabled: body.state === 'enabled', readAt: at }
    }
    if (!this.policyState.enabled) {
      throw new ProviderError('Hardware OATH tokens are turned off in this tenant\'s authentication methods policy, so Entra would not accept the app. ' +
        'An administrator can turn them on in the Entra admin center (Protection > Authentication methods > Hardware OATH tokens).', false, null, 'hardware_oath_policy_disabled')
    }
  }

  /** Creates a token; with `assignTo`, already assigned to that user in the same call (contracts 1.9). */
  async createOathToken (token: NewOathToken, assignTo?: string): Promise<OathDevice> {
    const created = await this.graph.post<OathDevice>(DEVICES, {
      displayName: token.displayName ?? 'Authenticator app',
      // Graph requires a serial, manufacturer and model even for a software authenticator.
      serialNumber: token.serialNumber ?? newSerialNumber(),
      manufacturer: token.manufacturer ?? 'mfa-rollout',
      model: token.model ?? 'Authenticator app',
      secretKey: token.secretKey.replace(/\s+/g, '').toUpperCase(),
      timeIntervalInSeconds: token.timeIntervalInSeconds ?? 30,
      hashFunction: token.hashFunction ?? 'hmacsha1',
      ...(assignTo === undefined ? {} : { assignTo: { id: assignTo } })
    }, 'beta')
    return { id: created.id, serialNumber: created.serialNumber, status: created.status }
  }

  /** Assigns a created token to the user; returns the user's hardwareOathMethod id (the device's id). */
  async assignOathToken (externalId: string, deviceId: string): Promise<string> {
    const method = await this.graph.post<{ id: string }>(methodsPath(externalId), { device: { id: deviceId } }, 'beta')
    return method.id
  }

  /** Activates the assigned token with a current code from it; a wrong code is a non-retryable 'oath_code_rejected'. */
  async activateOathToken (externalId: string, methodId: string, verificationCode: string, displayName?: string): Promise<void> {
    if (!/^\d{6}$/.test(verificationCode)) throw new ProviderError('The code must be 6 digits', false, null, 'oath_code_rejected')
    try {
      await this.graph.post(`${methodsPath(externalId)}/${encodeURIComponent(methodId)}/activate`, { verificationCode, ...(displayName === undefined ? {} : { displayName }) }, 'beta')
    } catch (err) {
      // Graph's code for a failed activation is not documented (contracts Part 4): any 400 means the code was refused.
      if (hasStatus(err, 400)) throw new ProviderError('Entra did not accept the code from the authenticator', false, null, 'oath_code_rejected')
      throw err
    }
  }

  /**
   * Creates the token assigned to the user and activates it with `code`, after checking the tenant allows such
   * tokens. Each POST is sent once; after a lost answer the token is looked up by its serial number. When the
   * activation fails the token is removed again (unassigned, then deleted) before the error is passed on.
   */
  async enrollOathToken (externalId: string, token: NewOathToken & { code: string }): Promise<{ deviceId: string, methodId: string }> {
    await this.assertPolicyEnabled()
    const serialNumber = token.serialNumber ?? newSerialNumber()
    let device: OathDevice | null
    try {
      device = await this.createOathToken({ ...token, serialNumber }, externalId)
    } catch (err) {
      if (!mayHaveHappened(err)) throw err
      device = await this.findBySerial(externalId, serialNumber, false)
      if (device === null) throw err
    }
    try {
      await this.activateOathToken(externalId, device.id, token.code, token.displayName)
    } catch (err) {
      if (mayHaveHappened(err) && (await this.device(device.id))?.status === 'activated') return { deviceId: device.id, methodId: device.id }
      await this.removeDevice(device.id, externalId)
      throw err
    }
    return { deviceId: device.id, methodId: device.id }
  }

  /**
   * Removes the token with this serial number unless it is in use (activated): for setups that failed or were
   * abandoned. Looks among the user's tokens first, then through the tenant's devices (one never assigned).
   */
  async removeOathToken (externalId: string, serialNumber: string): Promise<OathRemoval> {
    const device = await this.findBySerial(externalId, serialNumber, true)
    if (device === null) return 'already_gone'
    if (device.status === 'activated') return 'in_use'
    await this.removeDevice(device.id, device.assignedTo?.id ?? null)
    return 'deleted'
  }

  /** The device, or null when Entra no longer has it. */
  private async device (deviceId: string): Promise<OathDevice | null> {
    try {
      return await this.graph.get<OathDevice>(`${DEVICES}/${encodeURIComponent(deviceId)}`, 'beta')
    } catch (err) {
      if (hasStatus(err, 404)) return null
      throw err
    }
  }

  private async findBySerial (externalId: string, serialNumber: string, scanTenant: boolean): Promise<OathDevice | null> {
    // The user's method carries its device's id (hardwareOathAuthenticationMethod: "Unique identifier for the device").
    const methods = await this.graph.all<{ id: string }>(methodsPath(externalId), 'beta')
    for (const method of methods) {
      const device = await this.device(method.id)
      if (device?.serialNumber === serialNumber) return device
    }
    if (!scanTenant) return null
    const devices = await this.graph.all<OathDevice>(DEVICES, 'beta')
    return devices.find((d) => d.serialNumber === serialNumber) ?? null
  }

  /** Unassigns (a device must be unassigned before it can be deleted) and deletes; already gone is fine. */
  private async removeDevice (deviceId: string, assignedTo: string | null): Promise<void> {
    const ignoreGone = async (work: () => Promise<void>): Promise<void> => {
      try {
        await work()
      } catch (err) {
        if (!hasStatus(err, 404)) throw err
      }
    }
    if (assignedTo !== null) await ignoreGone(async () => { await this.graph.delete(`${methodsPath(assignedTo)}/${encodeURIComponent(deviceId)}`, 'beta') })
    await ignoreGone(async () => { await this.graph.delete(`${DEVICES}/${encodeURIComponent(deviceId)}`, 'beta') })
  }
}
