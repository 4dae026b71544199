// Copy buttons: <button data-copy-from="ID"> copies the text of #ID without spaces (the key is shown in groups
// of four for reading aloud, but apps want it whole). Hidden until this script runs, since it does nothing without it.
for (const button of document.querySelectorAll('[data-copy-from]')) {
  const source = document.getElementById(button.dataset.copyFrom)
  // navigator.clipboard exists only in secure contexts (https or localhost).
  if (source === null || navigator.clipboard === undefined) continue
  const status = button.parentElement.querySelector('[data-copy-status]')
  const label = button.textContent
  let timer
  button.hidden = false
  button.addEventListener('click', async () => {
    let text
    try {
      await navigator.clipboard.writeText(source.textContent.replace(/\s+/g, ''))
      text = 'Copied'
    } catch {
      text = 'Could not copy. Select the key and copy it yourself.'
    }
    button.textContent = text === 'Copied' ? 'Copied' : label
    if (status !== null) status.textContent = text
    clearTimeout(timer)
    timer = setTimeout(() => { button.textContent = label }, 3000)
  })
}
