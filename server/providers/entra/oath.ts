import { randomBytes } from 'node:crypto'
import { ProviderError } from '../../domain/provider.ts'
import { hasStatus } from './errors.ts'
import type { GraphApi } from './graph-client.ts'

/** A token to create in the directory (contracts 1.9). The portal generated the secret; Entra never returns it. */
export interface NewOathToken {
  /** Base32 secret shared with the user's authenticator. */
  secretKey: string
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
}

const DEVICES = '/directory/authenticationMethodDevices/hardwareOathDevices'

function methodsPath (userId: string): string {
  return `/users/${encodeURIComponent(userId)}/authentication/hardwareOathMethods`
}

/**
 * Authenticator apps registered in Entra through the beta hardware-OATH token API (DESIGN.md Providers: the portal
 * generates the secret, the user proves a code, the portal creates, assigns and activates the token).
 */
export class HardwareOath {
  constructor (private readonly graph: GraphApi) {}

  async createOathToken (token: NewOathToken): Promise<OathDevice> {
    const created = await this.graph.post<OathDevice>(DEVICES, {
      displayName: token.displayName ?? 'Authenticator app',
      // Graph requires a serial, manufacturer and model even for a software authenticator.
      serialNumber: token.serialNumber ?? `PORTAL-${randomBytes(6).toString('hex').toUpperCase()}`,
      manufacturer: token.manufacturer ?? 'mfa-rollout',
      model: token.model ?? 'Authenticator app',
      secretKey: token.secretKey.replace(/\s+/g, '').toUpperCase(),
      timeIntervalInSeconds: token.timeIntervalInSeconds ?? 30,
      hashFunction: token.hashFunction ?? 'hmacsha1'
    }, 'beta')
    return { id: created.id, serialNumber: created.serialNumber, status: created.status }
  }

  /** Assigns a created token to the user; returns the user's hardwareOathMethod id. */
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

  /** The three steps in one, for an authenticator the user has just proven with `code`; returns the method id. */
  async enrollOathToken (externalId: string, token: NewOathToken & { code: string }): Promise<{ deviceId: string, methodId: string }> {
    const device = await this.createOathToken(token)
    const methodId = await this.assignOathToken(externalId, device.id)
    await this.activateOathToken(externalId, methodId, token.code, token.displayName)
    return { deviceId: device.id, methodId }
  }
}
