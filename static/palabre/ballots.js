// Offers, ballots, votes and seals in the plenary room: the company's offer form, the
// mediator's open/close, the consumer's vote (confirmed, receipt kept in this browser),
// live turnout against the threshold, the sealed result and its verification.
import { api } from "./api.js";
import { h, field, liveRegion, say, uid } from "./dom.js";
import { format, formatDateTime, formatEuros, formatPercent, formatRemaining, gettext, ngettext } from "./i18n.js";
import { errorText } from "./messages.js";
import { acceptsNeeded, verifyBoard, verifyOfferHash, verifyOutcome, verifyReceipt, verifySignature } from "./verify.js";

// --- receipts: the voter's secret, in this browser only -----------------------------------

const receiptKey = (memberId, ballotId) => `palabre.receipt.${memberId}.${ballotId}`;

export function loadReceipt(memberId, ballotId) {
  try {
    const stored = JSON.parse(localStorage.getItem(receiptKey(memberId, ballotId)));
    return stored && stored.receipt && stored.choice ? stored : null;
  } catch {
    return null;
  }
}

function storeReceipt(memberId, stored) {
  try {
    localStorage.setItem(receiptKey(memberId, stored.ballotId), JSON.stringify(stored));
  } catch {
    // Private browsing may refuse storage: the receipt is still shown to be copied.
  }
}

/** "1 234,56" or "1234.5" euros → cents; null when empty; NaN when not an amount. */
export function parseEuros(text) {
  const cleaned = text.replace(/[\s\u00a0\u202f€]/g, "").replace(",", ".");
  if (cleaned === "") return null;
  const match = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(cleaned);
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

const choiceLabel = (choice) => (choice === "accept" ? gettext("Accept") : gettext("Refuse"));

function failureText(reason) {
  switch (reason) {
    case "unknown_key":
      return gettext("the key that signed it is not among the keys Palabre publishes");
    case "unknown_algorithm":
      return gettext("the key is not an Ed25519 key");
    case "unsupported":
      return gettext("this browser cannot check Ed25519 signatures");
    case "malformed":
      return gettext("the data is malformed");
    case "bad_signature":
      return gettext("the signature does not match the document");
    case "too_many_votes":
      return gettext("there are more votes than voters");
    case "outcome_mismatch":
      return gettext("the outcome does not follow from the counts and the threshold");
    case "count_mismatch":
      return gettext("recounting the board gives other numbers than the seal");
    case "root_mismatch":
      return gettext("the Merkle root differs from the sealed one");
    case "other_ballot":
      return gettext("the document is about another ballot");
    case "leaf_mismatch":
      return gettext("the proof is not for your receipt and your choice");
    case "not_on_board":
      return gettext("your vote is not on the board");
    case "choice_mismatch":
      return gettext("your vote is on the board with another choice");
    case "offer_mismatch":
      return gettext("the offer shown here differs from the one that was sealed");
    case "frame_mismatch":
      return gettext("the published seal differs from the one announced in the room");
    default:
      return reason;
  }
}

/** A two-step button: the first press arms it, the second does it. */
function confirmButton(label, confirmLabel, action, className = "") {
  const button = h("button", { type: "button", class: className }, label);
  let armed = false;
  let timer = null;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add("danger");
      timer = setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove("danger");
      }, 6000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      armed = false;
      button.textContent = label;
      button.classList.remove("danger");
    }
  });
  return button;
}

export class BallotsPanel {
  constructor(view) {
    this.view = view;
    this.offers = new Map();
    this.ballots = new Map();
    this.latestOfferId = null;
    this.closed = false;
    this.role = view.me.role;
    this.memberId = view.me.member_id;
    this.list = h("div", { class: "offer-list" });
    this.empty = h("p", { class: "empty" }, gettext("No offer yet."));
    const headingId = uid("offers");
    this.element = h("section", { class: "panel offers", "aria-labelledby": headingId }, [h("h3", { id: headingId }, gettext("Offers and ballots")), this.empty, this.list]);
    if (this.role === "company") {
      this.offerForm = this.buildOfferForm();
      this.element.append(this.offerForm);
    }
  }

  // --- the company's offer --------------------------------------------------------------

  buildOfferForm() {
    const title = h("input", { type: "text", maxlength: "200", required: true, autocomplete: "off", name: "title" });
    const terms = h("textarea", { rows: "4", maxlength: "4000", required: true, name: "terms" });
    const amount = h("input", { type: "text", inputmode: "decimal", autocomplete: "off", name: "amount" });
    const status = liveRegion("panel-status");
    const button = h("button", { type: "submit", class: "primary" }, gettext("Submit the offer"));
    const headingId = uid("offer-form");
    const form = h("form", { class: "offer-form", "aria-labelledby": headingId }, [
      h("h4", { id: headingId }, gettext("Make an offer")),
      field(gettext("Title"), title).field,
      field(gettext("Terms"), terms).field,
      field(gettext("Amount per consumer, in euros (optional)"), amount, gettext("For example 150 or 149,90.")).field,
      button,
      status,
    ]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const cents = parseEuros(amount.value);
      if (Number.isNaN(cents)) {
        say(status, gettext("The amount is not a number of euros (at most two decimals)."), "error");
        amount.focus();
        return;
      }
      const frame = { type: "offer.submit", title: title.value.trim(), terms: terms.value.trim() };
      if (cents !== null) frame.amount_cents = cents;
      button.disabled = true;
      try {
        await this.view.conn.request(frame);
        form.reset();
        say(status, gettext("Offer submitted."), "ok");
      } catch (error) {
        say(status, errorText(error), "error");
      } finally {
        button.disabled = this.closed;
      }
    });
    return form;
  }

  // --- offers -------------------------------------------------------------------------

  onOffer(frame) {
    const offer = frame.offer;
    const id = String(offer.id);
    const previous = this.latestOfferId && this.offers.get(this.latestOfferId);
    if (previous) previous.card.classList.add("superseded");
    const headingId = uid("offer");
    const card = h("article", { class: "offer", id: `offer-${id}`, dataset: { offerId: id }, "aria-labelledby": headingId }, [
      h("h4", { id: headingId }, offer.title ?? gettext("(erased)")),
      h("p", { class: "superseded-flag" }, gettext("Superseded by a newer offer.")),
      h("p", { class: "amount" }, offer.amount_cents === null || offer.amount_cents === undefined ? gettext("No amount per consumer.") : format(gettext("Amount per consumer: %(amount)s"), { amount: formatEuros(offer.amount_cents) })),
      h("p", { class: "terms" }, offer.terms ?? gettext("(erased)")),
      h("p", { class: "meta" }, format(gettext("Submitted on %(date)s"), { date: formatDateTime(frame.at) })),
    ]);
    const entry = { offer, card, ballots: h("div", { class: "ballots" }) };
    if (this.role === "mediator") {
      entry.openForm = this.buildOpenForm(offer);
      card.append(entry.openForm);
    }
    card.append(entry.ballots);
    this.offers.set(id, entry);
    this.latestOfferId = id;
    this.list.prepend(card);
    this.empty.hidden = true;
    this.refreshForms();
  }

  buildOpenForm(offer) {
    const minutes = h("input", { type: "number", min: "1", max: "43200", step: "1", value: "60", required: true, class: "duration" });
    const status = liveRegion("panel-status");
    const button = h("button", { type: "submit", class: "primary" }, gettext("Open a ballot on this offer"));
    const form = h("form", { class: "open-ballot" }, [field(gettext("Voting time, in minutes"), minutes).field, button, status]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const duration = Math.round(Number(minutes.value) * 60);
      if (!(duration > 0)) return;
      button.disabled = true;
      try {
        await this.view.conn.request({ type: "ballot.open", offer_id: String(offer.id), duration_s: duration });
        say(status, "");
      } catch (error) {
        say(status, errorText(error), "error");
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  /** The mediator opens a ballot on the newest offer, one ballot at a time. */
  refreshForms() {
    const anyOpen = [...this.ballots.values()].some((card) => !card.sealed);
    for (const [id, entry] of this.offers) {
      if (entry.openForm) entry.openForm.hidden = this.closed || anyOpen || id !== this.latestOfferId;
    }
    if (this.offerForm) this.offerForm.hidden = this.closed;
  }

  // --- ballots ------------------------------------------------------------------------

  onBallotOpened(frame) {
    const ballot = frame.ballot;
    const id = String(ballot.id);
    if (this.ballots.has(id)) return;
    const offerEntry = this.offers.get(String(ballot.offer_id));
    const card = new BallotCard(this, ballot, offerEntry ? offerEntry.offer : null, frame.at);
    this.ballots.set(id, card);
    (offerEntry ? offerEntry.ballots : this.list).append(card.element);
    this.refreshForms();
  }

  onProgress(frame) {
    this.ballots.get(String(frame.ballot_id))?.progress(frame.voted, frame.eligible);
  }

  onSealed(frame) {
    const card = this.ballots.get(String(frame.ballot_id));
    if (!card) return;
    card.seal(frame);
    this.refreshForms();
    // A seal that arrives live is checked at once; in the history at entry, only the
    // latest one and those holding this person's receipt (a board may have 150,000
    // leaves: the others wait for their "Check" button).
    if (this.view.caughtUp) card.verify();
  }

  caughtUp() {
    const sealed = [...this.ballots.values()].filter((card) => card.sealed);
    sealed.forEach((card, index) => {
      if (index === sealed.length - 1 || loadReceipt(this.memberId, card.id)) card.verify();
    });
  }

  setClosed() {
    this.closed = true;
    for (const card of this.ballots.values()) card.render();
    this.refreshForms();
  }

  tick() {
    for (const card of this.ballots.values()) card.tick();
  }
}

class BallotCard {
  constructor(panel, ballot, offer, openedAt) {
    this.panel = panel;
    this.ballot = ballot;
    this.offer = offer;
    this.id = String(ballot.id);
    this.eligible = ballot.eligible;
    this.voted = null;
    this.sealed = null;
    this.confirming = null;
    this.closesAt = new Date(ballot.closes_at);
    this.needed = acceptsNeeded(ballot.threshold, ballot.eligible);

    const headingId = uid("ballot");
    this.countdown = h("p", { class: "countdown", role: "timer", "aria-live": "off" });
    this.fill = h("div", { class: "bar-fill" });
    this.mark = h("div", { class: "bar-mark", "aria-hidden": "true" });
    this.bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(ballot.eligible), "aria-label": gettext("Turnout") }, [this.fill, this.mark]);
    this.turnoutText = h("p", { class: "turnout-text" });
    this.voteArea = h("div", { class: "vote" });
    this.voteStatus = liveRegion("panel-status");
    this.mediatorArea = h("div", { class: "ballot-actions" });
    this.result = h("div", { class: "result", "aria-live": "polite" });
    this.element = h("section", { class: "ballot", id: `ballot-${this.id}`, dataset: { ballotId: this.id }, "aria-labelledby": headingId }, [
      h("h5", { id: headingId }, gettext("Ballot on this offer")),
      h("p", { class: "meta" }, format(gettext("Opened on %(date)s"), { date: formatDateTime(openedAt) })),
      this.countdown,
      h("div", { class: "turnout" }, [this.bar, this.turnoutText]),
      h(
        "p",
        { class: "rule" },
        format(
          ngettext(
            "The offer is accepted with at least %(needed)s accept out of %(eligible)s voters (threshold %(threshold)s). Not voting counts as not accepting.",
            "The offer is accepted with at least %(needed)s accepts out of %(eligible)s voters (threshold %(threshold)s). Not voting counts as not accepting.",
            this.needed,
          ),
          { needed: this.needed, eligible: ballot.eligible, threshold: formatPercent(ballot.threshold) },
        ),
      ),
      this.voteArea,
      this.voteStatus,
      this.mediatorArea,
      this.result,
    ]);
    if (ballot.eligible > 0) this.mark.style.left = `${(100 * this.needed) / ballot.eligible}%`;
    this.progress(null, ballot.eligible);
    this.render();
    this.tick();
  }

  get open() {
    return !this.sealed && !this.panel.closed;
  }

  progress(voted, eligible) {
    if (eligible !== undefined && eligible !== null) this.eligible = eligible;
    if (voted !== null && voted !== undefined) this.voted = Math.max(this.voted ?? 0, voted);
    const known = this.voted !== null;
    const share = known && this.eligible ? Math.min(1, this.voted / this.eligible) : 0;
    this.fill.style.width = `${share * 100}%`;
    const text = known
      ? format(ngettext("%(voted)s of %(eligible)s has voted", "%(voted)s of %(eligible)s have voted", this.voted), { voted: this.voted, eligible: this.eligible })
      : format(ngettext("%(eligible)s voter", "%(eligible)s voters", this.eligible), { eligible: this.eligible });
    if (known) this.bar.setAttribute("aria-valuenow", String(this.voted));
    this.bar.setAttribute("aria-valuetext", text);
    this.turnoutText.textContent = text;
  }

  tick() {
    if (this.sealed) {
      this.countdown.textContent = format(gettext("Sealed on %(date)s"), { date: formatDateTime(this.sealed.at) });
      return;
    }
    const left = this.closesAt - Date.now();
    if (left > 0) {
      this.countdown.replaceChildren(gettext("Voting closes in") + " ", h("time", { datetime: this.ballot.closes_at, title: formatDateTime(this.ballot.closes_at) }, formatRemaining(left)));
    } else {
      this.countdown.textContent = gettext("Voting time is over: the result is being sealed…");
    }
  }

  render() {
    this.renderVote();
    this.renderMediator();
  }

  renderMediator() {
    this.mediatorArea.replaceChildren();
    if (this.panel.role !== "mediator" || !this.open) return;
    this.mediatorArea.append(
      confirmButton(gettext("Close the ballot now"), gettext("Confirm: close the ballot now"), async () => {
        try {
          await this.panel.view.conn.request({ type: "ballot.close", ballot_id: this.id });
        } catch (error) {
          say(this.voteStatus, errorText(error), "error");
        }
      }, "close-ballot"),
    );
  }

  renderVote() {
    const area = this.voteArea;
    area.replaceChildren();
    if (this.panel.role !== "consumer") return;
    const stored = loadReceipt(this.panel.memberId, this.id);
    if (stored) {
      area.append(this.receiptBox(stored));
      return;
    }
    if (!this.open) {
      if (this.sealed) area.append(h("p", { class: "hint" }, gettext("You did not vote in this ballot (or not from this browser).")));
      return;
    }
    if (this.confirming) {
      const textId = uid("confirm");
      const confirm = h("button", { type: "button", class: "primary confirm-vote", "aria-describedby": textId, onclick: () => this.cast(this.confirming) }, this.confirming === "accept" ? gettext("Confirm: I accept the offer") : gettext("Confirm: I refuse the offer"));
      area.append(
        h("div", { class: "confirm", role: "group", "aria-labelledby": textId }, [
          h("p", { id: textId }, [
            h("strong", {}, this.confirming === "accept" ? gettext("You are about to accept this offer.") : gettext("You are about to refuse this offer.")),
            " ",
            gettext("A vote is final: it cannot be changed afterwards."),
          ]),
          h("div", { class: "buttons" }, [
            confirm,
            h("button", { type: "button", class: "cancel-vote", onclick: () => this.cancelVote() }, gettext("Go back")),
          ]),
        ]),
      );
      confirm.focus();
      return;
    }
    area.append(
      h("p", { class: "vote-question" }, gettext("Your vote on this offer:")),
      h("div", { class: "buttons" }, [
        h("button", { type: "button", class: "vote-accept", onclick: () => this.choose("accept") }, gettext("Accept")),
        h("button", { type: "button", class: "vote-refuse", onclick: () => this.choose("refuse") }, gettext("Refuse")),
      ]),
    );
  }

  cancelVote() {
    const choice = this.confirming;
    this.confirming = null;
    this.renderVote();
    this.voteArea.querySelector(`.vote-${choice}`)?.focus();
  }

  choose(choice) {
    this.confirming = choice;
    say(this.voteStatus, "");
    this.renderVote();
  }

  async cast(choice) {
    for (const button of this.voteArea.querySelectorAll("button")) button.disabled = true;
    try {
      const answer = await this.panel.view.conn.request({ type: "vote.cast", ballot_id: this.id, choice });
      const stored = { ballotId: this.id, choice, receipt: answer.receipt, at: new Date().toISOString() };
      storeReceipt(this.panel.memberId, stored);
      this.confirming = null;
      this.receiptShown = stored;
      say(this.voteStatus, gettext("Your vote is recorded."), "ok");
      this.renderVote();
      this.voteArea.querySelector(".receipt-value")?.focus();
    } catch (error) {
      this.confirming = null;
      say(this.voteStatus, errorText(error), "error");
      this.renderVote();
    }
  }

  receiptBox(stored) {
    const input = h("input", { type: "text", readonly: true, class: "receipt-value", value: stored.receipt, spellcheck: "false" });
    const copied = liveRegion("panel-status");
    const copy = h("button", { type: "button", class: "small copy-receipt" }, gettext("Copy"));
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(stored.receipt);
        say(copied, gettext("Receipt copied."), "ok");
      } catch {
        input.select();
        say(copied, gettext("Select the receipt and copy it (Ctrl+C)."));
      }
    });
    const { field: receiptField } = field(gettext("Your receipt"), input, gettext("Keep it: once the ballot is sealed, it lets you check that your vote was counted as you cast it. It is kept in this browser; it does not say who you are."));
    return h("div", { class: "receipt" }, [
      h("p", { class: "your-vote" }, format(gettext("You voted: %(choice)s."), { choice: choiceLabel(stored.choice) })),
      h("div", { class: "receipt-row" }, [receiptField, copy]),
      copied,
    ]);
  }

  // --- the seal -----------------------------------------------------------------------

  seal(frame) {
    if (this.sealed) return;
    this.sealed = frame;
    this.progress(frame.accept + frame.refuse, frame.eligible);
    this.element.classList.add("sealed");
    this.tick();
    this.render();
    const accepted = frame.outcome === "accepted";
    this.checks = h("ul", { class: "checks" });
    this.verdict = h("p", { class: "verdict", role: "status" }, gettext("Not checked yet."));
    this.rerun = h("button", { type: "button", class: "small verify-again", onclick: () => this.verify() }, gettext("Check the seal"));
    this.result.replaceChildren(
      h("p", { class: `outcome outcome-${frame.outcome}` }, accepted ? gettext("Offer accepted") : gettext("Offer rejected")),
      h(
        "p",
        { class: "counts" },
        format(gettext("%(accept)s accept · %(refuse)s refuse · %(eligible)s voters · %(needed)s accepts needed"), {
          accept: frame.accept,
          refuse: frame.refuse,
          eligible: frame.eligible,
          needed: acceptsNeeded(frame.threshold, frame.eligible),
        }),
      ),
      h("div", { class: "verification" }, [
        h("h6", {}, gettext("Verification in this browser")),
        this.verdict,
        (this.details = h("details", { class: "check-details" }, [h("summary", {}, gettext("What was checked")), this.checks])),
        this.rerun,
      ]),
    );
  }

  async verify() {
    if (this.verifying) return;
    this.verifying = true;
    this.checks.replaceChildren();
    this.verdict.dataset.kind = "";
    this.verdict.textContent = gettext("Checking the seal…");
    const results = [];
    const report = (label, result) => {
      results.push(result);
      this.checks.append(
        h("li", { class: result.ok ? "check ok" : "check failed", dataset: { check: label.key } }, [
          h("span", { class: "check-mark", "aria-hidden": "true" }, result.ok ? "✓" : "✗"),
          " ",
          label.text,
          " ",
          h("strong", {}, result.ok ? gettext("verified") : format(gettext("failed: %(reason)s"), { reason: failureText(result.reason) })),
        ]),
      );
    };
    try {
      await this.runChecks(report);
    } catch (error) {
      report({ key: "fetch", text: gettext("Fetching the seal:") }, { ok: false, reason: errorText(error) });
    }
    const ok = results.length > 0 && results.every((r) => r.ok);
    this.verdict.dataset.kind = ok ? "ok" : "error";
    if (!ok) this.details.open = true;
    this.verdict.textContent = ok ? gettext("Verified: the seal is authentic and the count is right.") : gettext("Verification failed: see what did not match below.");
    this.rerun.textContent = gettext("Check again");
    this.verifying = false;
  }

  async runChecks(report) {
    const frame = this.sealed;
    const [seal, keys] = await Promise.all([api.seal(this.id), api.keys()]);
    const doc = seal.document || {};
    report({ key: "signature", text: format(gettext("Signature of the seal (key %(key)s):"), { key: seal.key_id }) }, await verifySignature(seal, keys.keys));
    const same =
      String(doc.ballot_id) === this.id &&
      ["accept", "refuse", "eligible", "outcome", "merkle_root", "threshold"].every((k) => doc[k] === frame[k]) &&
      seal.signature === frame.signature &&
      seal.key_id === frame.key_id;
    report({ key: "announced", text: gettext("Same seal as announced in the room:") }, same ? { ok: true } : { ok: false, reason: "frame_mismatch" });
    report({ key: "outcome", text: gettext("Outcome follows from the counts and the threshold:") }, verifyOutcome(doc));
    const board = await api.board(this.id);
    report(
      { key: "board", text: format(ngettext("Recount of the bulletin board (%(count)s vote) and its Merkle root:", "Recount of the bulletin board (%(count)s votes) and its Merkle root:", board.leaves?.length ?? 0), { count: board.leaves?.length ?? 0 }) },
      await verifyBoard(board, doc),
    );
    if (this.offer && this.offer.title !== null && this.offer.terms !== null) {
      report({ key: "offer", text: gettext("The offer shown here is the one voted on:") }, await verifyOfferHash(this.offer, doc));
    }
    const stored = this.panel.role === "consumer" ? loadReceipt(this.panel.memberId, this.id) : null;
    if (stored) {
      const proof = await api.proof(this.id, stored.receipt);
      report(
        { key: "receipt", text: format(gettext("Your vote (%(choice)s) is counted as cast:"), { choice: choiceLabel(stored.choice) }) },
        await verifyReceipt({ receipt: stored.receipt, ballotId: this.id, choice: stored.choice }, proof, doc, board),
      );
    }
  }
}
