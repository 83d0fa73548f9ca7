// What to tell a person when the server (or the connection) says no, by error code.
import { gettext } from "./i18n.js";

export function errorText(error) {
  switch (error && error.code) {
    case "muted":
      return gettext("You are muted: you cannot post for now.");
    case "forbidden":
      return gettext("Your role may not do this here.");
    case "rate_limited":
      return gettext("Too fast: wait a moment and try again.");
    case "too_large":
      return gettext("This is too long.");
    case "room_closed":
      return gettext("This mediation is closed.");
    case "ballot_closed":
      return gettext("This ballot is closed: no vote is taken any more.");
    case "already_voted":
      return gettext("You have already voted in this ballot.");
    case "not_eligible":
      return gettext("You are not in this ballot's electorate (it was fixed when the ballot opened).");
    case "not_found":
      return gettext("Not found: it may have been removed.");
    case "bad_request":
      return gettext("The server did not understand the request.") + (error.message ? ` (${error.message})` : "");
    case "unavailable":
      return gettext("The service is momentarily unavailable: nothing was recorded, try again.");
    case "offline":
      return gettext("You are not connected: wait for the connection to come back, then try again.");
    case "disconnected":
      return gettext("The connection dropped before the server answered: check whether it was recorded.");
    case "timeout":
      return gettext("The server did not answer in time: check whether it was recorded.");
    case "network":
      return gettext("The server cannot be reached. Check your connection.");
    default:
      return (error && error.message) || gettext("Something went wrong.");
  }
}
