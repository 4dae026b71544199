import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { DomainError } from '../../domain/errors.ts'
import { ProviderError } from '../../domain/provider.ts'
import type { VirtualMfaEnrollmentService, VirtualMfaSetupView } from '../../domain/virtual-mfa-enrollment.ts'
import type { Clock } from '../../domain/clock.ts'
import { awsConsoleLinks } from '../../providers/aws/console-links.ts'
import type { AwsConfig } from '../../providers/aws/config.ts'
import { changeContext, requireUser } from '../plugins/auth.ts'
import { sendError, statusFor } from '../plugins/errors.ts'
import { MASKED_TOKEN_MAX_LENGTH } from '../masked-token.ts'

// Codes are checked by the adapter (six digits each, spaces and dashes ignored); the schema only stops absurd sizes.
// Any other field (e.g. a serial number) is ignored: the device always comes from the user's own pending setup.
const FinishBody = Type.Object({
  code1: Type.String({ maxLength: 20 }),
  code2: Type.String({ maxLength: 20 }),
  _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH }))
})
const CsrfBody = Type.Object({ _csrf: Type.Optional(Type.String({ maxLength: MASKED_TOKEN_MAX_LENGTH })) })

const MFA_URL = '/enroll/aws-mfa'
const KEY_URL = '/enroll/aws-security-key'
/** Statuses for the AWS refusals (the rest go through the shared table in plugins/errors.ts). */
const STATUS: Record<string, number> = { device_limit: 409, virtual_mfa_exists: 409, user_not_found: 404, provider_not_configured: 404 }
const statusOf = (err: DomainError): number => STATUS[err.code] ?? statusFor(err)
/** Codes of refusals that no retry on this page fixes; the page explains instead of showing a setup. */
const BLOCKING = new Set(['step_up_required', 'untrusted_network', 'device_limit', 'virtual_mfa_exists', 'user_not_found', 'provider_not_configured'])

interface Deps {
  virtualMfa: VirtualMfaEnrollmentService
  awsConfig: AwsConfig | undefined
  clock: Clock
}

interface PageState {
  setup?: VirtualMfaSetupView
  refusal?: DomainError
  error?: string
}

/**
 * AWS IAM users: an authenticator app brokered by the portal (begin: a device at AWS shown as QR + key; finish: two
 * consecutive codes), and the guide for security keys, which only the AWS console can register.
 */
const enrollAwsRoutes: FastifyPluginAsync<Deps> = async (app, { virtualMfa, awsConfig, clock }) => {
  const options = { preHandler: [requireUser, onlyAwsUsers], config: { passSession: true as const } }

  function render (reply: FastifyReply, state: PageState): FastifyReply {
    // The page carries the seed in clear: no copy of it may stay in a browser or proxy cache.
    reply.header('cache-control', 'no-store')
    const { setup, refusal } = state
    const i18n = reply.request.i18n
    return reply.page('enroll/aws-mfa', {
      title: i18n.t('enroll.aws_mfa_title'),
      refusal: refusal === undefined ? null : { message: i18n.error(refusal), stepUp: refusal.code === 'step_up_required' },
      setup: setup === undefined ? null : { groupedSecret: setup.groupedSecret, expiresAt: setup.expiresAt },
      error: state.error ?? null,
      scripts: setup === undefined ? [] : ['/static/js/copy.js']
    })
  }

  /** Runs IAM work for a page; IAM being unreachable is a page that says so, not a crash. */
  async function withAws (request: FastifyRequest, reply: FastifyReply, work: () => Promise<FastifyReply>): Promise<FastifyReply> {
    try {
      return await work()
    } catch (err) {
      if (err instanceof DomainError) {
        if (err.code === 'not_aws_user') return sendError(request, reply, 404, err.code, err)
        return render(reply.code(statusOf(err)), BLOCKING.has(err.code) ? { refusal: err } : { error: request.i18n.error(err) })
      }
      if (err instanceof ProviderError) {
        request.log.warn({ err }, 'AWS IAM call failed on an enrollment page')
        return sendError(request, reply, 503, 'provider_unavailable', { key: 'enroll.aws_unavailable' })
      }
      throw err
    }
  }

  app.get(MFA_URL, options, async (request, reply) => withAws(request, reply, async () => {
    const user = request.user!
    const context = changeContext(request, clock.now())
    // Checked before showing a pending setup too: a step-up that has since lapsed must not show the QR code again.
    await virtualMfa.assertMayAdd(user, context)
    return render(reply, { setup: await virtualMfa.current(user) ?? await virtualMfa.begin(user, context) })
  }))

  app.get(`${MFA_URL}/qr.png`, options, async (request, reply) => withAws(request, reply, async () => {
    const user = request.user!
    try {
      // The image holds the pending seed: asked the same question as the page, or a lapsed step-up still shows it.
      await virtualMfa.assertMayAdd(user, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError) || err.code === 'not_aws_user') throw err
      return sendError(request, reply, statusOf(err), err.code, err)
    }
    const setup = await virtualMfa.current(user)
    if (setup === undefined) {
      return sendError(request, reply, 404, 'no_pending_setup', { key: 'enroll.no_pending_setup' })
    }
    const png = Buffer.from(setup.qrPngDataUrl.slice(setup.qrPngDataUrl.indexOf(',') + 1), 'base64')
    return reply.header('cache-control', 'no-store').type('image/png').send(png)
  }))

  app.post<{ Body: Static<typeof FinishBody> }>(MFA_URL, { ...options, schema: { body: FinishBody } }, async (request, reply) => withAws(request, reply, async () => {
    const user = request.user!
    try {
      await virtualMfa.finish(user, request.body.code1, request.body.code2, changeContext(request, clock.now()))
    } catch (err) {
      if (!(err instanceof DomainError) || BLOCKING.has(err.code) || err.code === 'not_aws_user') throw err
      // Wrong or non-consecutive codes, a lockout, a lapsed setup: the same page again, with what to do.
      return render(reply.code(statusOf(err)), { setup: await virtualMfa.current(user), error: request.i18n.error(err) })
    }
    return reply.flashRedirect('/', request.i18n.t('enroll.aws_done'))
  }))

  app.post<{ Body: Static<typeof CsrfBody> }>(`${MFA_URL}/restart`, { ...options, schema: { body: CsrfBody } }, async (request, reply) => withAws(request, reply, async () => {
    await virtualMfa.begin(request.user!, changeContext(request, clock.now()))
    return reply.flashRedirect(MFA_URL, request.i18n.t('enroll.new_qr'), 'info')
  }))

  app.get(KEY_URL, options, async (request, reply) => {
    const user = request.user!
    const links = awsConsoleLinks(awsConfig?.accountId, await virtualMfa.arnOf(user))
    return reply.page('enroll/aws-security-key', {
      title: request.i18n.t('enroll.aws_key_title'),
      // The IAM user name (the id is the portal's key, not what the AWS console shows).
      userName: user.displayName,
      links,
      registered: user.providerMethods.includes('passkey'),
      error: null
    })
  })

  app.post<{ Body: Static<typeof CsrfBody> }>(`${KEY_URL}/check`, { ...options, schema: { body: CsrfBody } }, async (request, reply) => {
    try {
      const result = await virtualMfa.checkRegistration(request.user!)
      if (result.methods.includes('passkey')) {
        return reply.flashRedirect(KEY_URL, request.i18n.t('enroll.aws_key_found'))
      }
      return reply.flashRedirect(KEY_URL, request.i18n.t('enroll.aws_key_missing'), 'info')
    } catch (err) {
      if (err instanceof DomainError) return reply.flashRedirect(KEY_URL, request.i18n.error(err), 'error')
      if (err instanceof ProviderError) {
        request.log.warn({ err }, 'AWS IAM call failed on the security-key check')
        return reply.flashRedirect(KEY_URL, request.i18n.t('enroll.aws_key_unavailable'), 'error')
      }
      throw err
    }
  })
}

/** These pages are for IAM users; anyone else gets "not found" rather than a page that cannot work for them. */
async function onlyAwsUsers (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.user === null || reply.sent) return
  if (request.user.provider !== 'aws' || request.user.externalId === null) {
    sendError(request, reply, 404, 'not_aws_user', { key: 'enroll.not_aws_user' })
  }
}

export default enrollAwsRoutes
