/**
 * A few DOM helpers for the console's pages: build elements from a tag, attributes and
 * children (text is always set as text, never parsed as HTML, so nothing the network returns
 * can inject markup), tables with a caption and header cells, and definition lists.
 */

export type Child = Node | string | number | null | undefined | false;
export type Attributes = Record<string, string | number | boolean | EventListener | undefined>;

/** `<tag attrs>children</tag>`; `on<event>` attributes become listeners, booleans flags. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything in `parent` with `children`. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A table with a caption (its accessible name) and one header row. */
export function table(caption: string, headers: readonly string[], rows: readonly Child[][]) {
  return h(
    "table",
    { "aria-label": caption },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c) => h("td", {}, c))))),
  );
}

/** `<dl>` of term/definition pairs. */
export function facts(pairs: readonly [string, Child][]): HTMLDListElement {
  return h(
    "dl",
    { class: "facts" },
    ...pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/** A long id shown shortened, whole in its title and for screen readers. */
export function shortId(id: string): HTMLElement {
  return h("code", { title: id, "aria-label": id }, id.length > 16 ? `${id.slice(0, 12)}…` : id);
}

/** A status word as a badge; `tone` picks its colour. */
export function badge(text: string, tone: "good" | "warn" | "bad" | "neutral" = "neutral") {
  return h("span", { class: `badge ${tone}` }, text);
}

/** A section with a heading, labelled by it. */
export function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": `${id}-title`, id },
    h("h2", { id: `${id}-title` }, title),
    ...children,
  );
}

/** An error box (role=alert) with the console's or the network's message. */
export function errorBox(err: unknown): HTMLElement {
  const message = err instanceof Error ? err.message : String(err);
  return h("p", { class: "error", role: "alert" }, message);
}
