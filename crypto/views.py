from django.http import JsonResponse

from crypto import signing


def keys(request):
    """The public sealing keys (PROTOCOL.md ``GET /api/v1/keys``), newest first."""
    return JsonResponse({"keys": signing.public_keys()})
