// Django's JavaScript catalogue (/jsi18n/, loaded by app.html before the modules) defines
// gettext, ngettext and interpolate as globals; `make makemessages` extracts the calls.
const catalog = globalThis;

export const lang = document.documentElement.lang || "fr";

export function gettext(text) {
  return catalog.gettext ? catalog.gettext(text) : text;
}

export function ngettext(singular, plural, count) {
  return catalog.ngettext ? catalog.ngettext(singular, plural, count) : count === 1 ? singular : plural;
}

export function pgettext(context, text) {
  return catalog.pgettext ? catalog.pgettext(context, text) : text;
}

/** Fills "%(name)s" placeholders. */
export function format(text, values) {
  return text.replace(/%\((\w+)\)s/g, (_match, key) => String(values[key]));
}

const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
const euros = new Intl.NumberFormat(lang, { style: "currency", currency: "EUR" });
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 2 });
const kilobytes = new Intl.NumberFormat(lang, { style: "unit", unit: "kilobyte", maximumFractionDigits: 0 });
const megabytes = new Intl.NumberFormat(lang, { style: "unit", unit: "megabyte", maximumFractionDigits: 1 });

export function formatDateTime(iso) {
  return dateTime.format(new Date(iso));
}

/** The time alone for today's messages, the date too for older ones. */
export function formatMessageTime(iso) {
  const when = new Date(iso);
  const today = new Date();
  return when.toDateString() === today.toDateString() ? timeOnly.format(when) : dateTime.format(when);
}

export function formatEuros(cents) {
  return euros.format(cents / 100);
}

/** A file's size: "12 kB", "1.4 MB" (in the page's language). */
export function formatBytes(size) {
  return size < 1024 * 1024 ? kilobytes.format(Math.max(1, Math.round(size / 1024))) : megabytes.format(size / (1024 * 1024));
}

export function formatPercent(decimalString) {
  return percent.format(Number(decimalString));
}

/** "2 jours 03:04:05" / "03:04:05": what is left until a deadline. */
export function formatRemaining(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(Math.floor((total % 86400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  if (days === 0) return clock;
  return format(ngettext("%(count)s day", "%(count)s days", days), { count: days }) + " " + clock;
}

export function roleLabel(role) {
  switch (role) {
    case "mediator":
      return gettext("Mediator");
    case "company":
      return gettext("Company");
    case "consumer":
      return gettext("Consumer");
    default:
      return role;
  }
}

export function statusLabel(status) {
  switch (status) {
    case "pending":
      return gettext("Waiting for the mediator");
    case "admitted":
      return gettext("Admitted");
    case "refused":
      return gettext("Refused");
    default:
      return status;
  }
}

export function phaseLabel(phase) {
  switch (phase) {
    case "draft":
      return gettext("Draft");
    case "registration":
      return gettext("Registration open");
    case "dialogue":
      return gettext("Dialogue under way");
    case "closed":
      return gettext("Closed");
    case "shredded":
      return gettext("Closed and erased");
    default:
      return phase;
  }
}
