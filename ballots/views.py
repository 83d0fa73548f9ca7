"""HTTP API of seals (PROTOCOL.md): read the input, call a selector, shape the answer.
Who may read what is decided in ``ballots.selectors``."""

from django.http import HttpResponse

from ballots import selectors
from project.api import api


@api(login_required=True)
def ballot_seal(request, ballot_id):
    ballot, _member = selectors.check_ballot_reader(request.user, ballot_id)
    return selectors.seal_of(ballot)


@api()
def ballot_proof(request, ballot_id):
    # Anyone holding the receipt: the receipt is the secret, no login is asked for.
    receipt = selectors.check_receipt(request.GET.get("receipt"))
    return selectors.proof_of(selectors.ballot_get(ballot_id), receipt)


@api(login_required=True)
def ballot_board(request, ballot_id):
    ballot, _member = selectors.check_ballot_reader(request.user, ballot_id)
    # 150,000 entries are ~14 MB of JSON: serialised once per process, then served as is.
    return HttpResponse(selectors.board_json(ballot), content_type="application/json")
