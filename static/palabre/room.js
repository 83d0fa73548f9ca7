// The mediation room: one tab per room (the plenary, then caucus rooms), each with its
// own live connection; the chat; the role's controls.
import { api } from "./api.js";
import { BallotsPanel } from "./ballots.js";
import { h, clear, field, liveRegion, say, uid } from "./dom.js";
import { format, formatDateTime, formatMessageTime, formatPercent, formatRemaining, gettext, ngettext, phaseLabel, roleLabel } from "./i18n.js";
import { errorText } from "./messages.js";
import { ModerationPanel } from "./moderation.js";
import { RoomConnection, State } from "./socket.js";

const NEAR_BOTTOM_PX = 80;

export function stateLabel(state, detail = {}) {
  switch (state) {
    case State.CONNECTING:
      return gettext("Connecting…");
    case State.SYNCING:
      return gettext("Catching up…");
    case State.LIVE:
      return gettext("Connected");
    case State.RECONNECTING:
      if (detail.retryAt) {
        const seconds = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        return format(gettext("Connection lost: reconnecting in %(seconds)s s…"), { seconds });
      }
      return gettext("Connection lost: reconnecting…");
    case State.OFFLINE:
      return gettext("Offline: waiting for the network…");
    case State.REFUSED:
      return gettext("You may not enter this room.");
    case State.LOGGED_OUT:
      return gettext("You are signed out.");
    default:
      return "";
  }
}

export class RoomPage {
  constructor(main, me, initialRoomId) {
    this.main = main;
    this.me = me;
    this.views = new Map();
    this.tabs = new Map();
    this.activeId = null;
    this.mediationId = null;
    this.closesAt = null;
    this.closed = false;

    this.title = h("h1", { class: "room-title" }, gettext("Mediation room"));
    this.subtitle = h("p", { class: "room-subtitle" });
    this.countdown = h("p", { class: "countdown", role: "timer", "aria-live": "off" });
    this.closedBanner = h("p", { class: "closed-banner", role: "alert", hidden: true });
    this.announcer = liveRegion("announcer visually-hidden");
    this.tablist = h("div", { class: "tabs", role: "tablist", "aria-label": gettext("Rooms of this mediation") });
    this.tablist.addEventListener("keydown", (event) => this.onTabKey(event));
    this.panels = h("div", { class: "panels" });
    clear(main).append(
      h("section", { class: "room-page" }, [
        h("div", { class: "room-head" }, [h("div", {}, [this.title, this.subtitle]), this.countdown]),
        this.closedBanner,
        this.tablist,
        this.panels,
        this.announcer,
      ]),
    );
    this.addRoom({ id: String(initialRoomId), kind: null, title: gettext("Room") }, { select: true });
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  /** First welcome of any room: the mediation is known, so are the other rooms. */
  async welcomed(view, welcome) {
    this.role = welcome.me.role;
    this.setClosesAt(welcome.room.closes_at);
    this.setPhase(welcome.room.phase);
    if (["closed", "shredded"].includes(welcome.room.phase)) this.setClosed(null);
    if (this.mediationId) return;
    this.mediationId = welcome.room.mediation_id;
    try {
      const mediation = await api.mediation(this.mediationId);
      this.mediation = mediation;
      this.title.textContent = mediation.title;
      this.subtitle.textContent = format(gettext("With %(company)s · acceptance threshold %(threshold)s"), {
        company: mediation.company,
        threshold: formatPercent(mediation.threshold),
      });
      document.title = `${mediation.title} · Palabre`;
    } catch {
      // A closed mediation is no longer listed: the rooms still read.
      this.title.textContent = gettext("Mediation room");
    }
    try {
      const rooms = await api.rooms(this.mediationId);
      for (const room of rooms) this.addRoom(room, { select: false });
    } catch {
      // The current room works without the others.
    }
  }

  addRoom(room, { select = false, announce = false } = {}) {
    const id = String(room.id);
    let view = this.views.get(id);
    if (!view) {
      view = new RoomView(this, id);
      this.views.set(id, view);
      const tab = h("button", {
        type: "button",
        role: "tab",
        id: `tab-${id}`,
        class: "tab",
        "aria-controls": `panel-${id}`,
        "aria-selected": "false",
        tabindex: "-1",
        dataset: { roomId: id },
        onclick: () => this.select(id, true),
      });
      tab.append(h("span", { class: "tab-dot", "aria-hidden": "true" }), h("span", { class: "tab-title" }), h("span", { class: "tab-unread", hidden: true }));
      this.tabs.set(id, tab);
      this.tablist.append(tab);
      this.panels.append(view.panel);
      // A mediator may have many caucus rooms: beyond a few, a tab connects when opened.
      if (select || this.views.size <= 6) view.start();
    }
    if (room.kind) view.setRoomInfo(room);
    this.sortTabs();
    if (select) this.select(id, false);
    if (announce) {
      this.tabs.get(id).classList.add("is-new");
      say(this.announcer, format(gettext("New private room: %(title)s"), { title: this.tabTitle(room) }));
    }
    return view;
  }

  tabTitle(room) {
    return room.kind === "plenary" ? gettext("Plenary") : room.title;
  }

  sortTabs() {
    // The plenary first, then caucus rooms in the order they were made.
    const ordered = [...this.tabs.entries()].sort(([a], [b]) => {
      const ka = this.views.get(a).kind === "plenary" ? 0 : 1;
      const kb = this.views.get(b).kind === "plenary" ? 0 : 1;
      return ka - kb || Number(a) - Number(b);
    });
    for (const [, tab] of ordered) this.tablist.append(tab);
    this.tablist.hidden = this.tabs.size < 2;
  }

  select(id, focus) {
    id = String(id);
    const view = this.views.get(id);
    if (!view) return;
    view.start();
    this.activeId = id;
    for (const [tabId, tab] of this.tabs) {
      const active = tabId === id;
      tab.setAttribute("aria-selected", String(active));
      tab.tabIndex = active ? 0 : -1;
      this.views.get(tabId).panel.hidden = !active;
    }
    this.tabs.get(id).classList.remove("is-new");
    view.markRead();
    if (focus) this.tabs.get(id).focus();
    const path = `/rooms/${id}/`;
    if (location.pathname !== path) history.replaceState(null, "", path);
  }

  onTabKey(event) {
    const tabs = [...this.tablist.querySelectorAll('[role="tab"]')];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
    else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (!next) return;
    event.preventDefault();
    this.select(next.dataset.roomId, true);
  }

  updateTab(view) {
    const tab = this.tabs.get(view.roomId);
    if (!tab) return;
    tab.querySelector(".tab-title").textContent = view.title;
    tab.dataset.state = view.connState;
    const unread = tab.querySelector(".tab-unread");
    unread.hidden = view.unread === 0;
    unread.textContent = view.unread ? format(ngettext("%(count)s new", "%(count)s new", view.unread), { count: view.unread }) : "";
  }

  setPhase(phase) {
    this.phase = phase;
    if (this.mediation) this.mediation.phase = phase;
  }

  setClosesAt(iso) {
    this.closesAt = iso ? new Date(iso) : null;
    this.tick();
  }

  setClosed(reason) {
    // The welcome of a closed room says "closed"; its room.closed event, synced after,
    // says why.
    if (!this.closed || (reason && reason !== this.closedReason)) {
      this.closed = true;
      this.closedReason = reason || this.closedReason;
      this.closedBanner.hidden = false;
      this.closedBanner.textContent = closedText(this.closedReason);
      say(this.announcer, this.closedBanner.textContent);
    }
    for (const view of this.views.values()) view.setClosed();
    this.tick();
  }

  tick() {
    if (this.closed) {
      this.countdown.textContent = gettext("Mediation closed");
      this.countdown.dataset.urgent = "";
    } else if (this.closesAt) {
      const left = this.closesAt - Date.now();
      this.countdown.replaceChildren(
        left > 0 ? gettext("Closes in") + " " : gettext("Closing…"),
        left > 0 ? h("time", { datetime: this.closesAt.toISOString(), title: formatDateTime(this.closesAt) }, formatRemaining(left)) : "",
      );
      this.countdown.dataset.urgent = left < 3600_000 ? "true" : "";
    }
    for (const view of this.views.values()) view.tick();
  }
}

function phaseNote(phase) {
  switch (phase) {
    case "registration":
      return gettext("Registration is open.");
    case "dialogue":
      return gettext("Registration is over: the dialogue has begun.");
    default:
      return format(gettext("The mediation moves on: %(phase)s."), { phase: phaseLabel(phase) });
  }
}

function closedText(reason) {
  switch (reason) {
    case "deadline":
      return gettext("This mediation is closed: its deadline has passed. The room stays readable.");
    case "agreement":
      return gettext("This mediation is closed with an agreement. The room stays readable.");
    default:
      return gettext("This mediation is closed. The room stays readable.");
  }
}

export class RoomView {
  constructor(page, roomId) {
    this.page = page;
    this.roomId = roomId;
    this.kind = null;
    this.title = gettext("Room");
    this.me = null;
    this.closed = false;
    this.moderated = false;
    this.mutedUntil = undefined; // undefined: not muted; null: until unmuted
    this.unread = 0;
    this.caughtUp = false;
    this.started = false;
    this.connState = State.CONNECTING;
    this.names = new Map();
    this.messages = new Map();

    const headingId = uid("room");
    this.heading = h("h2", { class: "visually-hidden", id: headingId });
    this.connLabel = h("span", { class: "conn-label" });
    this.conn_ = h("p", { class: "conn", role: "status", "aria-live": "polite", dataset: { state: State.CONNECTING } }, [
      h("span", { class: "conn-dot", "aria-hidden": "true" }),
      this.connLabel,
    ]);
    this.counts = h("p", { class: "counts" });
    this.moderatedFlag = h("p", { class: "flag", hidden: true }, gettext("Moderated: only the mediator and the company post."));
    this.log = h("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-label": gettext("Messages"), tabindex: "0" });
    this.empty = h("p", { class: "empty" }, gettext("No message yet."));
    this.composer = this.buildComposer();
    this.side = h("div", { class: "side" });
    this.panel = h("section", { class: "room", role: "tabpanel", id: `panel-${roomId}`, "aria-labelledby": `tab-${roomId}`, hidden: true }, [
      this.heading,
      h("div", { class: "room-status" }, [this.conn_, this.counts, this.moderatedFlag]),
      h("div", { class: "room-body" }, [
        h("section", { class: "chat", "aria-labelledby": headingId }, [this.log, this.empty, this.composer]),
        this.side,
      ]),
    ]);
    this.conn = new RoomConnection(roomId, {
      onWelcome: (frame) => this.onWelcome(frame),
      onEvent: (frame) => this.onEvent(frame),
      onFrame: (frame) => this.onFrame(frame),
      onState: (state, detail) => this.onState(state, detail),
    });
    this.onState(State.CONNECTING, {});
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.conn.start();
  }

  setRoomInfo(room) {
    this.kind = room.kind;
    this.title = this.page.tabTitle(room);
    this.heading.textContent = this.title;
    this.page.updateTab(this);
  }

  buildComposer() {
    this.input = h("textarea", { rows: "2", maxlength: "4000", required: true, autocomplete: "off" });
    const { field: bodyField } = field(gettext("Your message"), this.input, gettext("Enter sends; Shift+Enter starts a new line."));
    this.sendButton = h("button", { type: "submit", class: "primary" }, gettext("Send"));
    this.composerNote = h("p", { class: "composer-note", hidden: true });
    this.composerStatus = liveRegion("composer-status");
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    const form = h("form", { class: "composer", onsubmit: (event) => this.send(event) }, [
      this.composerNote,
      bodyField,
      h("div", { class: "composer-actions" }, [this.sendButton]),
      this.composerStatus,
    ]);
    return form;
  }

  async send(event) {
    event.preventDefault();
    const body = this.input.value;
    if (!body.trim()) return;
    this.sendButton.disabled = true;
    say(this.composerStatus, "");
    try {
      await this.conn.request({ type: "chat.send", body });
      if (this.input.value === body) this.input.value = "";
    } catch (error) {
      say(this.composerStatus, errorText(error), "error");
    } finally {
      this.sendButton.disabled = false;
      this.updateComposer();
    }
  }

  updateComposer() {
    let reason = null;
    if (this.closed) reason = gettext("The mediation is closed: no more messages.");
    else if (this.mutedUntil !== undefined)
      reason = this.mutedUntil
        ? format(gettext("The mediator muted you until %(until)s."), { until: formatDateTime(this.mutedUntil) })
        : gettext("The mediator muted you.");
    else if (this.moderated && this.me && this.me.role === "consumer")
      reason = gettext("The room is moderated: only the mediator and the company post for now.");
    this.input.disabled = Boolean(reason);
    this.sendButton.disabled = Boolean(reason);
    this.composer.classList.toggle("is-closed", this.closed);
    this.composerNote.hidden = !reason;
    this.composerNote.textContent = reason || "";
  }

  // --- connection -------------------------------------------------------------------

  onState(state, detail) {
    this.connState = state;
    this.connDetail = detail;
    this.conn_.dataset.state = state;
    this.connLabel.textContent = stateLabel(state, detail);
    // Screen readers announce the log's additions: not the whole history at entry.
    this.log.setAttribute("aria-busy", String(state === State.SYNCING && !this.caughtUp));
    if (state === State.LIVE && !this.caughtUp) {
      this.caughtUp = true;
      this.scrollToEnd();
      this.ballots?.caughtUp();
    }
    if (state === State.LOGGED_OUT) this.page.main.dispatchEvent(new CustomEvent("palabre:signed-out", { bubbles: true }));
    this.page.updateTab(this);
  }

  tick() {
    if (this.connState === State.RECONNECTING) this.connLabel.textContent = stateLabel(this.connState, this.connDetail);
    if (this.mutedUntil && new Date(this.mutedUntil) <= new Date()) {
      this.mutedUntil = undefined;
      this.updateComposer();
    }
    this.ballots?.tick();
  }

  onWelcome(frame) {
    const first = !this.me;
    this.me = frame.me;
    this.setRoomInfo({ kind: frame.room.kind, title: frame.room.title });
    this.setModerated(frame.room.moderated);
    this.setCounts(frame.members_count, null);
    // The page learns the mediation (synchronously) before the side panels need it.
    this.page.welcomed(this, frame);
    if (first) this.buildSide();
    this.updateComposer();
  }

  buildSide() {
    const role = this.me.role;
    const parts = [];
    if (this.kind === "plenary") {
      this.ballots = new BallotsPanel(this);
      parts.push(this.ballots.element);
      if (role === "mediator") {
        this.moderation = new ModerationPanel(this);
        parts.push(this.moderation.element);
      }
    }
    this.side.replaceChildren(...parts);
    this.side.hidden = parts.length === 0;
    this.panel.classList.toggle("has-side", parts.length > 0);
  }

  onFrame(frame) {
    switch (frame.type) {
      case "room.counts":
        this.setCounts(frame.members_count, frame.online_count);
        break;
      case "ballot.progress":
        this.ballots?.onProgress(frame);
        break;
      case "caucus.opened":
        this.page.addRoom(frame.room, { select: Boolean(frame.ref), announce: !frame.ref });
        break;
      case "error":
        say(this.composerStatus, errorText(frame), "error");
        break;
      default:
        break;
    }
  }

  setCounts(members, online) {
    if (members === null || members === undefined) return;
    this.members = members;
    if (online !== null && online !== undefined) this.online = online;
    const parts = [format(ngettext("%(count)s member", "%(count)s members", members), { count: members })];
    if (this.online !== undefined) parts.push(format(ngettext("%(count)s online", "%(count)s online", this.online), { count: this.online }));
    this.counts.textContent = parts.join(" · ");
  }

  setModerated(moderated) {
    this.moderated = Boolean(moderated);
    this.moderatedFlag.hidden = !this.moderated;
    this.moderation?.setModerated(this.moderated);
    this.updateComposer();
  }

  setClosed() {
    if (this.closed) return;
    this.closed = true;
    this.panel.classList.add("is-closed");
    this.updateComposer();
    this.ballots?.setClosed();
    this.moderation?.setClosed();
    for (const button of this.log.querySelectorAll("button.redact")) button.remove();
  }

  // --- the room log -------------------------------------------------------------------

  onEvent(frame) {
    switch (frame.type) {
      case "chat.message":
        this.addMessage(frame);
        break;
      case "message.redacted":
        this.redacted(frame.target_seq);
        break;
      case "mediation.phase":
        this.page.setPhase(frame.phase);
        // Closing is told by the room.closed that follows, with its reason.
        if (frame.phase !== "closed") this.addNote(frame, phaseNote(frame.phase));
        break;
      case "room.closed":
        this.page.setClosed(frame.reason);
        this.addNote(frame, gettext("The mediation is closed."));
        break;
      case "room.moderated":
        this.setModerated(frame.moderated);
        this.addNote(frame, frame.moderated ? gettext("The room is now moderated: only the mediator and the company post.") : gettext("The room is open again: everyone may post."));
        break;
      case "member.muted":
        this.memberMuted(frame, true);
        break;
      case "member.unmuted":
        this.memberMuted(frame, false);
        break;
      case "offer.submitted":
        this.ballots?.onOffer(frame);
        this.addNote(frame, format(gettext("New offer from the company: %(title)s"), { title: frame.offer.title ?? gettext("(erased)") }));
        break;
      case "ballot.opened":
        this.ballots?.onBallotOpened(frame);
        this.addNote(frame, gettext("A ballot is open on the offer."));
        break;
      case "ballot.sealed":
        this.ballots?.onSealed(frame);
        this.addNote(frame, frame.outcome === "accepted" ? gettext("The ballot is sealed: the offer is accepted.") : gettext("The ballot is sealed: the offer is rejected."));
        break;
      case "agreement.recorded":
        this.addNote(frame, gettext("Agreement recorded: the accepted offer ends the mediation."));
        break;
      default:
        break;
    }
  }

  isNearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  appendToLog(item) {
    this.empty.hidden = true;
    if (!this.caughtUp) {
      // History at entry: one scroll at the end, not one layout per message.
      this.log.append(item);
      return;
    }
    const stick = this.isNearBottom();
    this.log.append(item);
    if (stick) this.scrollToEnd();
  }

  addMessage(frame) {
    const author = frame.author || {};
    this.names.set(String(author.member_id), author.display_name);
    const mine = this.me && String(author.member_id) === String(this.me.member_id);
    const body = h("p", { class: "body" });
    const item = h("li", { class: `message${mine ? " mine" : ""}`, id: `m-${this.roomId}-${frame.seq}`, dataset: { seq: String(frame.seq), role: author.role || "" } }, [
      h("p", { class: "meta" }, [
        h("span", { class: "author" }, author.display_name || gettext("Someone")),
        " ",
        h("span", { class: `badge role-${author.role}` }, roleLabel(author.role)),
        " ",
        h("time", { datetime: frame.at, title: formatDateTime(frame.at) }, formatMessageTime(frame.at)),
      ]),
      body,
    ]);
    this.messages.set(frame.seq, item);
    if (frame.redacted || frame.shredded || frame.unreadable || frame.body === null) this.showRemoved(item, frame);
    else {
      body.textContent = frame.body;
      if (this.me && this.me.role === "mediator" && !this.closed) item.append(this.redactButton(frame.seq));
    }
    this.appendToLog(item);
    if (this.caughtUp && (this.page.activeId !== this.roomId || document.hidden) && !mine) {
      this.unread += 1;
      this.page.updateTab(this);
    }
  }

  redactButton(seq) {
    const button = h("button", { type: "button", class: "redact small", "aria-label": gettext("Remove this message") }, gettext("Remove"));
    let armed = false;
    button.addEventListener("click", async () => {
      if (!armed) {
        armed = true;
        button.textContent = gettext("Confirm removal");
        button.classList.add("danger");
        setTimeout(() => {
          armed = false;
          button.textContent = gettext("Remove");
          button.classList.remove("danger");
        }, 5000);
        return;
      }
      button.disabled = true;
      try {
        await this.conn.request({ type: "message.redact", seq });
      } catch (error) {
        button.disabled = false;
        say(this.composerStatus, errorText(error), "error");
      }
    });
    return button;
  }

  redacted(seq) {
    const item = this.messages.get(seq);
    if (item) this.showRemoved(item, { redacted: true });
  }

  showRemoved(item, frame) {
    let text = gettext("Message removed by the mediator.");
    if (frame.shredded) text = gettext("Message erased (retention period over).");
    else if (frame.unreadable) text = gettext("This message cannot be read (its stored copy is damaged).");
    item.classList.add("removed");
    item.querySelector(".body").textContent = text;
    item.querySelector("button.redact")?.remove();
  }

  addNote(frame, text) {
    this.appendToLog(
      h("li", { class: "note", dataset: { seq: String(frame.seq) } }, [
        h("time", { datetime: frame.at, title: formatDateTime(frame.at) }, formatMessageTime(frame.at)),
        " ",
        text,
      ]),
    );
  }

  memberMuted(frame, muted) {
    const isMe = this.me && String(frame.member_id) === String(this.me.member_id);
    if (isMe) {
      this.mutedUntil = muted ? frame.until : undefined;
      if (muted && frame.until && new Date(frame.until) <= new Date()) this.mutedUntil = undefined;
      this.updateComposer();
    }
    this.moderation?.memberMuted(frame, muted);
    const name = this.names.get(String(frame.member_id)) || this.moderation?.nameOf(frame.member_id);
    let text;
    if (isMe) text = muted ? gettext("The mediator muted you.") : gettext("The mediator gave you back the floor.");
    else if (name) text = format(muted ? gettext("%(name)s is muted.") : gettext("%(name)s may post again."), { name });
    else text = muted ? gettext("A member is muted.") : gettext("A member may post again.");
    this.addNote(frame, text);
  }

  markRead() {
    this.unread = 0;
    this.page.updateTab(this);
  }
}
