from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def app(request, **kwargs):
    return render(request, "rooms/app.html")
