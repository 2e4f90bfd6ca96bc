"""Hostile requests to the web app: never a 5xx, never a server path in an answer."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import threading
import time

import numpy as np
import pytest
import uvicorn
from PIL import Image

from nst.web import WebSettings, create_app
from nst.web.guard import timed_protocol
from tests.robustness import corpus
from tests.robustness.test_cli import DECODABLE
from tests.web.helpers import BASE, submit, wait_state


def _check(r, data_dir) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    assert str(data_dir) not in r.text and "/tmp/" not in r.text, r.text
    if r.status_code >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, detail


@pytest.mark.parametrize("name", sorted(corpus.BAD_FILES))
@pytest.mark.parametrize("role", ["content", "style"])
def test_every_hostile_file_posted(make_client, tmp_path, name, role):
    client = make_client()
    blob = corpus.BAD_FILES[name]()
    if role == "content":
        r = submit(client, content=blob)
    else:
        r = submit(client, styles=(("style", blob),))
    _check(r, tmp_path / "data")
    if name in DECODABLE or (role == "style" and name in ("strip_1x5000", "wide_4_to_1")):
        assert r.status_code in (201, 422), r.text  # a thin style may be too small at 32 px
    else:
        assert 400 <= r.status_code < 500, r.text


BAD_PARAMS = [
    {"scales": "256.7,512"}, {"scales": [[256]]}, {"style_scale": 600}, {"style_scale": 8},
    {"size": 16}, {"size": "abc"}, {"size": 1e400}, {"style_weight": "NaN"},
    {"style_layers": [{"a": [1, {"b": 2}]}]}, {"content_layers": [["conv4_2", [1]]]},
    {"regions": {"#ff0000": [1]}}, {"regions": "#ff0000=1"}, {"style_blend": [1, -1]},
    {"precision": "fp16"}, {"init": "/etc/passwd"}, {"weights": "/etc/passwd"},
    {"device": "cuda"}, {"mask": "/etc/passwd"}, {"iterations": -5}, {"seed": 2**70},
    {"content_layers": "pool5", "size": 24}, {"preserve_colors": None}, {"size": None},
    {"\u0000": 1}, {"x" * 10_000: 1},
]  # fmt: skip


@pytest.mark.parametrize("params", BAD_PARAMS, ids=range(len(BAD_PARAMS)))
def test_bad_parameters_are_422(make_client, tmp_path, params):
    r = submit(make_client(), params=params)
    _check(r, tmp_path / "data")
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "raw", ["[" * 5000 + "]" * 5000, '{"size": NaN}', '{"size": 1e999}', "null", '"text"', "{",
            '{"size": ' + "9" * 5000 + "}", '{"seed": ' + "9" * 400 + "}"]
)  # fmt: skip
def test_bad_json_is_422(make_client, tmp_path, raw):
    r = submit(make_client(), raw_params=raw)
    _check(r, tmp_path / "data")
    assert r.status_code == 422


def test_path_parameters_are_names(make_client, tmp_path):
    """A job's files by name: anything but a known name is 404 (a name too long for the
    file system was a 500), and a job id is matched whole (a trailing newline too)."""
    client = make_client()
    job = submit(client).json()["id"]
    assert client.get(f"/api/jobs/{job}/inputs/content.png").status_code == 200
    names = [
        "style_" + "a" * 300 + ".png",
        "content.png%00",
        "%00",
        "style_%00.png",
        "style_0.png%0a",
        "..%2fcontent.png",
        "x" * 5000,
        "mask.png.",
        "style_123.png",
    ]
    for name in names:  # fmt: skip
        r = client.get(f"/api/jobs/{job}/inputs/{name}")
        _check(r, tmp_path / "data")
        assert r.status_code == 404, (name, r.status_code)
    for bad in [f"{job}%0a", f"{job}%00", job.upper(), job[:-1], "9" * 5000]:
        for tail in ("", "/inputs/content.png", "/result.png", "/events"):
            r = client.get(f"/api/jobs/{bad}{tail}")
            _check(r, tmp_path / "data")
            assert r.status_code == 404, (bad, tail, r.status_code)


def test_control_characters_and_nul_in_file_names(make_client, tmp_path):
    client = make_client()
    for name in ["a\x00b.png", "a\nb.png", "a\x1b[2Jb.png", "../../etc/passwd"]:
        files = [("content", (name, b"not an image", "image/png")),
                 ("style", ("s.png", corpus.png(), "image/png"))]  # fmt: skip
        r = client.post("/api/jobs", files=files, data={"params": "{}"}, headers={"Origin": BASE})
        _check(r, tmp_path / "data")
        assert r.status_code == 415


def test_the_mask_message_names_no_server_path(make_client, tmp_path):
    arr = np.zeros((36, 48, 3), np.uint8)
    arr[:, 24:] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    r = submit(make_client(), mask=None, params={"size": 32, "regions": "#000000=1"},
               files_extra=[("mask", ("m.png", buf.getvalue(), "image/png"))])  # fmt: skip
    _check(r, tmp_path / "data")
    assert r.status_code == 422
    assert r.json()["detail"].startswith("mask.png: colour #0000ff (and others) covers 50%")


def test_the_pixels_of_one_request_are_capped(make_client, tmp_path):
    client = make_client(max_pixels=10_000, max_request_pixels=15_000)
    big = corpus.png(90, 90)  # 8,100 pixels each: one fits, two do not
    r = submit(client, content=big, styles=(("style", big),))
    _check(r, tmp_path / "data")
    assert r.status_code == 413
    assert r.json()["detail"] == (
        "the images of one job hold 16,200 pixels together, the limit is 15,000"
    )


def test_last_event_id_that_is_not_ascii_digits(make_client, tmp_path):
    client = make_client()
    job = submit(client).json()
    wait_state(client, job["id"])
    for value in [b"\xb2", "١٢".encode(), b"9" * 40, b"-1", b"3 "]:
        r = client.get(f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": value})
        _check(r, tmp_path / "data")
        assert r.status_code == 200 and "event: end" in r.text


def test_a_chunked_body_over_the_cap_gets_413(make_client, tmp_path):
    client = make_client(max_body=50_000)
    head = (b'--b\r\nContent-Disposition: form-data; name="content"; filename="c.png"\r\n'
            b"Content-Type: image/png\r\n\r\n")  # fmt: skip
    body = head + b"x" * 200_000 + b"\r\n--b--\r\n"

    def chunks():
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = client.post("/api/jobs", content=chunks(), headers={
        "Origin": BASE, "Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert r.status_code == 413 and r.json()["detail"] == "request body over 49 KB"


def test_job_files_are_private(make_client, tmp_path):
    client = make_client()
    job = submit(client).json()
    wait_state(client, job["id"])
    data = tmp_path / "data"
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    folder = data / job["id"]
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for f in folder.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f.name


@pytest.fixture
def live_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = WebSettings(data_dir=tmp_path / "data", port=port, header_timeout=1.0,
                           body_timeout=1.0, calibrate=False)  # fmt: skip
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_level="error", http=timed_protocol(1.0))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def test_slow_clients_time_out(live_server):
    port = live_server
    # headers trickled in: the connection is closed after the header timeout
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(b"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert s.recv(1024) == b""  # closed by the server (a hang would time out the socket)
    # a body that stops coming: 408
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\n"
                  "Content-Type: multipart/form-data; boundary=b\r\n"
                  "Content-Length: 1000\r\n\r\n--b\r\n".encode())  # fmt: skip
        reply = b""
        while b"}" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode()
        assert reply.startswith("HTTP/1.1 408"), reply
        assert json.loads(reply.split("\r\n\r\n", 1)[1])["detail"] == (
            "the request body came too slowly"
        )
    # an honest client still gets its answer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
