import { randomUUID } from 'node:crypto'
import { TOTP } from 'otpauth'
import { badRequest, graphError, methodResource, notFound, page, type GraphRequest, type GraphResponse, type RouteContext } from './graph-routes.ts'
import type { FakeTenant, FakeUser } from './tenant.ts'

function deviceResource (d: NonNullable<ReturnType<FakeTenant['oathDevices']['get']>>, tenant: FakeTenant): Record<string, unknown> {
  const assignee = d.assignedTo === null ? null : tenant.byId.get(d.assignedTo)
  return {
    '@odata.type': '#microsoft.graph.hardwareOathTokenAuthenticationMethodDevice', id: d.id, displayName: d.displayName, serialNumber: d.serialNumber,
    manufacturer: d.manufacturer, model: d.model, secretKey: null, timeIntervalInSeconds: d.timeIntervalInSeconds, status: d.status,
    lastUsedDateTime: null, hashFunction: d.hashFunction, assignedTo: assignee === undefined || assignee === null ? null : { id: assignee.id, displayName: assignee.displayName }
  }
}

/** Hardware OATH devices (contracts 1.9): available → assigned → activated | failedActivation; secretKey never returned. */
export function oathDevices (ctx: RouteContext, req: GraphRequest): GraphResponse {
  const { tenant } = ctx
  const id = /^\/directory\/authenticationMethodDevices\/hardwareOathDevices\/([^/]+)$/.exec(req.path)?.[1]
  if (id === undefined && req.method === 'GET') return page(req, [...tenant.oathDevices.values()], (d) => deviceResource(d, tenant))
  if (id === undefined && req.method === 'POST') {
    const b = (req.body ?? {}) as Record<string, unknown>
    for (const field of ['serialNumber', 'manufacturer', 'model', 'secretKey', 'timeIntervalInSeconds']) {
      if (b[field] === undefined || b[field] === '') return badRequest(`${field} is required`, 'invalidRequest')
    }
    if (!/^[A-Z2-7]+=*$/i.test(String(b.secretKey))) return badRequest('secretKey must be base32', 'invalidRequest')
    if (b.timeIntervalInSeconds !== 30 && b.timeIntervalInSeconds !== 60) return badRequest('timeIntervalInSeconds must be 30 or 60', 'invalidRequest')
    const assignTo = (b.assignTo as { id?: string } | undefined)?.id
    if (assignTo !== undefined && tenant.find(assignTo) === undefined) return notFound(assignTo)
    const device = {
      id: randomUUID(), displayName: String(b.displayName ?? ''), serialNumber: String(b.serialNumber), manufacturer: String(b.manufacturer), model: String(b.model),
      secretKey: String(b.secretKey).toUpperCase(), timeIntervalInSeconds: b.timeIntervalInSeconds, hashFunction: b.hashFunction === 'hmacsha256' ? 'hmacsha256' as const : 'hmacsha1' as const,
      status: 'available' as const, assignedTo: null
    }
    tenant.oathDevices.set(device.id, device)
    if (assignTo !== undefined) assignDevice(tenant, tenant.find(assignTo)!, device.id)
    return { status: 201, body: deviceResource(tenant.oathDevices.get(device.id)!, tenant) }
  }
  const device = id === undefined ? undefined : tenant.oathDevices.get(id)
  if (device === undefined) return graphError(404, 'itemNotFound', 'The device was not found')
  if (req.method === 'GET') return { status: 200, body: deviceResource(device, tenant) }
  // "Token needs to be unassigned" before it can be deleted (Graph docs, delete hardwareOathTokenAuthenticationMethodDevice).
  if (req.method === 'DELETE') {
    if (device.assignedTo !== null) return badRequest('The hardware OATH token is assigned to a user: unassign it before deleting it', 'invalidRequest')
    tenant.oathDevices.delete(device.id)
    return { status: 204 }
  }
  return badRequest('Unsupported method', 'BadRequest')
}

function assignDevice (tenant: FakeTenant, user: FakeUser, deviceId: string): Record<string, unknown> {
  const device = tenant.oathDevices.get(deviceId)!
  device.status = 'assigned'
  device.assignedTo = user.id
  // The user's method carries the device's id ("Unique identifier for the device", hardwareOathAuthenticationMethod).
  const method = { odataType: '#microsoft.graph.hardwareOathAuthenticationMethod', id: deviceId, createdDateTime: new Date().toISOString(), props: { deviceId } }
  user.methods.push(method)
  return methodResource(method)
}

export function hardwareOathMethods (ctx: RouteContext, req: GraphRequest, user: FakeUser, rest: string): GraphResponse {
  const { tenant } = ctx
  const mine = user.methods.filter((x) => x.odataType === '#microsoft.graph.hardwareOathAuthenticationMethod')
  if (rest === '/authentication/hardwareOathMethods') {
    if (req.method === 'GET') return { status: 200, body: { value: mine.map(methodResource) } }
    if (req.method === 'POST') {
      const deviceId = (req.body as { device?: { id?: string } } | null)?.device?.id
      const device = deviceId === undefined ? undefined : tenant.oathDevices.get(deviceId)
      if (device === undefined) return graphError(404, 'itemNotFound', 'The device was not found')
      if (device.status !== 'available') return badRequest('The device is already assigned', 'invalidRequest')
      return { status: 201, body: assignDevice(tenant, user, device.id) }
    }
  }
  const m = /^\/authentication\/hardwareOathMethods\/([^/]+)(\/activate)?$/.exec(rest)
  const method = m === null ? undefined : mine.find((x) => x.id === m[1])
  if (m === null || method === undefined) return graphError(404, 'itemNotFound', 'The hardware OATH method was not found')
  const device = tenant.oathDevices.get(String(method.props.deviceId))!
  if (m[2] === '/activate' && req.method === 'POST') {
    const code = String((req.body as { verificationCode?: string } | null)?.verificationCode ?? '')
    const totp = new TOTP({ secret: device.secretKey, period: device.timeIntervalInSeconds, digits: 6, algorithm: device.hashFunction === 'hmacsha256' ? 'SHA256' : 'SHA1' })
    // ±1 step, as Entra tolerates clock drift (contracts Part 3 Graph 10).
    if (totp.validate({ token: code, timestamp: ctx.now().getTime(), window: 1 }) === null) {
      device.status = 'failedActivation'
      return badRequest('The verification code is invalid', 'invalidVerificationCode')
    }
    device.status = 'activated'
    return { status: 204 }
  }
  if (m[2] === undefined && req.method === 'GET') return { status: 200, body: methodResource(method) }
  if (m[2] === undefined && req.method === 'DELETE') {
    user.methods = user.methods.filter((x) => x !== method)
    device.status = 'available'
    device.assignedTo = null
    return { status: 204 }
  }
  return badRequest('Unsupported method', 'BadRequest')
}
