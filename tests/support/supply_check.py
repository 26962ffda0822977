#!/usr/bin/env python3
"""An independent reader of what `qus release` attached: the registry over plain HTTP with
urllib (not qus's client), signatures with the `cryptography` package (not qus's p256), SBOMs
validated by `pyspdxtools` (spdx-tools). Prints one JSON object per tag on stdout.

usage: supply_check.py REGISTRY REPO PUBKEY.pem TAG... (a tag prefixed with '=' is a list:
signature only)
"""
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def get(url, accept=ACCEPT):
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def main():
    registry, repo, pub_path = sys.argv[1:4]
    base = f"http://{registry}/v2/{repo}"
    with open(pub_path, "rb") as f:
        pub = serialization.load_pem_public_key(f.read())
    out = {}
    for arg in sys.argv[4:]:
        is_list = arg.startswith("=")
        tag = arg.lstrip("=")
        status, body, _ = get(f"{base}/manifests/{tag}")
        assert status == 200, f"{tag}: {status}"
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        hexd = digest.split(":", 1)[1]
        r = {"digest": digest}

        # cosign's signature: sha256-<hex>.sig, each layer a payload with the signature in
        # its annotation; ECDSA P-256 over SHA-256 of the payload's exact bytes.
        status, body, _ = get(f"{base}/manifests/sha256-{hexd}.sig")
        r["signature"] = False
        if status == 200:
            sig_manifest = json.loads(body)
            for layer in sig_manifest["layers"]:
                sig = layer.get("annotations", {}).get("dev.cosignproject.cosign/signature")
                st, payload, _ = get(f"{base}/blobs/{layer['digest']}", "*/*")
                assert st == 200 and "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]
                doc = json.loads(payload)
                if doc["critical"]["image"]["docker-manifest-digest"] != digest:
                    continue
                r["docker_reference"] = doc["critical"]["identity"]["docker-reference"]
                try:
                    pub.verify(base64.b64decode(sig), payload, ec.ECDSA(hashes.SHA256()))
                    r["signature"] = True
                except InvalidSignature:
                    pass
        if is_list:
            out[tag] = r
            continue

        # Referrers: the API, else the referrers tag schema (sha256-<hex>).
        status, body, _ = get(f"{base}/referrers/{digest}", "application/vnd.oci.image.index.v1+json")
        if status == 200:
            r["referrers_via"] = "api"
        else:
            status, body, _ = get(f"{base}/manifests/sha256-{hexd}")
            assert status == 200, f"{tag}: no referrers tag ({status})"
            r["referrers_via"] = "tag"
        index = json.loads(body)
        r["referrers"] = {}
        for d in index["manifests"]:
            st, mbody, _ = get(f"{base}/manifests/{d['digest']}")
            assert st == 200
            m = json.loads(mbody)
            assert m["subject"]["digest"] == digest, "referrer of another manifest"
            assert m["artifactType"] == d["artifactType"]
            st, blob, _ = get(f"{base}/blobs/{m['layers'][0]['digest']}", "*/*")
            assert st == 200
            r["referrers"][d["artifactType"]] = json.loads(blob)
            if d["artifactType"] == "application/spdx+json":
                with tempfile.NamedTemporaryFile(suffix=".spdx.json") as f:
                    f.write(blob)
                    f.flush()
                    v = subprocess.run(["pyspdxtools", "-i", f.name], capture_output=True, text=True)
                r["spdx_valid"] = v.returncode == 0
                r["spdx_messages"] = (v.stdout + v.stderr)[-2000:]
        out[tag] = r
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
