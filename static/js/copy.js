// Copy buttons: <button data-copy-from="ID"> copies the text of #ID without spaces (the key is shown in groups
// of four for reading aloud, but apps want it whole). Hidden until this script runs, since it does nothing without it.
// What it says comes from the button, in the page's language: data-copied and data-copy-failed.
for (const button of document.querySelectorAll('[data-copy-from]')) {
  const source = document.getElementById(button.dataset.copyFrom)
  // navigator.clipboard exists only in secure contexts (https or localhost).
  if (source === null || navigator.clipboard === undefined) continue
  const status = button.parentElement.querySelector('[data-copy-status]')
  const label = button.textContent
  const copied = button.dataset.copied ?? 'Copied'
  const failed = button.dataset.copyFailed ?? 'Could not copy. Select the key and copy it yourself.'
  let timer
  button.hidden = false
  button.addEventListener('click', async () => {
    let text
    try {
      await navigator.clipboard.writeText(source.textContent.replace(/\s+/g, ''))
      text = copied
    } catch {
      text = failed
    }
    button.textContent = text === copied ? copied : label
    if (status !== null) status.textContent = text
    clearTimeout(timer)
    timer = setTimeout(() => { button.textContent = label }, 3000)
  })
}
