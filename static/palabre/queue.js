// The mediator's side of registration (issue 10): the phase and the button that moves it
// on, and the queue of registrations with their answers and documents, each marked
// admitted or refused (with a reason), all the marks sent as one decision.
import { api } from "./api.js";
import { h, field, liveRegion, say, uid } from "./dom.js";
import { format, formatDateTime, gettext, ngettext, phaseLabel, statusLabel } from "./i18n.js";
import { errorText } from "./messages.js";
import { answersList, documentsList } from "./registration.js";

const PAGE = 50;

function nextPhase(phase) {
  if (phase === "registration") return "dialogue";
  if (phase === "dialogue") return "closed";
  return null;
}

function advanceLabel(next) {
  return next === "dialogue" ? gettext("End registration and start the dialogue") : gettext("Close the mediation without agreement");
}

function advanceConfirmLabel(next) {
  return next === "dialogue" ? gettext("Confirm: start the dialogue") : gettext("Confirm: close the mediation");
}

/** The phase, and the button that moves it on (a second click confirms). */
export function phaseControl(mediation, { onMoved } = {}) {
  const label = h("p", { class: "phase-now" });
  const button = h("button", { type: "button", class: "advance" });
  const status = liveRegion("form-status");
  const box = h("div", { class: "phase-control" }, [label, h("div", { class: "buttons" }, [button]), status]);
  let armed = false;
  let disarm = null;
  const render = () => {
    label.textContent = format(gettext("Phase: %(phase)s."), { phase: phaseLabel(mediation.phase) });
    const next = nextPhase(mediation.phase);
    button.hidden = !next;
    if (next) button.textContent = advanceLabel(next);
    button.classList.remove("danger");
    armed = false;
  };
  button.addEventListener("click", async () => {
    const next = nextPhase(mediation.phase);
    if (!next) return;
    if (!armed) {
      armed = true;
      button.textContent = advanceConfirmLabel(next);
      button.classList.add("danger");
      clearTimeout(disarm);
      disarm = setTimeout(render, 8000);
      return;
    }
    clearTimeout(disarm);
    button.disabled = true;
    try {
      const moved = await api.advance(mediation.id, next);
      mediation.phase = moved.phase;
      render();
      say(status, format(gettext("The mediation is now in its phase: %(phase)s."), { phase: phaseLabel(moved.phase) }), "ok");
      onMoved?.(moved.phase);
    } catch (error) {
      render();
      say(status, error.code === "conflict" ? error.message : errorText(error), "error");
    } finally {
      button.disabled = false;
    }
  });
  render();
  return box;
}

/** The queue of registrations of one status, paged; decisions sent together. */
export class RegistrationQueue {
  constructor(mediation) {
    this.mediation = mediation;
    this.fields = (mediation.registration && mediation.registration.fields) || [];
    this.status = "pending";
    this.next = null;
    this.items = new Map();

    const headingId = uid("queue");
    this.filter = h(
      "select",
      { class: "queue-filter" },
      ["pending", "refused", "admitted"].map((status) => h("option", { value: status }, statusLabel(status))),
    );
    this.filter.addEventListener("change", () => this.load(this.filter.value));
    this.list = h("ol", { class: "queue", "aria-labelledby": headingId });
    this.empty = h("p", { class: "empty", hidden: true });
    this.more = h("button", { type: "button", class: "small more", hidden: true, onclick: () => this.loadMore() }, gettext("Show more"));
    this.commonReason = h("textarea", { rows: "2", maxlength: "2000", class: "common-reason" });
    this.admitAll = h("button", { type: "button", class: "small mark-all-admit", onclick: () => this.markAll("admit") }, gettext("Mark all: admit"));
    this.refuseAll = h("button", { type: "button", class: "small mark-all-refuse", onclick: () => this.markAll("refuse") }, gettext("Mark all: refuse"));
    this.clearMarks = h("button", { type: "button", class: "small clear-marks", onclick: () => this.markAll(null) }, gettext("Clear the marks"));
    this.send = h("button", { type: "submit", class: "primary send-decisions", disabled: true }, gettext("Send the decisions"));
    this.status_ = liveRegion("form-status");
    this.bulk = h("form", { class: "bulk", onsubmit: (event) => this.decide(event) }, [
      h("div", { class: "buttons" }, [this.admitAll, this.refuseAll, this.clearMarks]),
      (this.commonField = field(gettext("Reason for the refusals that have none of their own"), this.commonReason, gettext("The consumers refused read it in their notice and on their page.")).field),
      h("div", { class: "buttons" }, [this.send]),
      this.status_,
    ]);
    this.element = h("section", { class: "card registrations", id: "registrations", "aria-labelledby": headingId }, [
      h("h2", { id: headingId }, gettext("Registrations")),
      phaseControl(mediation),
      field(gettext("Show the registrations"), this.filter).field,
      this.list,
      this.empty,
      this.more,
      this.bulk,
    ]);
    this.load("pending");
  }

  async load(status) {
    this.status = status;
    this.filter.value = status;
    this.items.clear();
    this.list.replaceChildren();
    this.next = null;
    await this.loadMore();
  }

  async loadMore() {
    this.more.disabled = true;
    let page;
    try {
      page = await api.registrations(this.mediation.id, { status: this.status, after: this.next, limit: PAGE });
    } catch (error) {
      say(this.status_, errorText(error), "error");
      this.more.disabled = false;
      return;
    }
    for (const registration of page.registrations) this.addItem(registration);
    this.next = page.next;
    this.more.hidden = !page.next;
    this.more.disabled = false;
    this.empty.hidden = this.items.size > 0;
    this.empty.textContent = this.status === "pending" ? gettext("No registration is waiting.") : gettext("None.");
    this.bulk.hidden = this.status === "admitted" || this.items.size === 0;
    this.refuseAll.hidden = this.status !== "pending";
    this.commonField.hidden = this.status !== "pending";
    this.updateSend();
  }

  addItem(registration) {
    const id = registration.member_id;
    const group = uid("decision");
    const choices = this.status === "pending" ? ["admit", "refuse"] : this.status === "refused" ? ["admit"] : [];
    const radios = choices.map((choice) => {
      const radio = h("input", { type: "radio", name: group, value: choice, id: uid("c"), class: `mark-${choice}` });
      radio.addEventListener("change", () => this.updateItem(id));
      return h("span", { class: "choice" }, [radio, h("label", { for: radio.id }, choice === "admit" ? gettext("Admit") : gettext("Refuse"))]);
    });
    const reason = h("textarea", { rows: "2", maxlength: "2000", class: "reason" });
    const reasonField = field(gettext("Reason of the refusal"), reason).field;
    reasonField.hidden = true;
    const nameId = uid("name");
    const item = h("li", { class: "registration", dataset: { memberId: id, status: registration.status }, "aria-labelledby": nameId }, [
      h("h3", { id: nameId, class: "registrant" }, registration.display_name),
      registration.submitted_at ? h("p", { class: "hint" }, format(gettext("Registered on %(date)s."), { date: formatDateTime(registration.submitted_at) })) : null,
      this.fields.length > 0 || (registration.answers && Object.keys(registration.answers).length > 0) ? answersList(this.fields, registration.answers) : null,
      documentsList(registration.documents),
      registration.status === "refused" && registration.reason ? h("p", { class: "refusal-reason" }, [h("strong", {}, gettext("Reason given:")), " ", registration.reason]) : null,
      radios.length ? h("fieldset", { class: "decision" }, [h("legend", {}, format(gettext("Decision for %(name)s"), { name: registration.display_name })), h("div", { class: "choices" }, radios)]) : null,
      reasonField,
    ]);
    this.items.set(id, { item, radios: radios.map((r) => r.querySelector("input")), reason, reasonField, registration });
    this.list.append(item);
  }

  marked(id) {
    const entry = this.items.get(id);
    const radio = entry.radios.find((r) => r.checked);
    return radio ? radio.value : null;
  }

  updateItem(id) {
    const entry = this.items.get(id);
    const mark = this.marked(id);
    entry.reasonField.hidden = mark !== "refuse";
    entry.item.dataset.mark = mark || "";
    this.updateSend();
  }

  markAll(choice) {
    for (const [id, entry] of this.items) {
      for (const radio of entry.radios) radio.checked = radio.value === choice;
      this.updateItem(id);
    }
  }

  updateSend() {
    const count = [...this.items.keys()].filter((id) => this.marked(id)).length;
    this.send.disabled = count === 0;
    this.send.textContent = count
      ? format(ngettext("Send %(count)s decision", "Send %(count)s decisions", count), { count })
      : gettext("Send the decisions");
  }

  async decide(event) {
    event.preventDefault();
    const common = this.commonReason.value.trim();
    const decisions = [];
    for (const [id, entry] of this.items) {
      const mark = this.marked(id);
      if (!mark) continue;
      const reason = mark === "refuse" ? entry.reason.value.trim() || common : entry.reason.value.trim();
      if (mark === "refuse" && !reason) {
        say(this.status_, format(gettext("A refusal says why: give a reason for %(name)s, or a common reason."), { name: entry.registration.display_name }), "error");
        entry.reason.focus();
        return;
      }
      decisions.push(reason ? { member_id: id, decision: mark, reason } : { member_id: id, decision: mark });
    }
    if (decisions.length === 0) return;
    this.send.disabled = true;
    try {
      const done = await api.decide(this.mediation.id, decisions);
      const admitted = done.decisions.filter((d) => d.status === "admitted").length;
      const refused = done.decisions.length - admitted;
      this.commonReason.value = "";
      await this.load(this.status);
      say(
        this.status_,
        format(gettext("Recorded: %(admitted)s admitted, %(refused)s refused."), { admitted, refused }),
        "ok",
      );
    } catch (error) {
      const who = error.memberId && this.items.get(String(error.memberId));
      const text = who || error.status === 409 ? error.message : errorText(error);
      say(this.status_, who ? `${who.registration.display_name}: ${text}` : text, "error");
      this.updateSend();
    }
  }
}
