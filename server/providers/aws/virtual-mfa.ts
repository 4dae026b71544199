import {
  CreateVirtualMFADeviceCommand, DeleteVirtualMFADeviceCommand, EnableMFADeviceCommand, ListVirtualMFADevicesCommand
} from '@aws-sdk/client-iam'
import { Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'
import type { Clock } from '../../domain/clock.ts'
import { ProviderError } from '../../domain/provider.ts'
import { accountOf } from './arn.ts'
import { collectPages, itemsOf, type IamCalls } from './client.ts'
import type { IamDirectory } from './directory.ts'
import { hasCode, malformed } from './errors.ts'

/** IAM allows eight MFA devices per user (contracts Part 4: unconfirmed; IAM's own LimitExceeded is honoured too). */
export const MAX_MFA_DEVICES = 8
/** What the authenticator app shows above the code; AWS's own QR codes use the same. */
const ISSUER = 'Amazon Web Services'

/** What the enrollment page shows: the QR code, the key to type by hand, and when the setup lapses. */
export interface VirtualMfaSetup {
  serialNumber: string
  /** The Base32 seed. Secret: seal it at rest, never log it; IAM will not show it again. */
  secret: string
  otpauthUri: string
  /** A PNG drawn here (never by an outside service: the URI holds the secret), as a data: URL for an <img>. */
  qrPngDataUrl: string
  /** The seed in groups of four, easier to type. */
  groupedSecret: string
  /** After this the device is abandoned: delete it with deleteVirtualMfa. */
  expiresAt: Date
}

export type BeginVirtualMfaResult =
  | { ok: true, setup: VirtualMfaSetup }
  | { ok: false, reason: 'user_not_found' | 'device_limit' | 'virtual_mfa_exists', message: string }

export type CompleteVirtualMfaResult =
  | { ok: true, serialNumber: string, method: 'totp' }
  /** `retry`: the user may try again with new codes on the same setup; otherwise start a new setup (or give up). */
  | { ok: false, reason: 'codes_rejected' | 'codes_malformed' | 'setup_expired' | 'device_limit' | 'device_in_use', message: string, retry: boolean }

/** 'in_use': the device was enabled meanwhile (e.g. in the AWS console) and is left alone. */
export type DeleteVirtualMfaResult = 'deleted' | 'already_gone' | 'in_use'

/**
 * Enrolls an authenticator app as an IAM virtual MFA device on the user's behalf (DESIGN.md "Providers": TOTP via
 * CreateVirtualMFADevice + EnableMFADevice with two consecutive codes). A user's portal device is named after the
 * user. IAM never shows a seed twice, so an unassigned device of that name (an earlier abandoned setup) cannot be
 * reused: it is deleted and created afresh. Within one setup the portal keeps the seed (sealed) and redraws the
 * QR code with `describe`, without calling IAM again.
 */
export class VirtualMfaBroker {
  constructor (
    private readonly iam: IamCalls,
    private readonly directory: IamDirectory,
    private readonly clock: Clock,
    private readonly pendingMs: number
  ) {}

  async begin (userName: string): Promise<BeginVirtualMfaResult> {
    let devices: string[]
    try {
      // Also proves the user exists before a device is made for it (a device for nobody would linger).
      devices = await this.directory.devicesOf(userName)
    } catch (err) {
      if (hasCode(err, 'not_found')) return { ok: false, reason: 'user_not_found', message: 'This AWS user no longer exists.' }
      throw err
    }
    if (devices.length >= MAX_MFA_DEVICES) return deviceLimit()

    let created = await this.create(userName)
    if (created === 'exists') {
      const leftover = await this.unassignedDeviceNamed(userName)
      if (leftover === undefined) {
        return { ok: false, reason: 'virtual_mfa_exists', message: 'An authenticator app is already set up for this AWS user under its name. Remove it in the AWS console (or ask the helpdesk) to set up a new one.' }
      }
      await this.delete(leftover)
      created = await this.create(userName)
      if (created === 'exists') throw new ProviderError('IAM kept a virtual MFA device of this name after deleting it; try again shortly', true, null, 'concurrent_modification')
    }
    if (created === 'limit') return deviceLimit()
    const expiresAt = new Date(this.clock.now().getTime() + this.pendingMs)
    return { ok: true, setup: await this.describe(userName, created.serialNumber, created.secret, expiresAt) }
  }

  /**
   * Proves the app with two consecutive codes (IAM's EnableMFADevice rule). Codes that IAM rejects come back as a
   * result the page can show, not as an error.
   */
  async complete (userName: string, serialNumber: string, code1: string, code2: string): Promise<CompleteVirtualMfaResult> {
    const first = code1.replace(/[\s-]/g, '')
    const second = code2.replace(/[\s-]/g, '')
    if (!/^\d{6}$/.test(first) || !/^\d{6}$/.test(second)) {
      return { ok: false, reason: 'codes_malformed', message: 'Enter two six-digit codes from your authenticator app.', retry: true }
    }
    try {
      await this.iam.run('EnableMFADevice', (c) => c.send(new EnableMFADeviceCommand({ UserName: userName, SerialNumber: serialNumber, AuthenticationCode1: first, AuthenticationCode2: second })))
      return { ok: true, serialNumber, method: 'totp' }
    } catch (err) {
      if (hasCode(err, 'invalid_code')) {
        return { ok: false, reason: 'codes_rejected', message: 'AWS did not accept those codes. Enter the code your app shows now, wait for it to change, then enter the next one.', retry: true }
      }
      if (hasCode(err, 'invalid_input')) return { ok: false, reason: 'codes_malformed', message: 'Enter two six-digit codes from your authenticator app.', retry: true }
      if (hasCode(err, 'not_found')) return { ok: false, reason: 'setup_expired', message: 'This setup has expired. Start again to get a new QR code.', retry: false }
      if (hasCode(err, 'limit_exceeded')) return { ...deviceLimit(), retry: false }
      if (hasCode(err, 'already_exists')) {
        // Our earlier attempt may have succeeded with its answer lost: then this device is the user's, and done.
        if ((await this.directory.devicesOf(userName)).includes(serialNumber)) return { ok: true, serialNumber, method: 'totp' }
        return { ok: false, reason: 'device_in_use', message: 'This device is already in use. Start again to get a new QR code.', retry: false }
      }
      throw err
    }
  }

  /** Deletes a device whose setup was abandoned. Never touches an enabled device (IAM refuses with DeleteConflict). */
  async delete (serialNumber: string): Promise<DeleteVirtualMfaResult> {
    try {
      await this.iam.run('DeleteVirtualMFADevice', (c) => c.send(new DeleteVirtualMFADeviceCommand({ SerialNumber: serialNumber })))
      return 'deleted'
    } catch (err) {
      if (hasCode(err, 'not_found')) return 'already_gone'
      if (hasCode(err, 'conflict')) return 'in_use'
      throw err
    }
  }

  /** The QR code and key for a setup in progress, from the seed the portal kept (e.g. to show the page again). */
  async describe (userName: string, serialNumber: string, secret: string, expiresAt: Date): Promise<VirtualMfaSetup> {
    const account = accountOf(serialNumber)?.accountId
    const totp = new TOTP({
      issuer: ISSUER,
      label: account === undefined ? userName : `${userName}@${account}`,
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      secret: Secret.fromBase32(secret)
    })
    const otpauthUri = totp.toString()
    return {
      serialNumber,
      secret,
      otpauthUri,
      qrPngDataUrl: await QRCode.toDataURL(otpauthUri, { type: 'image/png', errorCorrectionLevel: 'M', margin: 2, width: 240 }),
      groupedSecret: secret.replace(/(.{4})(?=.)/g, '$1 '),
      expiresAt
    }
  }

  private async create (userName: string): Promise<{ serialNumber: string, secret: string } | 'exists' | 'limit'> {
    try {
      const out = await this.iam.run('CreateVirtualMFADevice', (c) => c.send(new CreateVirtualMFADeviceCommand({
        VirtualMFADeviceName: userName,
        // Marks the device as the portal's, for operators reading the console.
        Tags: [{ Key: 'created-by', Value: 'mfa-rollout' }]
      })))
      const device = out.VirtualMFADevice
      if (device?.SerialNumber === undefined || device.Base32StringSeed === undefined) throw malformed('CreateVirtualMFADevice', 'VirtualMFADevice')
      // The SDK undid the wire's base64: the bytes are the Base32 text itself (contracts §2.1).
      const secret = new TextDecoder().decode(device.Base32StringSeed).trim().replace(/=+$/, '')
      if (!/^[A-Z2-7]{16,}$/.test(secret)) throw malformed('CreateVirtualMFADevice', 'Base32 seed')
      return { serialNumber: device.SerialNumber, secret }
    } catch (err) {
      if (hasCode(err, 'already_exists')) return 'exists'
      if (hasCode(err, 'limit_exceeded')) return 'limit'
      throw err
    }
  }

  private async unassignedDeviceNamed (userName: string): Promise<string | undefined> {
    const unassigned = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListVirtualMFADevices', (c) => c.send(new ListVirtualMFADevicesCommand({ AssignmentStatus: 'Unassigned', Marker })))
      return { ...out, items: itemsOf('ListVirtualMFADevices', 'VirtualMFADevices', out.VirtualMFADevices, out.IsTruncated) }
    })
    return unassigned.find((d) => d.SerialNumber?.endsWith(`:mfa/${userName}`) === true)?.SerialNumber
  }
}

function deviceLimit (): { ok: false, reason: 'device_limit', message: string } {
  return { ok: false, reason: 'device_limit', message: `This AWS user already has ${MAX_MFA_DEVICES} MFA devices, the most AWS allows. Remove one in the AWS console first.` }
}
