// The mediator's tools in the plenary room: moderated mode, the member list with mute,
// unmute and caucus.
import { api } from "./api.js";
import { h, field, liveRegion, say, uid } from "./dom.js";
import { format, formatDateTime, gettext, roleLabel } from "./i18n.js";
import { errorText } from "./messages.js";

const MUTE_CHOICES = [
  ["", () => gettext("until unmuted")],
  ["900", () => gettext("15 minutes")],
  ["3600", () => gettext("1 hour")],
  ["86400", () => gettext("24 hours")],
];

export class ModerationPanel {
  constructor(view) {
    this.view = view;
    this.rows = new Map();
    this.names = new Map();
    this.next = null;

    this.moderatedBox = h("input", { type: "checkbox", id: uid("moderated"), class: "moderated-toggle" });
    this.moderatedBox.addEventListener("change", () => this.toggleModerated());
    this.status = liveRegion("panel-status");
    this.muteFor = h("select", { class: "mute-duration" }, MUTE_CHOICES.map(([value, label]) => h("option", { value }, label())));
    this.search = h("input", { type: "search", class: "member-search", autocomplete: "off" });
    this.list = h("ul", { class: "members", "aria-label": gettext("Members") });
    this.more = h("button", { type: "button", class: "small", hidden: true, onclick: () => this.load(false) }, gettext("More members"));

    const headingId = uid("moderation");
    this.element = h("section", { class: "panel moderation", "aria-labelledby": headingId }, [
      h("h3", { id: headingId }, gettext("Moderation")),
      h("div", { class: "checkbox-row" }, [
        this.moderatedBox,
        h("label", { for: this.moderatedBox.id }, gettext("Moderated room: only the mediator and the company may post")),
      ]),
      field(gettext("Mute for"), this.muteFor).field,
      h("form", { class: "inline-form", role: "search", onsubmit: (event) => { event.preventDefault(); this.load(true); } }, [
        field(gettext("Find a member"), this.search).field,
        h("button", { type: "submit", class: "small" }, gettext("Search")),
      ]),
      this.list,
      this.more,
      this.status,
    ]);
    this.load(true);
  }

  async load(reset) {
    try {
      const page = await api.members(this.view.page.mediationId, {
        q: this.search.value.trim(),
        after: reset ? null : this.next,
      });
      if (reset) {
        this.list.replaceChildren();
        this.rows.clear();
      }
      for (const member of page.members) this.addRow(member);
      this.next = page.next;
      this.more.hidden = !page.next;
      if (reset && page.members.length === 0) this.list.append(h("li", { class: "empty" }, gettext("No member found.")));
    } catch (error) {
      say(this.status, errorText(error), "error");
    }
  }

  nameOf(memberId) {
    return this.names.get(String(memberId));
  }

  addRow(member) {
    const id = String(member.member_id);
    this.names.set(id, member.display_name);
    const mutedFlag = h("span", { class: "badge muted-flag", hidden: !member.muted }, gettext("muted"));
    const actions = h("span", { class: "member-actions" });
    const row = h("li", { class: "member", dataset: { memberId: id } }, [
      h("span", { class: "member-name" }, member.display_name),
      " ",
      h("span", { class: `badge role-${member.role}` }, roleLabel(member.role)),
      member.status === "pending" ? h("span", { class: "badge" }, gettext("pending")) : null,
      " ",
      mutedFlag,
      actions,
    ]);
    const entry = { row, member, mutedFlag, actions };
    this.rows.set(id, entry);
    this.renderActions(entry);
    this.list.append(row);
  }

  renderActions(entry) {
    const { member, actions } = entry;
    actions.replaceChildren();
    if (member.role === "mediator" || this.view.closed) return;
    const name = member.display_name;
    actions.append(
      member.muted
        ? h("button", { type: "button", class: "small unmute", "aria-label": format(gettext("Unmute %(name)s"), { name }), onclick: () => this.unmute(member) }, gettext("Unmute"))
        : h("button", { type: "button", class: "small mute", "aria-label": format(gettext("Mute %(name)s"), { name }), onclick: () => this.mute(member) }, gettext("Mute")),
    );
    if (member.status === "admitted")
      actions.append(
        h("button", { type: "button", class: "small caucus", "aria-label": format(gettext("Open a caucus with %(name)s"), { name }), onclick: () => this.caucus(member) }, gettext("Caucus")),
      );
  }

  async mute(member) {
    const seconds = Number(this.muteFor.value);
    const until = seconds ? new Date(Date.now() + seconds * 1000).toISOString() : null;
    try {
      await this.view.conn.request({ type: "member.mute", member_id: member.member_id, until });
      say(this.status, until ? format(gettext("%(name)s is muted until %(until)s."), { name: member.display_name, until: formatDateTime(until) }) : format(gettext("%(name)s is muted."), { name: member.display_name }));
    } catch (error) {
      say(this.status, errorText(error), "error");
    }
  }

  async unmute(member) {
    try {
      await this.view.conn.request({ type: "member.unmute", member_id: member.member_id });
      say(this.status, format(gettext("%(name)s may post again."), { name: member.display_name }));
    } catch (error) {
      say(this.status, errorText(error), "error");
    }
  }

  async caucus(member) {
    try {
      await this.view.conn.request({ type: "caucus.open", member_id: member.member_id });
    } catch (error) {
      say(this.status, errorText(error), "error");
    }
  }

  memberMuted(frame, muted) {
    const entry = this.rows.get(String(frame.member_id));
    if (!entry) return;
    entry.member.muted = muted;
    entry.member.muted_until = muted ? frame.until : null;
    entry.mutedFlag.hidden = !muted;
    entry.mutedFlag.title = muted && frame.until ? formatDateTime(frame.until) : "";
    this.renderActions(entry);
  }

  async toggleModerated() {
    const wanted = this.moderatedBox.checked;
    this.moderatedBox.disabled = true;
    try {
      await this.view.conn.request({ type: "room.moderate", moderated: wanted });
    } catch (error) {
      this.moderatedBox.checked = this.view.moderated;
      say(this.status, errorText(error), "error");
    } finally {
      this.moderatedBox.disabled = this.view.closed;
    }
  }

  setModerated(moderated) {
    this.moderatedBox.checked = moderated;
  }

  setClosed() {
    this.moderatedBox.disabled = true;
    for (const entry of this.rows.values()) this.renderActions(entry);
  }
}
