"""The page's "API call" panel: the edit just made, as code a developer can run.

Pure text: every value is quoted for its language (`shlex.quote` for the shell, `repr` for Python),
and no key ever appears, not even the visitor's own: the snippets read `$JUHE_API_KEY`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import PurePath

from juhe import is_http_url


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
    command = [f"curl -sS --max-time 90 {shlex.quote(call.endpoint)}"]
    for name, value in fields:
        if value is None:
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
    return "\n".join([*lines, " \\\n  ".join(command)]) + "\n"


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
    return (
        "from juhe import ImageEditClient\n\n"
        "with ImageEditClient() as client:  # JUHE_API_KEY (and JUHE_API_URL) from the environment or .env\n"
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
    head = "import os\n\n" if call.own_key else ""
    return (
        f"{head}from gradio_client import Client, handle_file\n\n"
        f"client = Client({call.app_url.rstrip('/') + '/'!r})\n"
        f"image, record = client.predict(\n{body})\n"
        "print(image, record)\n"
    )
