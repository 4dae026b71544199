import { loadCatalogues, Localiser, LOCALES_DIR, type Translator } from '../domain/i18n.ts'

let shared: Localiser | undefined

/**
 * The catalogue outside a request's own translator: for what stays English whoever asks (the `message` of JSON
 * answers, which API callers rely on), and for answers given before a request has a translator (framework errors).
 * Loaded once, on first use.
 */
export function catalogueLocaliser (): Localiser {
  shared ??= new Localiser(loadCatalogues(LOCALES_DIR), { locale: 'en', timeZone: 'UTC' })
  return shared
}

/** The catalogue's English, in UTC. */
export function english (): Translator {
  return catalogueLocaliser().for({ locale: 'en', timeZone: 'UTC' })
}
