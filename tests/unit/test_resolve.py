"""`prmkit.resolve`: the one grammar of reward-model specs, policies and tasks; local-looking missing paths
fail at once (no hub request); gym defaults only on gym data, and said; paths stored in model dirs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from prmkit.errors import InputError
from prmkit.resolve import (RMSpec, check_model_name, is_hub_id, looks_local, parse_rm_spec, policy_path,
                            read_problems)
from prmkit.rewards.rm_config import load_path, stored_path


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Any hub request is a test failure: a typo must never reach the network."""
    import huggingface_hub

    def refuse(*a, **k):
        raise AssertionError("a hub request was made")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.delenv("PRMKIT_RM_TOKEN", raising=False)


@pytest.mark.parametrize("spec,form,flip", [
    ("gym", "gym-prm", 0.0), ("gym-prm", "gym-prm", 0.0), ("checker", "checker", 0.0),
    ("checker:0.1", "checker", 0.1), ("gym-checker", "checker", 0.0), ("checker:1", "checker", 1.0),
])
def test_named_specs(spec, form, flip):
    assert parse_rm_spec(spec) == RMSpec(form, flip_rate=flip)


def test_checker_flip_option_and_bad_rates():
    assert parse_rm_spec("checker", flip_rate=0.3).flip_rate == 0.3       # --flip-rate when the spec has none
    assert parse_rm_spec("checker:0.2", flip_rate=0.3).flip_rate == 0.2   # the spec's own wins
    assert "sekret" not in repr(RMSpec("remote", "http://h:1", token="sekret"))
    for bad in ("checker:x", "checker:1.5", "checker:-0.1"):
        with pytest.raises(InputError, match="flip rate"):
            parse_rm_spec(bad)


def test_remote_forms_and_token(monkeypatch):
    a = parse_rm_spec("http://127.0.0.1:9/", probe=False)
    b = parse_rm_spec("remote:http://127.0.0.1:9", probe=False)            # the old search alias
    assert a == b == RMSpec("remote", "http://127.0.0.1:9")
    monkeypatch.setenv("PRMKIT_RM_TOKEN", "from-env")
    assert parse_rm_spec("https://h:1", probe=False).token == "from-env"
    assert parse_rm_spec("https://h:1", token="given", probe=False).token == "given"
    with pytest.raises(InputError, match="remote:http"):
        parse_rm_spec("remote:ftp://x")


def test_empty_spec_is_the_gym_prm_on_gym_data_only(capsys):
    assert parse_rm_spec("", gym_data=True) == RMSpec("gym-prm")
    assert "shipped gym PRM" in capsys.readouterr().err                    # said, not silent
    with pytest.raises(InputError, match="pass --prm"):
        parse_rm_spec("", gym_data=False)
    with pytest.raises(InputError, match="pass --model"):
        policy_path("", "model", gym_data=False)


@pytest.mark.parametrize("name,hub", [("org/name", True), ("Qwen/Qwen2.5-Math-7B-PRM800K", True),
                                      ("gpt2", False), ("a/b/c", False), ("./x", False), ("/x/y", False),
                                      ("~/m", False), ("org/../x", False), ("-org/x", False)])
def test_hub_id_shape(name, hub):
    assert is_hub_id(name) is hub


def test_local_looking_missing_paths_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "file.txt").write_text("x")
    for name in ("./nope", str(tmp_path / "nope"), "~/surely-not-here-prmkit", "runs/prm", "a/b/c", "nohubshape"):
        assert looks_local(name)
        t = time.perf_counter()
        with pytest.raises(InputError, match="no such directory") as e:
            parse_rm_spec(name)
        assert time.perf_counter() - t < 1.0 and e.value.field == "prm" and e.value.file == name
    with pytest.raises(InputError, match="got a file"):
        check_model_name("file.txt", "model")
    assert not looks_local("someorg/somemodel")                            # 'someorg' does not exist here
    assert parse_rm_spec("someorg/somemodel") == RMSpec("hub", "someorg/somemodel")
    assert parse_rm_spec("runs") == RMSpec("local", "runs")


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_problems_need_a_task_unless_their_prompt_is_the_gyms(tmp_path):
    gym = {"id": "g", "prompt": "Q:7,+3\n", "answer": "10"}
    gsm = {"id": "s", "prompt": "Janet has 3 eggs. How many?", "answer": "3"}
    assert [p.task for p in read_problems(_write(tmp_path / "a.jsonl", [gym, {**gsm, "task": "gsm8k"}]))] == ["gym", "gsm8k"]
    with pytest.raises(InputError, match="must name its task") as e:
        read_problems(_write(tmp_path / "b.jsonl", [gym, gsm]))
    assert (e.value.line, e.value.field) == (2, "task")
    with pytest.raises(InputError, match="unknown task 'gsm9k'"):
        read_problems(_write(tmp_path / "c.jsonl", [{**gsm, "task": "gsm9k"}]))
    with pytest.raises(InputError, match="gym prompt"):
        read_problems(_write(tmp_path / "d.jsonl", [{**gsm, "task": "gym"}]))
    with pytest.raises(InputError, match="no such file"):
        read_problems(str(tmp_path / "missing.jsonl"))


def test_stored_paths_travel_with_the_model_dir(tmp_path, monkeypatch):
    model, backbone = tmp_path / "m", tmp_path / "models" / "qwen-tiny"
    (model / "loglik_lm").mkdir(parents=True)
    backbone.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert stored_path("m/loglik_lm", model) == "loglik_lm"                 # inside: relative to the dir
    assert stored_path("models/qwen-tiny", model) == str(backbone)          # typed relative, outside: absolute
    assert stored_path("org/name", model) == "org/name"                     # hub ids and markers as given
    assert stored_path("gym-policy", model) == "gym-policy"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    moved = tmp_path / "moved"
    model.rename(moved)
    assert load_path("loglik_lm", moved) == str(moved / "loglik_lm")       # from any directory, after a move
    assert load_path(str(backbone), moved) == str(backbone)
    assert load_path("org/name", moved) == "org/name"


def _serve(token: str):
    import socket

    import uvicorn

    from prmkit.gym.checker_rm import GymCheckerRM
    from prmkit.serve.reward_server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(GymCheckerRM(), token=token), host="127.0.0.1", port=port,
                                           log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(250):
        if server.started:
            break
        time.sleep(0.02)
    return server, th, f"http://127.0.0.1:{port}"


def test_remote_token_is_probed_before_anything_loads(monkeypatch):
    server, th, url = _serve("sekret")
    try:
        with pytest.raises(InputError, match="requires a bearer token: pass --prm-token") as e:
            parse_rm_spec(url)
        assert e.value.field == "prm_token"
        with pytest.raises(InputError, match="refused the token"):
            parse_rm_spec(url, token="wrong")
        monkeypatch.setenv("PRMKIT_RM_TOKEN", "sekret")
        rm = parse_rm_spec(url).load()
        assert rm.score(["Q:7,+3\n"], [["7+3=10", "7+3=11"]]) == [[1.0, 0.0]]   # the checker, through the server
    finally:
        server.should_exit = True
        th.join(10)
    with pytest.raises(InputError, match="cannot reach"):
        parse_rm_spec(url)                                                 # the server is gone


def test_the_library_loader_refuses_a_missing_local_path_at_once(tmp_path):
    from prmkit.rewards import load_reward_model

    t = time.perf_counter()
    with pytest.raises(InputError, match="no such directory"):
        load_reward_model(str(tmp_path / "runs" / "prmm"))                 # a typo: no hub request (no_hub)
    assert time.perf_counter() - t < 1.0
