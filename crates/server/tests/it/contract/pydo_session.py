"""A session with DigitalOcean's official Python client (pydo) against a tidepool server.

Run by crates/server/tests/contract.rs:
    TIDEPOOL_URL=http://127.0.0.1:PORT TIDEPOOL_TOKEN=dop_v1_... python3 pydo_session.py
(or: python3 pydo_session.py URL TOKEN). Exits non-zero with a message naming the first
mismatch. It asserts what a user of pydo would look at, through pydo's own API only.

pydo quirk worth knowing: `images.get`, `images.update` and `images.delete` list 404 among
their expected answers, so on a missing image they *return* the error body
({"id": "not_found", ...}) rather than raise. Other error statuses raise
azure.core.exceptions.HttpResponseError (401 as its subclass ClientAuthenticationError).
"""

import os
import sys

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
import pydo

CHECKS = 0


class Mismatch(Exception):
    pass


def check(condition, what, got=None):
    global CHECKS
    CHECKS += 1
    if not condition:
        raise Mismatch(what + ("" if got is None else f"\n    got: {got!r}"))


def error_body(err):
    """The DigitalOcean error body of a raised HttpResponseError."""
    check(err.response is not None, "the raised error carries the HTTP response")
    body = err.response.json()
    check(isinstance(body.get("id"), str), "error body has a string `id`", body)
    check(isinstance(body.get("message"), str) and body["message"], "error body has a `message`", body)
    return body


class PlainHttp:
    """`client.images` with `enforce_https=False` on every call. azure-core, under pydo, refuses
    to send a bearer token to an http:// URL; the tests' server listens on plain loopback
    HTTP. A tidepool behind TLS needs none of this: the calls are otherwise pydo's own."""

    def __init__(self, operations):
        self._operations = operations

    def __getattr__(self, name):
        method = getattr(self._operations, name)
        return lambda *args, **kwargs: method(*args, enforce_https=False, **kwargs)


def images_of(token, url):
    return PlainHttp(pydo.Client(token=token, endpoint=url).images)


def ids(listing):
    return [image["id"] for image in listing["images"]]


def session(url, token):
    images = images_of(token, url)

    # -- Public images, as on DigitalOcean ---------------------------------------------------
    distros = images.list(type="distribution", per_page=5)
    check(set(distros) >= {"images", "links", "meta"}, "list has images, links and meta", distros.keys())
    total = distros["meta"]["total"]
    check(len(distros["images"]) == 5, "per_page=5 gives 5 distribution images", len(distros["images"]))
    check(total > 5, "meta.total counts all pages", total)
    for image in distros["images"]:
        check(image["public"] is True, "distribution images are public", image)
        check(isinstance(image["slug"], str) and image["slug"], "distribution images have a slug", image)
        check(image["status"] == "available", "distribution images are available", image)
    pages = distros["links"]["pages"]
    check("next" in pages and "last" in pages, "page 1 links to next and last", pages)
    check("prev" not in pages and "first" not in pages, "page 1 has no prev/first", pages)
    check("page=2" in pages["next"] and "type=distribution" in pages["next"], "next link keeps the filter", pages["next"])

    page2 = images.list(type="distribution", per_page=5, page=2)
    check(page2["meta"]["total"] == total, "total is the same on page 2", page2["meta"])
    check(not set(ids(page2)) & set(ids(distros)), "page 2 holds other images than page 1", (ids(distros), ids(page2)))
    check("prev" in page2["links"]["pages"], "page 2 links back", page2["links"])

    everything = images.list(type="distribution", per_page=200)
    check(len(everything["images"]) == total, "per_page=200 holds every distribution image", len(everything["images"]))

    apps = images.list(type="application")
    check(not set(ids(apps)) & set(ids(everything)), "applications and distributions are apart", ids(apps))

    by_slug = images.get(image_id="ubuntu-24-04-x64")
    image = by_slug["image"]
    check(image["slug"] == "ubuntu-24-04-x64", "get by slug finds the slug", image)
    check(image["distribution"] == "Ubuntu" and image["public"] is True, "ubuntu-24-04-x64 is public Ubuntu", image)
    by_id = images.get(image_id=image["id"])
    check(by_id["image"] == image, "get by id gives the same image as by slug", by_id)

    # -- A custom image: create, find, rename, delete -----------------------------------------
    created = images.create_custom(
        body={
            "name": "pydo-image",
            "url": "https://example.com/images/disk.qcow2.gz",
            "region": "nyc3",
            "distribution": "Ubuntu",
            "description": "made by pydo",
            "tags": ["pydo-session", "base"],
        }
    )
    mine = created["image"]
    image_id = mine["id"]
    check(isinstance(image_id, int) and image_id > 0, "created image has an integer id", mine)
    check(mine["status"] == "NEW", "a new custom image is NEW", mine)
    check(mine["name"] == "pydo-image" and mine["type"] == "custom", "created image is the custom one asked for", mine)
    check(mine["distribution"] == "Ubuntu" and mine["description"] == "made by pydo", "distribution and description kept", mine)
    check(sorted(mine["tags"]) == ["base", "pydo-session"], "tags kept", mine["tags"])
    check(mine["public"] is False and mine["slug"] is None, "custom images are private, without slug", mine)

    private = images.list(private=True)
    check(image_id in ids(private), "the new image is in the private=True list", ids(private))
    check(all(not i["public"] for i in private["images"]), "private=True lists no public image", private)
    tagged = images.list(tag_name="pydo-session")
    check(ids(tagged) == [image_id], "tag_name finds exactly the tagged image", ids(tagged))
    untagged = images.list(tag_name="no-such-tag")
    check(untagged["images"] == [] and untagged["meta"]["total"] == 0, "an unused tag lists nothing", untagged)
    check(image_id not in ids(images.list(type="distribution", per_page=200)), "custom images are not distributions")

    fetched = images.get(image_id=image_id)["image"]
    check(fetched["id"] == image_id and fetched["name"] == "pydo-image", "get by id finds the new image", fetched)

    updated = images.update(
        image_id=image_id,
        body={"name": "pydo-renamed", "description": "renamed by pydo", "distribution": "Debian"},
    )["image"]
    check(updated["name"] == "pydo-renamed", "update renames", updated)
    check(updated["description"] == "renamed by pydo" and updated["distribution"] == "Debian", "update changes description and distribution", updated)
    again = images.get(image_id=image_id)["image"]
    check(again["name"] == "pydo-renamed" and again["distribution"] == "Debian", "the rename is kept", again)

    # Headers a pydo user can ask for through `cls`.
    headers = images.delete(image_id=image_id, cls=lambda _response, _body, headers: headers)
    check(isinstance(headers, dict) and "ratelimit-limit" in headers, "delete answers with rate-limit headers", headers)
    gone = images.get(image_id=image_id)
    check(gone.get("id") == "not_found" and gone.get("message"), "a deleted image is not found", gone)
    check(image_id not in ids(images.list(private=True)), "a deleted image leaves the private list")
    again_gone = images.delete(image_id=image_id)
    check(isinstance(again_gone, dict) and again_gone.get("id") == "not_found", "deleting twice is a 404 body", again_gone)
    missing = images.update(image_id=image_id, body={"name": "x"})
    check(missing.get("id") == "not_found", "updating a deleted image is a 404 body", missing)

    unknown = images.get(image_id="no-such-slug-anywhere")
    check(unknown.get("id") == "not_found" and unknown.get("message"), "an unknown slug is a not_found body", unknown)

    # -- Errors pydo raises, with DigitalOcean's error body -----------------------------------
    try:
        images.update(image_id=image["id"], body={"name": "mine now"})
        raise Mismatch("renaming a public image should fail")
    except HttpResponseError as err:
        check(err.status_code == 403, "renaming a public image is 403", err.status_code)
        check(error_body(err)["id"] == "forbidden", "403 body id is forbidden")

    try:
        images.create_custom(body={"name": "bad", "url": "https://example.com/x.img", "region": "mars1"})
        raise Mismatch("an unknown region should be refused")
    except HttpResponseError as err:
        check(err.status_code == 422, "an unknown region is 422", err.status_code)
        body = error_body(err)
        check(body["id"] == "unprocessable_entity" and "region" in body["message"], "422 names the field", body)

    try:
        images_of("dop_v1_" + "0" * 64, url).list()
        raise Mismatch("a wrong token should be refused")
    except ClientAuthenticationError as err:
        check(err.status_code == 401, "a wrong token is 401", err.status_code)
        body = error_body(err)
        check(body == {**body, "id": "unauthorized", "message": "Unable to authenticate you."}, "DigitalOcean's 401 body", body)


def main():
    url = os.environ.get("TIDEPOOL_URL") or (sys.argv[1] if len(sys.argv) > 1 else None)
    token = os.environ.get("TIDEPOOL_TOKEN") or (sys.argv[2] if len(sys.argv) > 2 else None)
    if not url or not token:
        print("usage: TIDEPOOL_URL=... TIDEPOOL_TOKEN=... pydo_session.py", file=sys.stderr)
        return 2
    try:
        session(url, token)
    except Mismatch as mismatch:
        print(f"MISMATCH after {CHECKS} checks: {mismatch}", file=sys.stderr)
        return 1
    except HttpResponseError as err:
        body = err.response.text() if err.response is not None else ""
        print(f"UNEXPECTED HTTP ERROR after {CHECKS} checks: {err.status_code} {body}", file=sys.stderr)
        return 1
    print(f"pydo {pydo.__version__ if hasattr(pydo, '__version__') else ''}: {CHECKS} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
