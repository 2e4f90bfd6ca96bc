"""The Explore page's API (tiny network): layers, saliency by the three rules, ascent jobs."""

import json

from tests.conftest import requires_weights
from tests.web.helpers import BASE, png, wait_state


def test_layers_and_the_ascent_form_schema(make_client):
    client = make_client()
    info = client.get("/api/explain/layers").json()
    conv51 = next(layer for layer in info["layers"] if layer["name"] == "conv5_1")
    assert conv51 == {"name": "conv5_1", "channels": 512, "stride": 16}
    assert info["methods"] == ["gradient", "deconvnet", "guided"]
    fields = {f["name"]: f for f in client.get("/api/explain/config").json()["fields"]}
    assert {"l2", "blur_every", "blur_sigma", "clip_value", "clip_grad", "jitter"} <= set(fields)
    assert fields["param"]["choices"] == ["pixel", "fourier"]  # Lucid's options on /explore
    assert fields["decorrelate"]["kind"] == "bool" and "transforms" in fields
    assert fields["size"]["max"] == 512 and fields["iterations"]["max"] == 2000
    assert client.get("/explore").status_code == 200


def test_saliency_gives_three_maps(make_client, tiny_network):
    client = make_client()
    r = client.post(
        "/api/explain/saliency",
        files=[("image", ("c.png", png(48, 32), "image/png"))],
        data={"target": "conv3_1:2@1,2", "size": "32"},
        headers={"Origin": BASE},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target"] == "conv3_1:2@1,2" and body["working_size"] == [21, 32]
    assert body["map_size"] == [5, 8] and body["image_size"] == [32, 48]
    assert set(body["maps"]) == {"gradient", "deconvnet", "guided"}
    assert all(v.startswith("data:image/png;base64,") for v in body["maps"].values())
    r = client.post(
        "/api/explain/saliency",
        data={"image_builtin": "builtin:coffee", "target": "conv3_1:1", "size": "64"},
        headers={"Origin": BASE},
    )
    assert r.status_code == 200, r.text


def test_bad_saliency_requests_are_422(make_client, tiny_network, tmp_path):
    client = make_client()
    cases = [
        ({"image_builtin": "builtin:coffee", "target": "conv3_1:99"}, "channel 99 is out of range"),
        ({"image_builtin": "builtin:coffee", "target": "class:tabby"}, "need a classifier"),
        ({"image_builtin": "builtin:coffee", "target": "nope"}, "is not LAYER:CHANNEL"),
        ({"image_builtin": "builtin:nothing", "target": "conv3_1:1"}, "no such built-in"),
        (
            {"image_builtin": "builtin:coffee", "target": "conv3_1:1", "size": "4096"},
            "size: at most 512 px on this server",
        ),
        ({"target": "conv3_1:1"}, "give one image"),
    ]
    for data, fragment in cases:
        r = client.post("/api/explain/saliency", data=data, headers={"Origin": BASE})
        assert r.status_code == 422, (data, r.text)
        assert fragment in r.json()["detail"] and str(tmp_path) not in r.text
    r = client.post(
        "/api/explain/saliency",
        files=[("image", ("x.png", b"junk", "image/png"))],
        data={"target": "conv3_1:1"},
        headers={"Origin": BASE},
    )
    assert r.status_code == 415


def test_an_ascent_job_runs_and_streams(make_client, tiny_network):
    from nst.web.jobs import api_runner

    client = make_client(runner=api_runner)
    body = {"target": "conv3_1:2", "params": {"size": 32, "iterations": 4, "seed": 1}}
    r = client.post(
        "/api/explain/visualize",
        content=json.dumps(body),
        headers={"Origin": BASE, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["kind"] == "visualize" and job["params"]["target"] == "conv3_1:2"
    done = wait_state(client, job["id"])
    assert done["state"] == "done" and done["result"]
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    steps = [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and '"type": "step"' in line
    ]
    assert [s["iteration"] for s in steps] == [0, 1, 2, 3, 4]
    assert all("activation_loss" in s for s in steps)


def test_bad_ascent_requests_are_422(make_client, tiny_network):
    client = make_client()
    for body, fragment in [
        ({"target": "conv3_1:2", "params": {"size": 4096}}, "size: at most 512 px"),  # the cap
        ({"target": "conv3_1:2", "params": {"size": 1024}}, "size: at most 512 px"),
        ({"target": "conv3_1:2", "params": {"iterations": 10**5}}, "iterations: at most 2000"),
        ({"target": "conv3_1:2", "params": {"l2": "nan"}}, "l2 must be a finite number"),
        ({"target": "conv5_1:2@99,0", "params": {}}, "is outside the conv5_1 map"),
        ({"target": 5}, "target: give a target"),
        ({"target": "conv3_1:1", "params": {"colour": 1}}, "unknown parameter(s): colour"),
    ]:
        r = client.post(
            "/api/explain/visualize",
            content=json.dumps(body),
            headers={"Origin": BASE, "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (body, r.text)
        assert fragment in r.json()["detail"], r.text
    r = client.post(
        "/api/explain/visualize",
        content=b"[" * 5000,
        headers={"Origin": BASE, "Content-Type": "application/json"},
    )
    assert r.status_code == 422


@requires_weights
def test_the_default_target_fires_on_the_default_photo(make_client):
    """The page opens on builtin:chelsea with the server's default target at 256 px: on the
    real weights that channel responds (channel 30, the old default, gives 0 there)."""
    client = make_client()
    target = client.get("/api/explain/layers").json()["default_target"]
    r = client.post(
        "/api/explain/saliency",
        data={"image_builtin": "builtin:chelsea", "target": target, "size": "256"},
        headers={"Origin": BASE},
    )
    assert r.status_code == 200, r.text
    assert target == "conv5_1:auto"
    assert r.json()["target"] == "conv5_1:352"  # the strongest channel there (summed), named
    assert r.json()["value"] > 1000  # measured 3.0e4
