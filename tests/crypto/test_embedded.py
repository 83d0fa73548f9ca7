import stat
import threading

from crypto.embedded import ensure_secret_file


def test_creates_once_with_mode_0600_and_never_overwrites(tmp_path):
    path = tmp_path / "var" / "nested" / "master_keys"
    calls = []

    def generate():
        calls.append(1)
        return f"secret-{len(calls)}"

    assert ensure_secret_file(path, generate) == "secret-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_file(path, generate) == "secret-1"
    assert path.read_text().strip() == "secret-1"
    assert calls == [1]
    assert [p.name for p in path.parent.iterdir()] == ["master_keys"]


def test_returns_an_existing_file_stripped(tmp_path):
    path = tmp_path / "sealing_keys"
    path.write_text("sk-1:abc\n")
    assert ensure_secret_file(path, lambda: "unused") == "sk-1:abc"


def test_concurrent_first_runs_agree_on_one_secret(tmp_path):
    path = tmp_path / "master_keys"
    barrier = threading.Barrier(8)
    results = []

    def start(n):
        def generate():
            barrier.wait()  # every thread has passed the "exists?" check
            return f"secret-{n}"

        results.append(ensure_secret_file(path, generate))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert path.read_text().strip() == results[0]
