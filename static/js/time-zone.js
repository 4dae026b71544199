// Tells the portal the browser's time zone once, so times are shown in it ("until 00:07 (Berlin)") from the next
// page on. Included only while the account has no zone saved; a zone chosen on the preferences page is never
// overwritten. No reload: the page may hold a form being filled in.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? ''
if (typeof zone === 'string' && zone !== '') {
  fetch('/preferences/time-zone', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
    body: JSON.stringify({ timeZone: zone }),
    credentials: 'same-origin'
  }).catch(() => {})
}
