import pytest

from tests.conftest import connect, refused


@pytest.mark.django_db(transaction=True)
async def test_chat_reaches_every_member_and_acks_the_sender(plenary, consumer, mediator):
    alice = await connect(plenary, consumer)
    med = await connect(plenary, mediator)
    assert alice.welcome["me"]["role"] == "consumer"
    await alice.send({"type": "chat.send", "body": "Bonjour", "ref": "r1"})
    got = {}
    for _ in range(2):
        frame = await alice.recv()
        got[frame["type"]] = frame
    assert got["ack"] == {"type": "ack", "ref": "r1", "seq": 1}
    assert got["chat.message"]["body"] == "Bonjour"
    seen = await med.recv_until("chat.message")
    assert seen["seq"] == 1 and seen["author"]["member_id"] == str(consumer.pk)
    await alice.close()
    await med.close()


@pytest.mark.django_db(transaction=True)
async def test_non_members_are_refused(plenary, pending, outsider):
    assert await refused(plenary, pending) == 4403
    assert await refused(plenary, outsider) == 4403
    assert await refused(plenary, None) == 4403
