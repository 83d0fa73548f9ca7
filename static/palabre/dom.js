// Elements are built with createElement and textContent, never from HTML strings: what
// people type can't become markup, and the CSP (no inline script or style) holds.

/**
 * h("button", {class: "primary", type: "button", onclick: fn}, "Text", child, ...)
 * Attributes: `class`, `dataset` (object), `on<event>` (listener), `true` for a boolean
 * attribute; null, undefined and false are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let nextId = 0;

/** A fresh id for label/aria links. */
export function uid(prefix = "p") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form field: returns {field, input}. */
export function field(labelText, input, hint) {
  if (!input.id) input.id = uid("f");
  const parts = [h("label", { for: input.id }, labelText), input];
  if (hint) {
    const hintEl = h("p", { class: "hint", id: uid("h") }, hint);
    input.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return { field: h("div", { class: "field" }, parts), input };
}

/** A polite live region: what it says is read out by screen readers. */
export function liveRegion(className = "notice") {
  return h("p", { class: className, role: "status", "aria-live": "polite" });
}

export function say(region, text, kind = "") {
  region.textContent = text || "";
  region.dataset.kind = kind;
}
