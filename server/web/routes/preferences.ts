import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import { isLocale, isTimeZone, timeZones } from '../../domain/i18n.ts'
import type { Clock } from '../../domain/clock.ts'
import type { UserStore } from '../../domain/users.ts'
import { requireUser } from '../plugins/auth.ts'
import { LANGUAGE_COOKIE } from '../plugins/views.ts'
import { safeNext } from '../next-url.ts'

const PreferencesBody = Type.Object({
  locale: Type.String({ maxLength: 16 }),
  timeZone: Type.String({ maxLength: 64 }),
  _csrf: Type.Optional(Type.String())
})
const TimeZoneBody = Type.Object({ timeZone: Type.String({ maxLength: 64 }) })
const LanguageParams = Type.Object({ locale: Type.String({ maxLength: 16 }) })
const LanguageQuery = Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) })

/** A visitor's language choice is remembered for a year; it holds only a language code. */
const LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600

/**
 * Language and time zone: a signed-in user's choice is saved to the account (pages, e-mails and text messages follow
 * it); the browser's zone is learned once (static/js/time-zone.js) until the user picks one; visitors who are not
 * signed in choose a language with the footer's links (a cookie).
 */
const preferenceRoutes: FastifyPluginAsync<{ users: Pick<UserStore, 'setPreferences'>, secureCookie: boolean, clock: Clock }> = async (app, { users, secureCookie, clock }) => {
  const page = { preHandler: requireUser, config: { passSession: true as const } }

  app.get('/preferences', page, async (request, reply) => {
    const user = request.user!
    return reply.page('preferences', {
      title: request.i18n.t('preferences.title'),
      chosenLocale: user.locale ?? '',
      chosenTimeZone: user.timeZone ?? '',
      zones: timeZones(),
      now: clock.now(),
      error: null
    })
  })

  app.post('/preferences', { ...page, schema: { body: PreferencesBody } }, async (request, reply) => {
    const user = request.user!
    const { locale, timeZone } = request.body as { locale: string, timeZone: string }
    if ((locale !== '' && !isLocale(locale)) || (timeZone !== '' && !isTimeZone(timeZone))) {
      return reply.code(400).page('preferences', {
        title: request.i18n.t('preferences.title'),
        chosenLocale: user.locale ?? '',
        chosenTimeZone: user.timeZone ?? '',
        zones: timeZones(),
        now: clock.now(),
        error: request.i18n.t(locale !== '' && !isLocale(locale) ? 'preferences.unknown_language' : 'preferences.unknown_time_zone')
      })
    }
    await users.setPreferences(user.id, { locale: locale === '' ? null : locale, timeZone: timeZone === '' ? null : timeZone })
    // The confirmation is written in the language just chosen.
    const chosen = locale === '' ? null : locale
    request.user = { ...user, locale: chosen, timeZone: timeZone === '' ? null : timeZone }
    return reply.flashRedirect('/preferences', request.i18n.t('preferences.saved'))
  })

  // The browser's own zone, sent once by static/js/time-zone.js; never overrides a zone the user chose.
  app.post('/preferences/time-zone', { ...page, schema: { body: TimeZoneBody } }, async (request, reply) => {
    const user = request.user!
    const { timeZone } = request.body as { timeZone: string }
    if (!isTimeZone(timeZone)) return reply.code(400).send({ error: 'unknown_time_zone' })
    if (user.timeZone == null) await users.setPreferences(user.id, { timeZone })
    return reply.code(204).send()
  })

  app.get('/language/:locale', { schema: { params: LanguageParams, querystring: LanguageQuery } }, async (request, reply) => {
    const { locale } = request.params as { locale: string }
    const next = safeNext((request.query as { next?: string }).next)
    if (!isLocale(locale)) return reply.redirect(next, 303)
    reply.setCookie(LANGUAGE_COOKIE, locale, { path: '/', httpOnly: true, sameSite: 'lax', secure: secureCookie, maxAge: LANGUAGE_COOKIE_SECONDS })
    return reply.redirect(next, 303)
  })
}

export default preferenceRoutes
