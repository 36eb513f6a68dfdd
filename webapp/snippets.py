"""The page's "API call" panel: the edit just made, as code a developer can run.

Pure text: every value is quoted for its language (`shlex.quote` for the shell, `repr` for Python),
and no key ever appears, not even the visitor's own: the snippets read `$JUHE_API_KEY`.

Each snippet runs as copied, in a folder holding the files it names, and saves an image. In the
offline preview there is no provider to call: the curl and `juhe` snippets then target the local
simulator (`python -m juhe simulator`, which the reader starts) and say so in their first lines.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePath

from juhe import is_http_url

SIMULATOR_URL = "http://127.0.0.1:8765/image_edit/edit"  # where `python -m juhe simulator` listens
SIMULATOR_KEY = "simulator"  # the simulator takes any non-empty key
INSTALL = "pip install . in this project's checkout (see the README)"


@dataclass(frozen=True)
class Call:
    """One edit as it was sent: images as links or as the names of the files the visitor chose."""

    prompt: str
    images: tuple[str, ...]
    mimes: tuple[str | None, ...]  # each file image's type, None for a link
    size: str  # "" keeps the aspect ratio
    model: str
    endpoint: str  # the provider's edit endpoint
    app_url: str  # this app, for gradio_client
    own_key: bool = False  # the visitor edited with their own key
    original: bool = False  # the result was brought to 图1's exact size
    region: dict | None = None  # a region edit's plan: what the app sent instead of the whole 图1
    offline: bool = False  # the app is an offline preview: no provider, no key


def _preamble(call: Call, names: list[str], python: bool) -> list[str]:
    """The snippet's first comment lines: what it targets, what to start and install, which files."""
    lines = []
    if python:
        lines.append(f"# needs the juhe package: {INSTALL}")
    if call.offline:
        lines += [
            "# Offline preview: this calls the local simulator, not the provider (simulated results).",
            "# Start it first in another terminal: python -m juhe simulator"
            + ("" if python else f"  (needs the juhe package: {INSTALL})"),
        ]
    else:
        lines.append("# Calls the provider: set JUHE_API_KEY to your key first (never paste it here).")
    files = [name for name in names if not is_http_url(name)]
    if files:
        lines.append(f"# Run it in a folder holding {', '.join(files)}.")
    return lines


def file_names(paths: list[str]) -> tuple[str, ...]:
    """What each image is called in the snippets: a link as it is, a file by its own name (made
    unique when two different files share one)."""
    names: list[str] = []
    for number, path in enumerate(paths, start=1):
        if is_http_url(path):
            names.append(path)
            continue
        name = PurePath(path).name or f"image{number}"
        if name in names:
            name = f"{PurePath(name).stem}-{number}{PurePath(name).suffix}"
        names.append(name)
    return tuple(names)


def curl(call: Call) -> str:
    """The provider's own API with curl. A file image is written as a data URI to a file first and
    sent with `--data-urlencode name@file`: a base64 argument breaks above about 128 KiB."""
    lines = []
    fields = [("key", None), ("text", call.prompt)]
    images, mimes = list(call.images), list(call.mimes)
    if call.region:  # the provider got the crop of 图1, not 图1
        images[0], mimes[0] = "image1-crop.png", "image/png"
    for number, (image, mime) in enumerate(zip(images, mimes, strict=True), start=1):
        if mime is None:
            fields.append((f"image{number}", image))
            continue
        holder = f"image{number}.txt"
        lines.append(
            f"{{ printf 'data:{mime};base64,'; base64 < {shlex.quote(image)} | tr -d '\\n'; }} > {holder}"
        )
        fields.append((f"image{number}@", holder))
    if call.size:
        fields.append(("size", call.size))
    fields.append(("model", call.model))
    endpoint = SIMULATOR_URL if call.offline else call.endpoint
    command = [f"curl -sS --max-time 90 {shlex.quote(endpoint)}"]
    for name, value in fields:
        if value is None and call.offline:
            command.append(f"--data-urlencode key={SIMULATOR_KEY}")
        elif value is None:
            command.append('--data-urlencode "key=$JUHE_API_KEY"')
        elif name.endswith("@"):
            command.append(f"--data-urlencode {shlex.quote(name + value)}")
        else:
            command.append(f"--data-urlencode {shlex.quote(f'{name}={value}')}")
    if lines:
        lines.insert(0, "# each image file as a data URI in a file (curl reads it, so large photos work)")
    if call.region:
        box = ",".join(str(v) for v in call.region.get("crop_box", ()))
        lines[:0] = [
            "# A region edit: this page did more than one call's worth of work. It cut 图1 to the box",
            f"# {box} (left,top,right,bottom) around the painted area (image1-crop.png below), sent",
            "# that crop as image1, then scaled the answer back and pasted it into 图1 through the painted",
            "# mask. The juhe client below does all of it with mask=.",
        ]
    elif call.original:
        lines[:0] = ["# size=original: the answer (at the size below) was then resized to 图1's exact size."]
    command.append("-o answer.json")
    names = [name for name, mime in zip(images, mimes, strict=True) if mime is not None]
    lines[:0] = _preamble(call, names, python=False)
    download = [
        "# the answer's image link, downloaded at once (links expire after 24 h); an error is printed",
        """url=$(sed -n 's/.*"image": *"\\([^"]*\\)".*/\\1/p' answer.json | sed 's#\\\\/#/#g')""",
        'if [ -n "$url" ]; then curl -sS --max-time 90 -o result.png "$url" && echo result.png;'
        " else cat answer.json; fi",
    ]
    return "\n".join([*lines, " \\\n  ".join(command), *download]) + "\n"


def python_client(call: Call) -> str:
    """The same edit with this project's `juhe` client."""
    arguments = [repr(call.prompt), repr(list(call.images))]
    if call.region:
        arguments.append("mask='mask.png'")  # the painted area, white; the size of 图1
    elif call.original:
        arguments.append("size='original'")
    elif call.size:
        arguments.append(f"size={call.size!r}")
    arguments.append(f"model={call.model!r}")
    body = "".join(f"        {argument},\n" for argument in arguments)
    names = [*call.images, "mask.png"] if call.region else list(call.images)
    head = "".join(line + "\n" for line in _preamble(call, names, python=True))
    if call.offline:
        opening = f"with ImageEditClient(api_key={SIMULATOR_KEY!r}, api_url={SIMULATOR_URL!r}) as client:\n"
    else:
        opening = "with ImageEditClient() as client:  # JUHE_API_KEY from the environment or .env\n"
    return (
        f"{head}from juhe import ImageEditClient\n\n"
        f"{opening}"
        f"    result = client.edit(\n{body}    )\n"
        "    print(client.download(result, 'outputs'))  # the image(s) and a JSON sidecar\n"
    )


def gradio_client(call: Call) -> str:
    """The same edit through this app's `edit` endpoint."""
    arguments = []
    for number, image in enumerate(call.images, start=1):
        value = repr(image) if is_http_url(image) else f"handle_file({image!r})"
        arguments.append(f"image{number}={value}")
    arguments.insert(1, f"prompt={call.prompt!r}")
    arguments.append(f"size={'original' if call.original else (call.size or 'auto')!r}")
    arguments.append(f"model={call.model!r}")
    if call.own_key:
        arguments.append('api_key=os.environ["JUHE_API_KEY"]')
    if call.region:
        arguments.append("mask=handle_file('mask.png')")
    arguments.append("api_name='/edit'")
    body = "".join(f"    {argument},\n" for argument in arguments)
    files = [name for name in call.images if not is_http_url(name)] + (["mask.png"] if call.region else [])
    notes = ["# needs: pip install gradio_client; calls this app's edit endpoint"]
    if call.offline:
        notes.append("# (an offline preview: the results are simulated)")
    if files:
        notes.append(f"# Run it in a folder holding {', '.join(files)}.")
    head = "\n".join(notes) + "\n" + ("import os\n\n" if call.own_key else "")
    return (
        f"{head}from gradio_client import Client, handle_file\n\n"
        f"client = Client({call.app_url.rstrip('/') + '/'!r})\n"
        f"image, record = client.predict(\n{body})\n"
        "print(image, record)\n"
    )
