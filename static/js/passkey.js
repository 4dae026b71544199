// The WebAuthn ceremonies behind every button marked data-passkey-action: "register" (enrollment page),
// "sign-in" (sign-in page) and "step-up" (confirm-it's-you page). Each is two requests around one browser
// prompt: ask the server for options, let the browser talk to the authenticator, send the result back.
import { startAuthentication, startRegistration } from '/static/vendor/simplewebauthn/index.js'

const NAME_MAX = 60

/** A problem to show the user as it is: its message is already written for them. `code` is the server's, if any. */
class Problem extends Error {
  constructor (message, code = null) {
    super(message)
    this.code = code
  }
}

const here = () => window.location.pathname + window.location.search

/**
 * What this script says, in the page's language: the page's data block (views/partials/passkey-messages.eta). The
 * English below only stands in on a page that lacks the block.
 */
const MESSAGES = {
  confirm: 'Confirm it\'s you',
  signInAgain: 'Sign in again',
  reload: 'Reload this page',
  unreachable: 'We could not reach the portal. Check your connection and try again.',
  serverError: 'Something went wrong on our side. Please try again in a moment.',
  alreadyRegistered: 'This passkey or security key is already registered to your account. Use a different one, or keep using the one you have.',
  registerCancelled: 'No passkey was saved: the request was cancelled or timed out. Nothing has changed, so you can try again.',
  useCancelled: 'No passkey was used: the request was cancelled or timed out, or this device has no passkey for this site. Try again, or use another way in.',
  notSupported: 'This device or browser cannot create the kind of passkey the portal needs. Try another browser, or a security key.',
  securityError: 'Your browser refused because this page\'s address does not match the portal\'s settings. Please tell your helpdesk.',
  noWebAuthn: 'This browser cannot use passkeys. Try an up-to-date browser, or choose another method.',
  generic: 'Something went wrong with your passkey. Please try again.',
  nameTooLong: `Give the passkey a name of up to ${NAME_MAX} characters, or leave it empty.`,
  ...readMessages()
}

function readMessages () {
  try {
    return JSON.parse(document.getElementById('passkey-messages')?.textContent ?? '{}')
  } catch {
    return {}
  }
}

/** Where to go next when the server's refusal has a way out. */
const WAYS_OUT = {
  step_up_required: () => ({ href: `/step-up?next=${encodeURIComponent(here())}`, text: MESSAGES.confirm }),
  unauthenticated: () => ({ href: `/login?next=${encodeURIComponent(here())}`, text: MESSAGES.signInAgain }),
  csrf_invalid: () => ({ href: here(), text: MESSAGES.reload })
}

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''

async function postJson (url, body) {
  let response
  try {
    response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      // accept: JSON, so the server answers errors as {error: {code, message}} and not as an HTML page.
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrfToken },
      body: JSON.stringify(body)
    })
  } catch {
    throw new Problem(MESSAGES.unreachable)
  }
  // A proxy's or server's error page is not JSON; the status alone then decides what the user is told.
  const data = await response.json().catch(() => null)
  if (!response.ok) {
    // `display` is the server's message in the reader's language; `message` its English, for older answers.
    const message = data?.error?.display ?? data?.error?.message
    throw new Problem(typeof message === 'string' && message !== ''
      ? message
      : MESSAGES.serverError, data?.error?.code ?? null)
  }
  return data ?? {}
}

/** The browser's and the library's errors, in plain words. */
function describe (error, action) {
  if (error instanceof Problem) return error.message
  switch (error?.name) {
    case 'InvalidStateError':
      return MESSAGES.alreadyRegistered
    case 'NotAllowedError':
    case 'AbortError':
      return action === 'register' ? MESSAGES.registerCancelled : MESSAGES.useCancelled
    case 'NotSupportedError':
      return MESSAGES.notSupported
    case 'SecurityError':
      return MESSAGES.securityError
  }
  if (typeof window.PublicKeyCredential === 'undefined') {
    return MESSAGES.noWebAuthn
  }
  return MESSAGES.generic
}

/**
 * Only a path on this site, judged as the browser will read it (the server's rule, server/web/next-url.ts):
 * printable ASCII only, resolved against this page's origin, same origin required, and never a path that
 * starts with "//". Anything else, or nothing, goes home. The server sanitises too: this is belt and braces.
 */
function sameSite (url) {
  if (typeof url !== 'string' || url === '' || /[^\x20-\x7e]/.test(url)) return '/'
  let target
  try {
    target = new URL(url, window.location.origin)
  } catch {
    return '/'
  }
  if (target.origin !== window.location.origin) return '/'
  const path = target.pathname + target.search + target.hash
  return path.startsWith('//') ? '/' : path
}

const ceremonies = {
  async register () {
    const nameInput = document.getElementById('passkey-name')
    const name = (nameInput?.value ?? '').replace(/\s+/g, ' ').trim()
    if (name.length > NAME_MAX) throw new Problem(MESSAGES.nameTooLong)
    const { challengeId, options } = await postJson('/enroll/passkey/options', {})
    const response = await startRegistration({ optionsJSON: options })
    const result = await postJson('/enroll/passkey/verify', { challengeId, response, name })
    return result.redirect
  },

  async 'sign-in' (button) {
    const { challengeId, options } = await postJson('/login/passkey/options', {})
    const response = await startAuthentication({ optionsJSON: options })
    const result = await postJson('/login/passkey/verify', { challengeId, response, next: button.dataset.next ?? '/' })
    return result.redirect
  },

  async 'step-up' (button) {
    const { challengeId, options } = await postJson('/step-up/passkey/options', {})
    const response = await startAuthentication({ optionsJSON: options })
    const result = await postJson('/step-up/passkey/verify', { challengeId, response, next: button.dataset.next ?? '/' })
    return result.redirect ?? button.dataset.next
  }
}

/** The nearest .js-error box around the button; one is added after it if the page has none. */
function errorBoxFor (button) {
  for (let element = button.parentElement; element !== null; element = element.parentElement) {
    const box = element.querySelector('.js-error')
    if (box !== null) return box
  }
  const box = document.createElement('p')
  box.className = 'js-error alert alert-error'
  box.setAttribute('role', 'alert')
  box.hidden = true
  button.after(box)
  return box
}

async function run (button, action) {
  const errorBox = errorBoxFor(button)
  errorBox.hidden = true
  errorBox.textContent = ''
  button.disabled = true
  button.setAttribute('aria-busy', 'true')
  try {
    const redirect = await ceremonies[action](button)
    window.location.assign(sameSite(redirect))
  } catch (error) {
    // Logged for whoever opens the console; the user gets the plain-words version below.
    console.warn('passkey', action, error)
    errorBox.textContent = describe(error, action)
    const wayOut = error instanceof Problem && Object.hasOwn(WAYS_OUT, error.code ?? '') ? WAYS_OUT[error.code]() : undefined
    if (wayOut !== undefined) {
      const link = document.createElement('a')
      link.href = wayOut.href
      link.textContent = wayOut.text
      errorBox.append(' ', link)
    }
    errorBox.hidden = false
    button.disabled = false
    button.removeAttribute('aria-busy')
  }
}

for (const button of document.querySelectorAll('[data-passkey-action]')) {
  const action = button.dataset.passkeyAction
  if (!Object.hasOwn(ceremonies, action)) continue
  button.addEventListener('click', () => { run(button, action) })
}
