"""The browser client's one page (static/palabre/): the server only says which page it is
and which mediation or room it is about; the modules in the page do the rest."""

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def app(request, mediation_id=None, room_id=None):
    if room_id is not None:
        page = "room"
    elif mediation_id is not None:
        page = "mediation"
    else:
        page = "home"
    return render(
        request,
        "rooms/app.html",
        {"page": page, "mediation_id": mediation_id, "room_id": room_id},
    )
