// Building the page with DOM calls only: no HTML strings anywhere, which is what lets the server's policy
// require Trusted Types with no policy at all.

export function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page lacks #${id}`);
  return found as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** A plain left click: anything else (new tab, new window) is left to the browser and the link's address. */
export function plainClick(event: MouseEvent): boolean {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

/** `user.password.changed` may wrap after its dots on a narrow screen, and nowhere else. */
export function breakable(action: string): (Node | string)[] {
  const parts = action.split(".");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}.`, element("wbr")] : [part]));
}
