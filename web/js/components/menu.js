// The header's menus (my status, my account) share one behaviour: one open
// at a time; Escape closes it and gives focus back to its toggle; so do a
// click outside it (without taking focus) and a change of page.

let openMenu = null;

export function closeOpenMenu(returnFocus = false) {
  if (openMenu) openMenu.close(returnFocus);
}

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && openMenu) { event.preventDefault(); closeOpenMenu(true); }
});
document.addEventListener('pointerdown', (event) => {
  if (openMenu && !openMenu.element.contains(event.target)) closeOpenMenu(false);
});
window.addEventListener('hashchange', () => closeOpenMenu(false));

/**
 * A menu made of `element` (holding `toggle` and the panel); `show(open)`
 * draws the panel open or closed. Returns `{ element, isOpen, open, close }`.
 */
export function menu({ element, toggle, show }) {
  const self = {
    element,
    isOpen: () => openMenu === self,
    open() {
      closeOpenMenu(false);
      show(true);
      toggle.setAttribute('aria-expanded', 'true');
      openMenu = self;
    },
    close(returnFocus) {
      show(false);
      toggle.setAttribute('aria-expanded', 'false');
      if (openMenu === self) openMenu = null;
      if (returnFocus) toggle.focus();
    },
  };
  return self;
}
