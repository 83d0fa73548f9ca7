// A consumer's registration (issue 10): the form with what the mediation asks (its
// fields, its supporting documents), then the registration's status, the mediator's
// reason, the documents sent, and whether notices come by email.
import { FILES_PER_REQUEST, api } from "./api.js";
import { parseEuros } from "./ballots.js";
import { h, field, liveRegion, say, uid } from "./dom.js";
import { format, formatBytes, formatDateTime, formatEuros, gettext, ngettext, statusLabel } from "./i18n.js";
import { errorText } from "./messages.js";

const DOCUMENT_ACCEPT = "application/pdf,image/png,image/jpeg,.pdf,.png,.jpg,.jpeg";

/** What the server said, where it says it best: its message names the file and the limit. */
export function uploadErrorText(error) {
  switch (error && error.code) {
    case "unsupported_type":
    case "empty_file":
    case "too_large":
    case "rate_limited":
    case "conflict":
    case "gone":
      return error.message || errorText(error);
    default:
      return errorText(error);
  }
}

/** Does the mediation ask anything of those who register? */
export function asksSomething(mediation) {
  const registration = mediation.registration;
  return Boolean(registration && (registration.fields.length > 0 || registration.documents_min > 0));
}

function documentsHint(registration) {
  const parts = [
    format(gettext("PDF, PNG or JPEG, %(size)s at most each."), { size: formatBytes(registration.document_max_bytes) }),
  ];
  if (registration.documents_min > 0) {
    parts.push(
      format(
        ngettext("At least %(count)s document is required.", "At least %(count)s documents are required.", registration.documents_min),
        { count: registration.documents_min },
      ),
    );
  }
  return parts.join(" ");
}

/** A file the server would refuse, said before sending it; null when it looks right. */
function fileProblem(file, registration) {
  if (file.size === 0) return format(gettext("The file “%(name)s” is empty."), { name: file.name });
  if (file.size > registration.document_max_bytes)
    return format(gettext("The file “%(name)s” is larger than %(size)s."), { name: file.name, size: formatBytes(registration.document_max_bytes) });
  if (file.type && !registration.document_types.includes(file.type))
    return format(gettext("The file “%(name)s” is not a PDF, PNG or JPEG document."), { name: file.name });
  return null;
}

function fieldInput(spec) {
  const attrs = { name: spec.name, required: spec.required, autocomplete: "off" };
  switch (spec.type) {
    case "textarea":
      return h("textarea", { ...attrs, rows: "4", maxlength: spec.max_length });
    case "integer":
      return h("input", { ...attrs, type: "text", inputmode: "numeric" });
    case "amount":
      return h("input", { ...attrs, type: "text", inputmode: "decimal" });
    default:
      return h("input", { ...attrs, type: "text", maxlength: spec.max_length });
  }
}

/** The answer typed in one field: a string, an integer, cents; undefined when empty; NaN when unreadable. */
function readAnswer(spec, input) {
  const text = input.value.trim();
  if (text === "") return undefined;
  if (spec.type === "amount") return parseEuros(text);
  if (spec.type === "integer") return /^-?\d{1,15}$/.test(text) ? Number(text) : NaN;
  return text;
}

/** The registration form; `onRegistered(answer)` once the server has it. */
export function registrationForm(mediation, { onRegistered, onCancel } = {}) {
  const registration = mediation.registration;
  const inputs = [];
  const fields = registration.fields.map((spec) => {
    const input = fieldInput(spec);
    inputs.push([spec, input]);
    const label = spec.required ? spec.label : format(gettext("%(label)s (optional)"), { label: spec.label });
    let hint = null;
    if (spec.type === "amount") hint = gettext("In euros, for example 150 or 149,90.");
    else if (spec.type === "integer") hint = gettext("A whole number.");
    return field(label, input, hint).field;
  });
  const files = h("input", { type: "file", name: "documents", multiple: true, accept: DOCUMENT_ACCEPT, class: "documents-input" });
  const documentsLabel =
    registration.documents_min > 0 ? gettext("Supporting documents") : gettext("Supporting documents (optional)");
  const status = liveRegion("form-status");
  const submit = h("button", { type: "submit", class: "primary" }, gettext("Send my registration"));
  const cancel = onCancel ? h("button", { type: "button", onclick: onCancel }, gettext("Cancel")) : null;
  const titleId = uid("register");
  const form = h("form", { class: "registration-form", "aria-labelledby": titleId }, [
    h("h3", { id: titleId }, gettext("Register")),
    h("p", { class: "hint" }, gettext("The mediator reads your answers and documents, and admits or refuses your registration. Nobody else sees them.")),
    fields,
    field(documentsLabel, files, documentsHint(registration)).field,
    h("div", { class: "buttons" }, [submit, cancel]),
    status,
  ]);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = {};
    for (const [spec, input] of inputs) {
      const value = readAnswer(spec, input);
      if (Number.isNaN(value)) {
        say(status, format(spec.type === "amount" ? gettext("“%(label)s” is not a number of euros (at most two decimals).") : gettext("“%(label)s” is not a whole number."), { label: spec.label }), "error");
        input.focus();
        return;
      }
      if (value !== undefined) answers[spec.name] = value;
    }
    const chosen = [...files.files];
    const problem = chosen.map((file) => fileProblem(file, registration)).find(Boolean);
    if (problem) {
      say(status, problem, "error");
      files.focus();
      return;
    }
    if (chosen.length < registration.documents_min) {
      say(status, format(ngettext("Add at least %(count)s supporting document.", "Add at least %(count)s supporting documents.", registration.documents_min), { count: registration.documents_min }), "error");
      files.focus();
      return;
    }
    if (chosen.length > registration.documents_max) {
      say(status, format(gettext("At most %(count)s documents per registration."), { count: registration.documents_max }), "error");
      files.focus();
      return;
    }
    submit.disabled = true;
    say(status, gettext("Sending…"));
    let answer;
    try {
      answer = await api.register(mediation.id, answers, chosen.slice(0, FILES_PER_REQUEST));
    } catch (error) {
      submit.disabled = false;
      say(status, error.status === 410 ? gettext("Registration is closed for this mediation.") : uploadErrorText(error), "error");
      if (error.status === 409) onRegistered?.(null);
      return;
    }
    // The rest, one request each: a request carries a few documents at most.
    for (const file of chosen.slice(FILES_PER_REQUEST)) {
      try {
        await api.addDocument(mediation.id, file);
      } catch (error) {
        say(status, format(gettext("Registered, but “%(name)s” was not added: %(reason)s"), { name: file.name, reason: uploadErrorText(error) }), "error");
        onRegistered?.(answer, { keepMessage: true });
        return;
      }
    }
    onRegistered?.(answer);
  });
  return form;
}

/** The mediation's questions and one consumer's answers, labelled. */
export function answersList(fields, answers) {
  if (!answers) return h("p", { class: "answers-gone" }, gettext("The answers can no longer be read."));
  const byName = new Map(fields.map((spec) => [spec.name, spec]));
  const rows = [];
  for (const [name, value] of Object.entries(answers)) {
    const spec = byName.get(name) || { label: name, type: "text" };
    const shown = spec.type === "amount" && typeof value === "number" ? formatEuros(value) : String(value);
    rows.push([h("dt", {}, spec.label), h("dd", {}, shown)]);
  }
  if (rows.length === 0) return h("p", { class: "hint" }, gettext("No answer."));
  return h("dl", { class: "facts answers" }, rows);
}

export function documentsList(documents) {
  if (documents.length === 0) return h("p", { class: "hint no-documents" }, gettext("No supporting document."));
  return h(
    "ul",
    { class: "documents" },
    documents.map((doc) =>
      h("li", { dataset: { documentId: doc.id } }, [
        h("a", { href: doc.url, download: doc.name || true, class: "document-link" }, doc.name || gettext("Document")),
        " ",
        h("span", { class: "hint" }, formatBytes(doc.size)),
      ]),
    ),
  );
}

function statusText(registration) {
  switch (registration.status) {
    case "pending":
      return gettext("Your registration is waiting for the mediator's decision.");
    case "admitted":
      return gettext("Your registration is admitted: you take part in the mediation.");
    case "refused":
      return gettext("Your registration was refused by the mediator.");
    default:
      return statusLabel(registration.status);
  }
}

/** The consumer's own registration, fetched; `onChange` when it may have changed. */
export async function registrationStatus(mediation) {
  const box = h("section", { class: "registration-status", "aria-labelledby": uid("status") });
  let registration;
  try {
    registration = await api.registration(mediation.id);
  } catch (error) {
    if (error.status === 404) return null; // joined before registrations had forms
    box.append(h("p", { class: "error" }, errorText(error)));
    return box;
  }
  const headingId = box.getAttribute("aria-labelledby");
  box.dataset.status = registration.status;
  box.append(
    h("h2", { id: headingId }, gettext("Your registration")),
    h("p", { class: "status-text" }, [h("span", { class: `status-badge status-${registration.status}` }, statusLabel(registration.status)), " ", statusText(registration)]),
  );
  if (registration.status === "refused" && registration.reason) {
    box.append(h("p", { class: "refusal-reason" }, [h("strong", {}, gettext("The mediator's reason:")), " ", h("span", { class: "reason-text" }, registration.reason)]));
  }
  if (registration.submitted_at) box.append(h("p", { class: "hint" }, format(gettext("Sent on %(date)s."), { date: formatDateTime(registration.submitted_at) })));
  const fields = (mediation.registration && mediation.registration.fields) || [];
  if (fields.length > 0) box.append(h("h3", {}, gettext("Your answers")), answersList(fields, registration.answers));
  const docs = h("div", { class: "my-documents" }, documentsList(registration.documents));
  box.append(h("h3", {}, gettext("Your supporting documents")), docs);
  if (registration.status === "pending") box.append(addDocumentForm(mediation, registration, docs));
  if (registration.status !== "refused") box.append(noticesSwitch(mediation, registration.notices));
  return box;
}

function addDocumentForm(mediation, registration, docs) {
  const input = h("input", { type: "file", name: "file", accept: DOCUMENT_ACCEPT });
  const button = h("button", { type: "submit", class: "small" }, gettext("Add the document"));
  const status = liveRegion("form-status");
  const form = h("form", { class: "add-document" }, [field(gettext("Another supporting document"), input, documentsHint({ ...mediation.registration, documents_min: 0 })).field, button, status]);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) {
      say(status, gettext("Choose a file first."), "error");
      return;
    }
    const problem = fileProblem(file, mediation.registration);
    if (problem) {
      say(status, problem, "error");
      return;
    }
    button.disabled = true;
    try {
      const added = await api.addDocument(mediation.id, file);
      registration.documents.push(added);
      docs.replaceChildren(documentsList(registration.documents));
      input.value = "";
      say(status, format(gettext("“%(name)s” is added."), { name: added.name }), "ok");
    } catch (error) {
      say(status, uploadErrorText(error), "error");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function noticesSwitch(mediation, notices) {
  const box = h("input", { type: "checkbox", id: uid("notices"), checked: Boolean(notices && notices.enabled) });
  const status = liveRegion("form-status");
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      const saved = await api.setNotices(mediation.id, box.checked);
      box.checked = saved.enabled;
      say(status, saved.enabled ? gettext("You will get notices by email.") : gettext("You will get no more notices by email."), "ok");
    } catch (error) {
      box.checked = !box.checked;
      say(status, errorText(error), "error");
    } finally {
      box.disabled = false;
    }
  });
  return h("div", { class: "notices-switch" }, [
    h("div", { class: "checkbox-row" }, [box, h("label", { for: box.id }, gettext("Email me when I am admitted or refused, when a ballot opens, the day before it closes if I have not voted, and when it is sealed."))]),
    status,
  ]);
}
