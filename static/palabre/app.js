// Palabre's browser client. The server renders one page (rooms/templates/rooms/app.html)
// for `/`, `/mediations/<id>/` and `/rooms/<id>/` and says which in data attributes;
// everything else comes from the HTTP API and the room socket (PROTOCOL.md).
import { api, cookie } from "./api.js";
import { append, h, clear, field, liveRegion, say } from "./dom.js";
import { format, formatDateTime, formatPercent, gettext, phaseLabel, roleLabel } from "./i18n.js";
import { errorText } from "./messages.js";
import { RegistrationQueue } from "./queue.js";
import { asksSomething, registrationForm, registrationStatus, uploadErrorText } from "./registration.js";
import { RoomPage } from "./room.js";

const main = document.getElementById("app");

// --- the header: who is signed in, sign out, and the language switch --------------------

function renderSession(me) {
  const session = document.getElementById("session");
  clear(session);
  if (!me) return;
  const logout = h("button", { type: "button", class: "small logout" }, gettext("Sign out"));
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    try {
      await api.logout();
    } finally {
      location.assign("/");
    }
  });
  session.append(h("span", { class: "me" }, format(gettext("Signed in as %(name)s"), { name: me.display_name })), " ", logout);
}

// Django's set_language checks the CSRF token, and signing in rotates it: the form sends
// the current one, not the one rendered with the page.
document.getElementById("language-form")?.addEventListener("submit", (event) => {
  const token = cookie("csrftoken");
  const input = event.currentTarget.querySelector('input[name="csrfmiddlewaretoken"]');
  if (token && input) input.value = token;
  const next = event.currentTarget.querySelector('input[name="next"]');
  if (next) next.value = location.pathname;
});

// --- sign in ------------------------------------------------------------------------------

function loginForm(intro) {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const status = liveRegion("form-status");
  const button = h("button", { type: "submit", class: "primary" }, gettext("Sign in"));
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" }, [
    h("h2", { id: "login-title" }, gettext("Sign in")),
    intro ? h("p", {}, intro) : null,
    field(gettext("Username"), username).field,
    field(gettext("Password"), password).field,
    button,
    status,
  ]);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    say(status, gettext("Signing in…"));
    try {
      await api.login(username.value.trim(), password.value);
      location.reload();
    } catch (error) {
      button.disabled = false;
      if (error.status === 429) say(status, gettext("Too many failed attempts: try again in a few minutes."), "error");
      else if (error.status === 400) say(status, gettext("Wrong username or password."), "error");
      else say(status, errorText(error), "error");
      password.select();
    }
  });
  return form;
}

// --- mediations: the list, one mediation, registration ------------------------------------

function mediationFacts(mediation) {
  const facts = [
    [gettext("Company"), mediation.company],
    [gettext("Phase"), phaseLabel(mediation.phase)],
    [gettext("Closes on"), formatDateTime(mediation.closes_at)],
  ];
  if (mediation.registration_closes_at) facts.push([gettext("Registration until"), formatDateTime(mediation.registration_closes_at)]);
  facts.push([gettext("Members"), String(mediation.members_count)]);
  if (mediation.threshold) facts.push([gettext("Acceptance threshold"), formatPercent(mediation.threshold)]);
  return h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** What a person can do about one mediation: enter, wait, register, or read why not.
 * `full` (the mediation's own page): the consumer's registration in full, the
 * mediator's queue of registrations. */
function membershipActions(me, mediation, detail, { full = false } = {}) {
  const box = h("div", { class: "membership" });
  const actions = h("div", { class: "actions" });
  const status = liveRegion("form-status");
  const extra = h("div", { class: "membership-detail" });
  box.append(actions, status, extra);

  const refresh = async ({ message = null, kind = "ok" } = {}) => {
    let fresh = null;
    try {
      fresh = await api.mediation(mediation.id);
    } catch (error) {
      say(status, errorText(error), "error");
      return;
    }
    Object.assign(mediation, fresh);
    await render(fresh);
    if (message) say(status, message, kind);
    actions.querySelector("a, button")?.focus();
  };

  const registerButton = () => {
    const register = h("button", { type: "button", class: "primary register" }, gettext("Register"));
    register.setAttribute("aria-label", format(gettext("Register for %(title)s"), { title: mediation.title }));
    register.addEventListener("click", async () => {
      if (asksSomething(detail || mediation)) {
        // The mediation asks for answers or documents: the form, in place.
        register.hidden = true;
        const form = registrationForm(detail || mediation, {
          onRegistered: (answer, { keepMessage = false } = {}) => {
            const message = !answer
              ? null
              : answer.status === "admitted"
                ? gettext("You are registered: you may enter the room.")
                : gettext("Registration received: the mediator will approve it.");
            refresh(keepMessage ? {} : { message });
          },
          onCancel: () => {
            form.remove();
            register.hidden = false;
            register.focus();
          },
        });
        extra.replaceChildren(form);
        form.querySelector("input, textarea")?.focus();
        return;
      }
      register.disabled = true;
      try {
        const answer = await api.register(mediation.id);
        await refresh({
          message: answer.status === "admitted" ? gettext("You are registered: you may enter the room.") : gettext("Registration received: the mediator will approve it."),
        });
      } catch (error) {
        register.disabled = false;
        if (error.status === 409) await refresh();
        else if (error.status === 410) say(status, gettext("Registration is closed for this mediation."), "error");
        else say(status, uploadErrorText(error), "error");
      }
    });
    return register;
  };

  const render = async (info) => {
    detail = info || detail;
    actions.replaceChildren();
    extra.replaceChildren();
    const role = info && info.my_role;
    const memberStatus = info && info.my_status;
    if (role && memberStatus === "admitted") {
      actions.append(
        h("p", { class: "member-of" }, format(gettext("You take part as: %(role)s."), { role: roleLabel(role) })),
        h("a", { class: "button primary enter", href: `/rooms/${info.plenary_room_id}/` }, gettext("Enter the room")),
      );
      if (role === "mediator" && !full) {
        actions.append(h("a", { class: "button manage-registrations", href: `/mediations/${mediation.id}/#registrations` }, gettext("Registrations")));
      }
    } else if (memberStatus === "pending") {
      actions.append(h("p", { class: "pending" }, gettext("Your registration is waiting for the mediator's approval.")));
    } else if (memberStatus === "refused") {
      actions.append(h("p", { class: "refused" }, gettext("Your registration was refused.")));
      if (!full) actions.append(h("a", { class: "see-why", href: `/mediations/${mediation.id}/` }, gettext("See the mediator's reason")));
    } else if (!me) {
      actions.append(h("p", {}, gettext("Sign in to register.")));
    } else if (info ? info.registration && info.registration.open : ["registration", "dialogue"].includes(mediation.phase)) {
      actions.append(registerButton());
    }
    if (full && role === "consumer") {
      const mine = await registrationStatus(info);
      if (mine) extra.append(mine);
    }
  };
  render(detail);
  return box;
}

async function renderHome(me) {
  const list = h("ul", { class: "mediations" });
  const heading = h("h1", { tabindex: "-1" }, gettext("Open mediations"));
  append(clear(main), [
    me ? null : loginForm(gettext("Sign in to take part in a mediation.")),
    h("section", { class: "home", "aria-labelledby": "home-title" }, [Object.assign(heading, { id: "home-title" }), list]),
  ]);
  let mediations;
  try {
    mediations = await api.mediations();
  } catch (error) {
    list.replaceWith(h("p", { class: "error" }, errorText(error)));
    return;
  }
  if (mediations.length === 0) list.append(h("li", { class: "empty" }, gettext("No mediation is open right now.")));
  // Whether the person already takes part is in each mediation's detail.
  const details = me ? await Promise.all(mediations.slice(0, 50).map((m) => api.mediation(m.id).catch(() => null))) : [];
  mediations.forEach((mediation, index) => {
    const titleId = `mediation-${mediation.id}`;
    list.append(
      h("li", { class: "card mediation", dataset: { mediationId: mediation.id } }, [
        h("h2", { id: titleId }, h("a", { href: `/mediations/${mediation.id}/` }, mediation.title)),
        mediationFacts(mediation),
        membershipActions(me, mediation, details[index] || null),
      ]),
    );
  });
}

async function renderMediation(me, mediationId) {
  let mediation;
  try {
    mediation = await api.mediation(mediationId);
  } catch (error) {
    clear(main).append(h("p", { class: "error" }, error.status === 404 ? gettext("This mediation is not open.") : errorText(error)), h("a", { href: "/" }, gettext("Back to the mediations")));
    return;
  }
  document.title = `${mediation.title} · Palabre`;
  const heading = h("h1", { tabindex: "-1" }, mediation.title);
  append(clear(main), [
    h("nav", { class: "crumbs" }, h("a", { href: "/" }, gettext("All mediations"))),
    h("article", { class: "card mediation-detail" }, [
      heading,
      mediationFacts(mediation),
      mediation.description ? [h("h2", {}, gettext("The dispute")), h("p", { class: "prose" }, mediation.description)] : null,
      mediation.objective ? [h("h2", {}, gettext("The objective")), h("p", { class: "prose" }, mediation.objective)] : null,
      membershipActions(me, mediation, mediation, { full: true }),
    ]),
    mediation.my_role === "mediator" && mediation.my_status === "admitted" ? new RegistrationQueue(mediation).element : null,
    me ? null : loginForm(gettext("Sign in to register.")),
  ]);
  if (location.hash === "#registrations") document.getElementById("registrations")?.scrollIntoView();
}

// --- boot -----------------------------------------------------------------------------------

async function boot() {
  let me = null;
  try {
    me = await api.me();
  } catch (error) {
    clear(main).append(h("p", { class: "error" }, errorText(error)));
    return;
  }
  renderSession(me);
  const page = main.dataset.page;
  if (page === "room") {
    if (!me) {
      clear(main).append(loginForm(gettext("Sign in to enter the room.")));
      return;
    }
    const roomPage = new RoomPage(main, me, main.dataset.roomId);
    main.addEventListener("palabre:signed-out", () => {
      clearInterval(roomPage.ticker);
      main.prepend(loginForm(gettext("Your session has ended: sign in again.")));
    }, { once: true });
  } else if (page === "mediation") {
    await renderMediation(me, main.dataset.mediationId);
  } else {
    await renderHome(me);
  }
}

boot();
