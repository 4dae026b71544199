import { randomBytes, randomUUID } from 'node:crypto'
import { hardwareOathMethods, oathDevices } from './oath-routes.ts'
import { PASSWORD_METHOD_ID, PHONE_IDS, REPORT_REFUSALS, type FakeTenant, type FakeUser, type PerUserMfaState, type PhoneType } from './tenant.ts'

export type Version = 'v1.0' | 'beta'

/** One Graph request after the version segment, as the HTTP server or a $batch item hands it over. */
export interface GraphRequest {
  method: string
  version: Version
  /** Decoded path after the version, e.g. /users/{id}/authentication/methods. */
  path: string
  query: URLSearchParams
  body: unknown
}

export interface GraphResponse {
  status: number
  body?: unknown
  headers?: Record<string, string>
}

/** The public Graph origin: next links point there, and the client under test routes them back (contracts Part 3). */
export const GRAPH_ORIGIN = 'https://graph.microsoft.com'

const USER_DEFAULT = ['businessPhones', 'displayName', 'givenName', 'id', 'jobTitle', 'mail', 'mobilePhone', 'officeLocation', 'preferredLanguage', 'surname', 'userPrincipalName']

/** Graph's error envelope (contracts 1.1). */
export function graphError (status: number, code: string, message: string, headers?: Record<string, string>): GraphResponse {
  return {
    status,
    headers,
    body: { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID(), 'client-request-id': randomUUID() } } }
  }
}

export function notFound (id: string): GraphResponse {
  return graphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`)
}

export function badRequest (message: string, code = 'badRequest'): GraphResponse {
  return graphError(400, code, message)
}

/**
 * Serves one page of `items`: $top (default 100, at most 999) and an opaque $skiptoken, with an absolute https
 * next link carrying every original query option (contracts 1.1 "Paging", Part 3 Graph 2).
 */
export function page<T> (req: GraphRequest, items: T[], project: (item: T) => unknown): GraphResponse {
  const top = Math.min(999, Math.max(1, Number(req.query.get('$top') ?? 100) || 100))
  const token = req.query.get('$skiptoken')
  const offset = token === null ? 0 : Number(Buffer.from(token, 'base64url').toString('utf8').replace(/^o:/, ''))
  if (!Number.isInteger(offset) || offset < 0) return badRequest('Invalid $skiptoken', 'Request_BadRequest')
  const body: Record<string, unknown> = { '@odata.context': `${GRAPH_ORIGIN}/${req.version}/$metadata#${req.path.slice(1)}`, value: items.slice(offset, offset + top).map(project) }
  if (offset + top < items.length) {
    const kept = [...req.query.entries()].filter(([k]) => k !== '$skiptoken').map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    kept.push(`$skiptoken=${Buffer.from(`o:${offset + top}`).toString('base64url')}`)
    body['@odata.nextLink'] = `${GRAPH_ORIGIN}/${req.version}${req.path}?${kept.join('&')}`
  }
  return { status: 200, body }
}

function selectOf (req: GraphRequest, fallback: string[] | null): string[] | null {
  const select = req.query.get('$select')
  return select === null ? fallback : [...new Set(['id', ...select.split(',').map((s) => s.trim())])]
}

function project (full: Record<string, unknown>, select: string[] | null): Record<string, unknown> {
  if (select === null) return full
  return Object.fromEntries(select.filter((k) => k in full).map((k) => [k, full[k]]))
}

function userResource (u: FakeUser): Record<string, unknown> {
  const ext: Record<string, string | null> = {}
  for (let i = 1; i <= 15; i++) ext[`extensionAttribute${i}`] = u.ext[`extensionAttribute${i}`] ?? null
  return {
    id: u.id, userPrincipalName: u.userPrincipalName, displayName: u.displayName, mail: u.mail, mobilePhone: u.mobilePhone,
    accountEnabled: u.accountEnabled, userType: u.userType, createdDateTime: u.createdDateTime, onPremisesExtensionAttributes: ext,
    businessPhones: [], givenName: null, surname: null, jobTitle: null, officeLocation: null, preferredLanguage: null
  }
}

/** `field eq 'value'` filters, the only form supported here; anything else gets 400 (contracts Part 3 Graph 4). */
function eqFilter (req: GraphRequest, fields: string[]): { field: string, value: string } | null | GraphResponse {
  const filter = req.query.get('$filter')
  if (filter === null) return null
  const match = /^\s*(\w+)\s+eq\s+'([^']*)'\s*$/.exec(filter)
  if (match === null || !fields.includes(match[1])) return badRequest(`Unsupported query: ${filter}`, 'Request_UnsupportedQuery')
  return { field: match[1], value: match[2] }
}

/** `$expand` of one allowed navigation property (Graph expands one at a time here); anything else gets 400. */
function expandOf (req: GraphRequest, allowed: string[]): string | null | GraphResponse {
  const expand = req.query.get('$expand')
  if (expand === null) return null
  return allowed.includes(expand.trim()) ? expand.trim() : badRequest(`Unsupported query: $expand=${expand}`, 'Request_UnsupportedQuery')
}

function expanded (tenant: FakeTenant, expand: string | null, item: { principalId: string, roleDefinitionId: string }): Record<string, unknown> {
  if (expand === 'principal') return { principal: tenant.principal(item.principalId) }
  if (expand === 'roleDefinition') return { roleDefinition: { id: item.roleDefinitionId, templateId: item.roleDefinitionId, isBuiltIn: true } }
  return {}
}

const E164_GRAPH = /^\+\d{1,3} \d{4,14}(x\d+)?$/

/** A hook the server gives for OATH codes and TAP passes, so tests control time. */
export interface RouteContext {
  tenant: FakeTenant
  now: () => Date
  /** Counts successful requirement PATCHes per user (what the "exactly once" tests assert). */
  onRequirementPatched: (userId: string, from: PerUserMfaState, to: PerUserMfaState) => void
}

/** Routes one Graph request (plain or from a $batch) against the tenant. */
export function routeGraph (ctx: RouteContext, req: GraphRequest): GraphResponse {
  const { tenant } = ctx
  const { method, version, path } = req
  let m: RegExpExecArray | null

  if (method === 'GET' && path === '/users') {
    const select = selectOf(req, USER_DEFAULT)
    return page(req, tenant.users, (u) => project(userResource(u), select))
  }
  if ((m = /^\/users\/([^/]+)$/.exec(path)) !== null && method === 'GET') {
    const user = tenant.find(m[1])
    return user === undefined ? notFound(m[1]) : { status: 200, body: project(userResource(user), selectOf(req, USER_DEFAULT)) }
  }

  if ((m = /^\/reports\/authenticationMethods\/userRegistrationDetails(?:\/([^/]+))?$/.exec(path)) !== null && method === 'GET') {
    if (tenant.reportRefusal !== null) {
      const [code, message] = REPORT_REFUSALS[tenant.reportRefusal]
      return graphError(403, code, message)
    }
    const row = (u: FakeUser): Record<string, unknown> => {
      const methodsRegistered = tenant.methodsRegistered(u)
      const strong = methodsRegistered.some((n) => n !== 'temporaryAccessPass' && n !== 'email')
      return {
        id: u.id, userPrincipalName: u.userPrincipalName, userDisplayName: u.displayName, userType: u.userType.toLowerCase(), isAdmin: tenant.roleAssignments.some((a) => a.principalId === u.id),
        isSsprRegistered: false, isSsprEnabled: false, isSsprCapable: false, isMfaRegistered: strong, isMfaCapable: strong, isPasswordlessCapable: false,
        methodsRegistered, isSystemPreferredAuthenticationMethodEnabled: true, systemPreferredAuthenticationMethods: [], userPreferredMethodForSecondaryAuthentication: 'none',
        lastUpdatedDateTime: ctx.now().toISOString()
      }
    }
    // Disabled accounts are not in the report (contracts 1.4: "doesn't work for disabled users").
    if (m[1] !== undefined) {
      const user = tenant.find(m[1])
      return user === undefined || !user.accountEnabled ? notFound(m[1]) : { status: 200, body: row(user) }
    }
    const filter = req.query.get('$filter')
    // A listing is a snapshot taken at its first page (the report is refreshed in the background, contracts 1.4);
    // later pages reuse it, which also keeps 100,000 users cheap to page through.
    if (req.query.get('$skiptoken') === null || tenant.reportSnapshot === null) tenant.reportSnapshot = tenant.users.filter((u) => u.accountEnabled)
    let users = tenant.reportSnapshot
    if (filter !== null) {
      if (!/^isMfaRegistered eq (true|false)$/.test(filter)) return badRequest(`Unsupported query: ${filter}`, 'Request_UnsupportedQuery')
      const want = filter.endsWith('true')
      users = users.filter((u) => (row(u).isMfaRegistered as boolean) === want)
    }
    const select = selectOf(req, null)
    return page(req, users, (u) => project(row(u), select))
  }

  if (method === 'GET' && path === '/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass') {
    const { includeTargets, excludeTargets, ...rest } = tenant.tapPolicy
    return {
      status: 200,
      body: {
        '@odata.type': '#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration', id: 'TemporaryAccessPass', ...rest,
        includeTargets: includeTargets.map((t) => ({ ...t, isRegistrationRequired: false })), excludeTargets
      }
    }
  }
  // The hardware OATH tokens method's policy lives only in beta.
  if (method === 'GET' && /^\/policies\/authenticationMethodsPolicy\/authenticationMethodConfigurations\/hardwareOath$/i.test(path)) {
    if (version !== 'beta') return badRequest('Resource not found for the segment \'hardwareOath\'.', 'BadRequest')
    return { status: 200, body: { '@odata.type': '#microsoft.graph.hardwareOathAuthenticationMethodConfiguration', id: 'HardwareOath', state: tenant.hardwareOathPolicy.state, includeTargets: [{ targetType: 'group', id: 'all_users', isRegistrationRequired: false }], excludeTargets: [] } }
  }

  if (method === 'GET' && path === '/roleManagement/directory/roleAssignments') {
    const filter = eqFilter(req, ['principalId', 'roleDefinitionId'])
    if (filter !== null && 'status' in filter) return filter
    const expand = expandOf(req, ['principal', 'roleDefinition'])
    if (typeof expand === 'object' && expand !== null) return expand
    const items = filter === null ? tenant.roleAssignments : tenant.roleAssignments.filter((a) => a[filter.field as 'principalId'] === filter.value)
    return page(req, items, (a) => ({ ...a, resourceScope: a.directoryScopeId, ...expanded(tenant, expand, a) }))
  }

  // PIM eligibilities (v1.0 and beta): tenants without Entra ID P2 / Governance are refused, as Graph does.
  if (method === 'GET' && path === '/roleManagement/directory/roleEligibilityScheduleInstances') {
    if (tenant.pimUnlicensed) return graphError(400, 'AadPremiumLicenseRequired', 'The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.')
    const filter = eqFilter(req, ['principalId', 'roleDefinitionId'])
    if (filter !== null && 'status' in filter) return filter
    const expand = expandOf(req, ['principal', 'roleDefinition'])
    if (typeof expand === 'object' && expand !== null) return expand
    const items = filter === null ? tenant.roleEligibilities : tenant.roleEligibilities.filter((e) => e[filter.field as 'principalId'] === filter.value)
    return page(req, items, (e) => ({ ...e, ...expanded(tenant, expand, e) }))
  }

  // Direct or transitive members, optionally cast to one type (/microsoft.graph.user): nested groups are expanded
  // by transitiveMembers only, as Graph does.
  if ((m = /^\/groups\/([^/]+)\/(members|transitiveMembers)(?:\/microsoft\.graph\.(user|group))?$/.exec(path)) !== null && method === 'GET') {
    const members = tenant.groups.get(m[1])
    if (members === undefined) return notFound(m[1])
    const ids = m[2] === 'members' ? [...members] : tenant.transitiveMembers(m[1])
    const typed = ids.map((id) => ({ id, type: tenant.groups.has(id) ? 'group' : 'user' })).filter((x) => m![3] === undefined || x.type === m![3])
    return page(req, typed, (x) => ({ '@odata.type': `#microsoft.graph.${x.type}`, id: x.id }))
  }
  if ((m = /^\/groups\/([^/]+)\/members\/\$ref$/.exec(path)) !== null && method === 'POST') {
    const members = tenant.groups.get(m[1])
    if (members === undefined) return notFound(m[1])
    const ref = String((req.body as { '@odata.id'?: string } | null)?.['@odata.id'] ?? '')
    const id = /\/directoryObjects\/([^/?]+)$/.exec(ref)?.[1]
    if (id === undefined || tenant.byId.get(id) === undefined) return badRequest('Invalid object identifier', 'Request_BadRequest')
    if (members.has(id)) return badRequest('One or more added object references already exist for the following modified properties: \'members\'.', 'Request_BadRequest')
    members.add(id)
    return { status: 204 }
  }
  if ((m = /^\/groups\/([^/]+)\/members\/([^/]+)\/\$ref$/.exec(path)) !== null && method === 'DELETE') {
    const members = tenant.groups.get(m[1])
    if (members === undefined || !members.has(m[2])) return notFound(m[2])
    members.delete(m[2])
    return { status: 204 }
  }

  if (path.startsWith('/directory/authenticationMethodDevices/hardwareOathDevices')) {
    if (version !== 'beta') return badRequest('Resource not found for the segment \'authenticationMethodDevices\'.', 'BadRequest')
    return oathDevices(ctx, req)
  }

  if ((m = /^\/users\/([^/]+)(\/.*)$/.exec(path)) !== null) {
    const user = tenant.find(m[1])
    if (user === undefined) return notFound(m[1])
    return userScoped(ctx, req, user, m[2])
  }
  return badRequest(`Resource not found for the segment '${path.split('/')[1] ?? ''}'.`, 'BadRequest')
}

function userScoped (ctx: RouteContext, req: GraphRequest, user: FakeUser, rest: string): GraphResponse {
  const { tenant } = ctx
  const { method, version } = req
  let m: RegExpExecArray | null

  // Transitive: membership through a nested group counts, as Conditional Access counts it.
  if (rest === '/checkMemberGroups' && method === 'POST') {
    const ids = ((req.body as { groupIds?: string[] } | null)?.groupIds ?? [])
    return { status: 200, body: { value: ids.filter((g) => tenant.transitiveMembers(g).includes(user.id)) } }
  }

  if (rest === '/authentication/methods' && method === 'GET') {
    const visible = user.methods.filter((m) => version === 'beta' || m.odataType !== '#microsoft.graph.hardwareOathAuthenticationMethod')
    const items = [
      { '@odata.type': '#microsoft.graph.passwordAuthenticationMethod', id: PASSWORD_METHOD_ID, password: null, createdDateTime: user.createdDateTime },
      ...visible.map(methodResource),
      ...(user.tap === null ? [] : [tapResource(ctx, user.tap, null)])
    ]
    return { status: 200, body: { '@odata.context': `${GRAPH_ORIGIN}/${version}/$metadata#users('${user.id}')/authentication/methods`, value: items } }
  }

  if (rest === '/authentication/requirements') {
    // Per-user MFA lives only in beta (contracts 1.10).
    if (version !== 'beta') return badRequest('Resource not found for the segment \'requirements\'.', 'BadRequest')
    if (method === 'GET') return { status: 200, body: { perUserMfaState: user.requirement } }
    if (method === 'PATCH') {
      const state = (req.body as { perUserMfaState?: string } | null)?.perUserMfaState
      if (state !== 'disabled' && state !== 'enabled' && state !== 'enforced') return badRequest(`Invalid value for perUserMfaState: ${String(state)}`, 'invalidRequest')
      const from = user.requirement
      user.requirement = state
      ctx.onRequirementPatched(user.id, from, state)
      return { status: 204 }
    }
  }

  if (rest === '/authentication/phoneMethods') {
    const phones = user.methods.filter((x) => x.odataType === '#microsoft.graph.phoneAuthenticationMethod')
    if (method === 'GET') return { status: 200, body: { value: phones.map(methodResource) } }
    if (method === 'POST') {
      const { phoneNumber, phoneType } = (req.body ?? {}) as { phoneNumber?: string, phoneType?: PhoneType }
      if (phoneType === undefined || !(phoneType in PHONE_IDS)) return badRequest('Invalid phoneType', 'invalidRequest')
      if (typeof phoneNumber !== 'string' || !E164_GRAPH.test(phoneNumber)) return badRequest('Invalid phone number format, expected +{country code} {number}', 'invalidRequest')
      if (tenant.phone(user, phoneType) !== undefined) return badRequest(`A phone method of type ${phoneType} already exists`, 'invalidRequest')
      if (phoneType === 'alternateMobile' && tenant.phone(user, 'mobile') === undefined) return badRequest('A mobile phone must exist before an alternate mobile phone', 'invalidRequest')
      return { status: 201, body: methodResource(tenant.addPhone(user, phoneType, phoneNumber)) }
    }
  }
  if ((m = /^\/authentication\/phoneMethods\/([^/]+)$/.exec(rest)) !== null) {
    const phone = user.methods.find((x) => x.odataType === '#microsoft.graph.phoneAuthenticationMethod' && x.id === m![1])
    if (phone === undefined) return graphError(404, 'itemNotFound', 'The phone method was not found')
    if (method === 'GET') return { status: 200, body: methodResource(phone) }
    if (method === 'DELETE') {
      user.methods = user.methods.filter((x) => x !== phone)
      return { status: 204 }
    }
    if (method === 'PATCH') {
      const { phoneNumber, phoneType } = (req.body ?? {}) as { phoneNumber?: string, phoneType?: string }
      if (phoneType !== undefined && phoneType !== phone.props.phoneType) return badRequest('The phone type cannot be changed', 'invalidRequest')
      if (typeof phoneNumber !== 'string' || !E164_GRAPH.test(phoneNumber)) return badRequest('Invalid phone number format, expected +{country code} {number}', 'invalidRequest')
      phone.props.phoneNumber = phoneNumber
      return { status: 204 }
    }
  }

  if (rest === '/authentication/temporaryAccessPassMethods') {
    if (method === 'GET') return { status: 200, body: { value: user.tap === null ? [] : [tapResource(ctx, user.tap, null)] } }
    if (method === 'POST') return createTap(ctx, user, (req.body ?? {}) as Record<string, unknown>)
  }
  if ((m = /^\/authentication\/temporaryAccessPassMethods\/([^/]+)$/.exec(rest)) !== null) {
    if (user.tap === null || user.tap.id !== m[1]) return graphError(404, 'itemNotFound', 'The temporary access pass was not found')
    if (method === 'GET') return { status: 200, body: tapResource(ctx, user.tap, null) }
    if (method === 'DELETE') { user.tap = null; return { status: 204 } }
  }

  if (rest.startsWith('/authentication/hardwareOathMethods')) {
    if (version !== 'beta') return badRequest('Resource not found for the segment \'hardwareOathMethods\'.', 'BadRequest')
    return hardwareOathMethods(ctx, req, user, rest)
  }
  return badRequest(`Resource not found for the segment '${rest.split('/').pop() ?? ''}'.`, 'BadRequest')
}

export function methodResource (m: { odataType: string, id: string, createdDateTime: string, props: Record<string, unknown> }): Record<string, unknown> {
  const props = { ...m.props }
  delete props.deviceId
  return { '@odata.type': m.odataType, id: m.id, createdDateTime: m.createdDateTime, ...props }
}

/** TAP rules (contracts 1.7, Part 3 Graph 8): one per user, lifetime within Graph's and the policy's bounds. */
function createTap (ctx: RouteContext, user: FakeUser, body: Record<string, unknown>): GraphResponse {
  const policy = ctx.tenant.tapPolicy
  if (policy.state !== 'enabled') return graphError(403, 'accessDenied', 'Temporary Access Pass is disabled by policy')
  // Graph's code for a user outside the policy's targets is not documented (contracts Part 4); a 4xx is what matters.
  if (!ctx.tenant.inTapScope(user)) return badRequest('The user is not in the Temporary Access Pass policy\'s targets', 'invalidRequest')
  const lifetime = body.lifetimeInMinutes === undefined ? policy.defaultLifetimeInMinutes : Number(body.lifetimeInMinutes)
  if (!Number.isInteger(lifetime) || lifetime < 10 || lifetime > 43_200 || lifetime < policy.minimumLifetimeInMinutes || lifetime > policy.maximumLifetimeInMinutes) {
    return badRequest(`lifetimeInMinutes must be between ${policy.minimumLifetimeInMinutes} and ${policy.maximumLifetimeInMinutes}`, 'invalidRequest')
  }
  const once = body.isUsableOnce === undefined ? policy.isUsableOnce : body.isUsableOnce === true
  if (policy.isUsableOnce && !once) return badRequest('The policy requires one-time passes', 'invalidRequest')
  const created = ctx.now().toISOString()
  user.tap = { id: randomUUID(), createdDateTime: created, startDateTime: typeof body.startDateTime === 'string' ? body.startDateTime : created, lifetimeInMinutes: lifetime, isUsableOnce: once }
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789+%@'
  const pass = [...randomBytes(policy.defaultLength)].map((b) => alphabet[b % alphabet.length]).join('')
  return { status: 201, body: tapResource(ctx, user.tap, pass) }
}

function tapResource (ctx: RouteContext, tap: NonNullable<FakeUser['tap']>, pass: string | null): Record<string, unknown> {
  const now = ctx.now().getTime()
  const start = Date.parse(tap.startDateTime)
  const reason = now < start ? 'NotYetValid' : now > start + tap.lifetimeInMinutes * 60_000 ? 'Expired' : 'EnabledByPolicy'
  return {
    '@odata.type': '#microsoft.graph.temporaryAccessPassAuthenticationMethod', id: tap.id, temporaryAccessPass: pass, createdDateTime: tap.createdDateTime,
    startDateTime: tap.startDateTime, lifetimeInMinutes: tap.lifetimeInMinutes, isUsableOnce: tap.isUsableOnce, isUsable: reason === 'EnabledByPolicy', methodUsabilityReason: reason
  }
}
