"""The command line: `python -m juhe edit | batch | info | simulator`.

    python -m juhe edit cat.jpg --prompt "把小猫换成小狗" --out edited
    python -m juhe edit photo.jpg --mask mask.png --prompt "把天空换成晚霞"
    python -m juhe edit cat.jpg --prompt "转成水彩画风格" --variants 3
    python -m juhe batch photos/ --prompt "转成水彩画风格" -j 4 --size original
    python -m juhe info edited/JH123.png
    python -m juhe simulator --port 8765

Settings come from JUHE_API_KEY, JUHE_API_URL, JUHE_TIMEOUT (the environment, then `.env`).
Exit status: 0 success, 1 an edit failed, 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ._batch import (
    ACCOUNT_ERRORS,
    DONE,
    FAILED,
    MAX_VARIANTS,
    Batch,
    BatchItem,
    edit_variants,
    finished_results,
)
from ._client import AsyncImageEditClient, ImageEditClient
from ._config import Settings
from ._exceptions import ConfigError, JuheError
from ._models import EditResult
from ._precise import PROVIDER_SUFFIX
from ._provenance import AIGC_FIELDS, read_provenance
from ._request import MAX_IMAGES, MAX_SIDE, MIN_SIDE, ORIGINAL_SIZE, is_original, parse_size
from ._urls import is_http_url
from ._version import __version__

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # argparse exits 2 on bad arguments
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"})
MAX_JOBS = 32
MAX_INFO_BYTES = 256 * 1024 * 1024  # `info` reads a whole file; a 50-MP RGBA PNG of noise is 200 MB
SIMULATOR_URL = "http://127.0.0.1:8765/image_edit/edit"  # where `juhe simulator` listens by default
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

EDIT_EXAMPLES = """examples:
  python -m juhe edit cat.jpg --prompt "把图中的小猫换成小狗"
  python -m juhe edit a.png b.png --prompt "把图1的人物放进图2的场景" --size 1024*1024
  python -m juhe edit cat.jpg --prompt "make it a watercolour" --out edited --json
  python -m juhe edit photo.jpg --mask mask.png --prompt "把天空换成晚霞"
  python -m juhe edit IMG_0001.HEIC --prompt "转成油画风格" --size original
  python -m juhe edit cat.jpg --prompt "转成水彩画风格" --variants 3

--variants N (1-4): N edits of the same input sent at once, each billed; each result is saved and
printed as it arrives, and a failed one is reported on its own without stopping the others.
--mask: an image the size of 图1 (once upright), white (or opaque) where it may change; only
that region changes, and the result has 图1's exact size. --size original: the result at 图1's
exact size. Both keep the provider's own image beside the result (<name>_provider.<ext>).
"""
BATCH_EXAMPLES = """examples:
  python -m juhe batch photos/ --prompt "转成水彩画风格" --out edited -j 4
  python -m juhe batch a.jpg b.jpg more/ --prompt "remove the background" --size 1024*1024
  python -m juhe batch photos/ --prompt "转成水彩画风格" --size original

Run the same command again to resume: inputs whose result and sidecar are already in --out are
skipped. A result is named <input name>-<tag>, the tag hashing the input's full path with the
prompt, size and model, so a new prompt gives new results.
"""
MAIN_EXAMPLES = """examples:
  python -m juhe edit cat.jpg --prompt "把图中的小猫换成小狗"
  python -m juhe edit photo.jpg --mask mask.png --prompt "把天空换成晚霞"
  python -m juhe batch photos/ --prompt "转成水彩画风格" -j 4
  python -m juhe info outputs/JH123.png    # the AI-content label inside a saved result
  python -m juhe simulator --port 8765    # then JUHE_API_URL=http://127.0.0.1:8765/image_edit/edit

settings: JUHE_API_KEY (required), JUHE_API_URL, JUHE_TIMEOUT, from the environment or .env
exit status: 0 success, 1 an edit failed, 2 bad arguments, 130 interrupted
"""


# ---------------------------------------------------------------- error lines


def error_line(exc: JuheError) -> str:
    """`error CODE: 中文 / English`, CODE being the error's kind (a provider code or a word)."""
    return f"error {exc.kind}: {exc.explanation}"


def load_settings() -> Settings:
    """Settings from the environment and `.env`; raise ConfigError if unusable or keyless."""
    settings = Settings.resolve()
    if not settings.api_key:
        # a first-time user without a key can still try every command: name the simulator too
        raise ConfigError(
            "未配置 API key：请设置 JUHE_API_KEY，或先用本地模拟器试用",
            "no API key: set JUHE_API_KEY in the environment or a .env file, or try the local simulator: "
            f"run `{program_name()} simulator` in another terminal, then "
            f"JUHE_API_URL={SIMULATOR_URL} JUHE_API_KEY=test",
            kind="key",
        )
    return settings


# ---------------------------------------------------------------- argument types


def size_arg(text: str) -> str:
    """argparse type: `W*H` (or `WxH`, `auto`) with sides in [512, 2048], or `original`."""
    if is_original(text):
        return ORIGINAL_SIZE
    try:
        return parse_size(text)
    except JuheError as exc:
        raise argparse.ArgumentTypeError(exc.explanation) from None


def prompt_arg(text: str) -> str:
    """argparse type: a prompt that is not blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("提示词不能为空 / the prompt must not be empty")
    return text


def jobs_arg(text: str) -> int:
    """argparse type: how many calls run at once, 1 to MAX_JOBS."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_JOBS}, got {text!r}")
    return value


def variants_arg(text: str) -> int:
    """argparse type: how many variants an edit makes, 1 to MAX_VARIANTS."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_VARIANTS:
        raise argparse.ArgumentTypeError(
            f"变体数量须为 1 到 {MAX_VARIANTS} 的整数（每个变体单独计费） / "
            f"must be a whole number from 1 to {MAX_VARIANTS} (each variant is billed), got {text!r}"
        )
    return value


def image_arg(text: str) -> str:
    """argparse type: an existing image file or an http(s) link."""
    if is_http_url(text) or Path(text).is_file():
        return text
    raise argparse.ArgumentTypeError(f"找不到图片文件 / no such image file: {text}")


def file_arg(text: str) -> str:
    """argparse type: an existing file (a mask, or a result to read the label of)."""
    if Path(text).is_file():
        return text
    raise argparse.ArgumentTypeError(f"找不到文件 / no such file: {text}")


# ---------------------------------------------------------------- parser


def _add_edit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", "-p", required=True, type=prompt_arg, help="the edit instruction")
    parser.add_argument(
        "--size",
        type=size_arg,
        default="",
        metavar="W*H",
        help=f"output size, each side {MIN_SIDE}-{MAX_SIDE}, or 'original' for 图1's exact size "
        "(default: keep the input's aspect ratio at about 1 MP)",
    )
    parser.add_argument("--model", default="auto", help="model name (default: auto)")
    parser.add_argument(
        "--out", "-o", type=Path, default=Path("outputs"), help="output folder (default: outputs)"
    )


def program_name() -> str:
    """How the command line was started: `juhe` (the installed script) or `python -m juhe`."""
    return "juhe" if Path(sys.argv[0]).name == "juhe" else "python -m juhe"


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m juhe` and its commands."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        # the `juhe` command installed with the package, or `python -m juhe`
        prog=program_name(),
        description="Edit images with the Juhe AI image-edit API (接口 1985).",
        epilog=MAIN_EXAMPLES,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"juhe-image-edit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    edit = commands.add_parser(
        "edit",
        help="edit 1-3 images with one prompt",
        description="Edit 1-3 images with one prompt; print the saved paths (a JSON sidecar sits beside).",
        epilog=EDIT_EXAMPLES,
        formatter_class=raw,
    )
    edit.add_argument("images", nargs="+", type=image_arg, metavar="IMAGE", help="1-3 image files or links")
    _add_edit_options(edit)
    edit.add_argument(
        "--mask",
        type=file_arg,
        metavar="MASK",
        help="a region edit: an image the size of 图1, white or opaque where it may change",
    )
    edit.add_argument(
        "--variants",
        "-n",
        type=variants_arg,
        default=1,
        metavar="N",
        help=f"make N variants at once, 1-{MAX_VARIANTS}, each a billed call (default: 1)",
    )
    edit.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: order id, paths, provider's images, links (one line per variant)",
    )
    edit.set_defaults(handler=run_edit, command_parser=edit)

    batch = commands.add_parser(
        "batch",
        help="edit many images one by one, resumable",
        description="Edit each image on its own, several at a time, with a progress bar on stderr.",
        epilog=BATCH_EXAMPLES,
        formatter_class=raw,
    )
    batch.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders of images")
    _add_edit_options(batch)
    batch.add_argument(
        "-j", "--jobs", type=jobs_arg, default=4, help=f"calls in flight at once, 1-{MAX_JOBS} (default: 4)"
    )
    batch.set_defaults(handler=run_batch, command_parser=batch)

    info = commands.add_parser(
        "info",
        help="print the AI-content label inside saved results",
        description="Print the GB 45438-2025 AIGC label (and the edit's provenance) inside PNG or JPEG "
        "files. Exit status 1 when a file carries none.",
        epilog="examples:\n  python -m juhe info outputs/JH123.png\n  python -m juhe info out/*.jpg --json",
        formatter_class=raw,
    )
    info.add_argument("files", nargs="+", type=file_arg, metavar="FILE", help="saved results")
    info.add_argument("--json", action="store_true", help="one JSON object per file: file, label")
    info.set_defaults(handler=run_info, command_parser=info)

    commands.add_parser(
        "simulator",
        help="serve the local provider simulator (see: simulator --help)",
        add_help=False,
    )
    return parser


# ---------------------------------------------------------------- edit


def run_edit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`edit`: one call, save the result, print its paths (or one JSON object)."""
    if len(args.images) > MAX_IMAGES:
        parser.error(f"an edit takes 1 to {MAX_IMAGES} images, got {len(args.images)}")
    if (args.mask or is_original(args.size)) and is_http_url(args.images[0]):
        parser.error("--mask and --size original need 图1 as a local file, not a link")
    settings = load_settings()
    if args.variants > 1:
        return asyncio.run(edit_several(args, settings))
    with ImageEditClient(settings=settings) as client:
        result = client.edit(args.prompt, args.images, args.size, args.model, mask=args.mask)
        paths = client.download(result, args.out)
    print_saved(result, paths, as_json=args.json)
    return EXIT_OK


def edit_summary(result: EditResult, paths: list[Path]) -> dict:
    """What `edit --json` prints of one saved result."""
    return {
        "order_id": result.order_id,
        "paths": [str(p) for p in paths],
        "provider_paths": [str(p) for path in paths for p in provider_copies(path)],
        "links": result.image_urls,
        "size": result.size,
        "output_size": result.output_size,
        "warnings": result.warnings,
    }


def print_saved(result: EditResult, paths: list[Path], *, as_json: bool, variant: int | None = None) -> None:
    """Warnings on stderr, then the saved paths (or one JSON object, naming the variant) on stdout."""
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if as_json:
        head = {} if variant is None else {"variant": variant}
        print(json.dumps({**head, **edit_summary(result, paths)}, ensure_ascii=False), flush=True)
    else:
        for path in paths:
            print(path, flush=True)


async def edit_several(args: argparse.Namespace, settings: Settings) -> int:
    """`edit --variants N`: N calls at once; save and print each as it arrives, report each failure
    in its own line (with --json, as `{"variant": N, "error": CODE, "message": ...}` too)."""
    failed = 0
    async with AsyncImageEditClient(settings=settings) as client:
        options = {"size": args.size, "model": args.model, "mask": args.mask}
        async for index, outcome in edit_variants(client, args.prompt, args.images, args.variants, **options):
            number = index + 1
            try:
                if isinstance(outcome, JuheError):
                    raise outcome
                paths = await client.download(outcome, args.out)
            except JuheError as exc:
                failed += 1
                print(f"variant {number}/{args.variants}: {error_line(exc)}", file=sys.stderr, flush=True)
                if args.json:
                    failure = {"variant": number, "error": exc.kind, "message": exc.explanation}
                    print(json.dumps(failure, ensure_ascii=False), flush=True)
                continue
            print_saved(outcome, paths, as_json=args.json, variant=number)
    saved = args.variants - failed
    print(f"variants: {saved} saved, {failed} failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def provider_copies(path: Path) -> list[Path]:
    """The provider's own image saved beside a stitched or resized result, if any."""
    escaped = "".join(f"[{c}]" if c in "*?[" else c for c in path.stem)
    return sorted(path.parent.glob(f"{escaped}{PROVIDER_SUFFIX}.*"))


# ---------------------------------------------------------------- info


def _printable(value: object) -> str:
    """A value from a file, safe to print: control characters shown as escapes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def describe_label(record: dict) -> list[str]:
    """The label as lines for a person: the standard's fields, then the edit's."""
    label = record.get("AIGC", {})
    kind = "AI-generated / 人工智能生成" if label.get("Label") == "1" else f"Label {label.get('Label')!r}"
    lines = [f"AIGC label (GB 45438-2025): {_printable(kind)}"]
    lines += [f"  {name:<18} {_printable(label.get(name) or '-')}" for name in AIGC_FIELDS[1:]]
    ours = {key: value for key, value in record.items() if key != "AIGC"}
    if ours:
        lines.append("edit / 编辑：")
    names = {"order_id": "order id", "inputs_sha256": "inputs", "output_size": "output size"}
    for key, value in ours.items():
        if key == "size" and not value:  # an auto-size edit records "" (the provider chose the size)
            value = "auto (the provider's choice / 服务商自选)"
        if key == "inputs_sha256" and isinstance(value, list):
            for number, digest in enumerate(value, start=1):
                shown = _printable(digest) if digest else "- (a link or a PIL image)"
                lines.append(f"  {'inputs' if number == 1 else '':<12} 图{number} sha256 {shown}")
        else:
            lines.append(f"  {names.get(key, key):<12} {_printable(value)}")
    return lines


def run_info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`info`: print the label inside each file; exit 1 if one has none."""
    missing = 0
    for name in args.files:
        path = Path(name)
        size = path.stat().st_size
        if size > MAX_INFO_BYTES:
            parser.error(f"{name} is {size} bytes; at most {MAX_INFO_BYTES} are read")
        record = read_provenance(path)
        missing += record is None
        if args.json:
            print(json.dumps({"file": name, "label": record}, ensure_ascii=False))
            continue
        if len(args.files) > 1:
            print(f"{_printable(name)}:")
        if record is None:
            print(f"no AIGC label / 没有 AIGC 标识：{_printable(name)}")
        else:
            print("\n".join(describe_label(record)))
    return EXIT_FAILED if missing else EXIT_OK


# ---------------------------------------------------------------- batch: inputs and names


def collect_inputs(paths: Sequence[str], out_dir: Path) -> list[Path]:
    """Files as given plus the images directly inside folders, without duplicates, in order."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if path.resolve() == out_dir.resolve():
                raise ValueError(
                    f"--out must not be an input folder (its results would become inputs): {raw}"
                )
            items = sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
        elif path.is_file():
            items = [path]
        else:
            raise ValueError(f"no such file or folder: {raw}")
        for item in items:
            if item.resolve() not in seen:
                seen.add(item.resolve())
                found.append(item)
    return found


# ---------------------------------------------------------------- batch: progress


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _rate(per_second: float) -> str:
    if not per_second:
        return "-/s"
    return f"{per_second:.1f}/s" if per_second >= 1 else f"{per_second * 60:.1f}/min"


class Progress:
    """A one-line progress bar: done/total, percent, rate, elapsed, ETA and failures; a sink of the
    batch engine (`item_changed`).

    On a terminal it redraws in place; otherwise it writes one line per finished input.
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self.tty = self.stream.isatty()

    def render(self) -> str:
        """The bar as text."""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if self.done and elapsed > 0 else 0.0
        filled = self.width * self.done // self.total if self.total else self.width
        percent = 100 * self.done // self.total if self.total else 100
        eta = _clock((self.total - self.done) / rate) if rate else "-:--"
        line = (
            f"[{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} {percent:3d}% "
            f"{_rate(rate)} elapsed {_clock(elapsed)} ETA {eta}"
        )
        return line + (f" ({self.failed} failed)" if self.failed else "")

    def draw(self) -> None:
        """Show the bar (in place on a terminal)."""
        self.stream.write(f"\r{self.render()}\x1b[K" if self.tty else self.render() + "\n")
        self.stream.flush()

    def advance(self, ok: bool) -> None:
        """Count one finished input and redraw."""
        self.done += 1
        self.failed += not ok
        self.draw()

    def item_changed(self, item: BatchItem) -> None:
        """A batch item changed state: count it once it is done or failed (resumed ones are not
        this run's work)."""
        if item.status in (DONE, FAILED) and not item.resumed:
            self.advance(ok=item.status == DONE)

    def close(self) -> None:
        """End the bar's line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- batch: running


async def edit_all(
    batch: Batch, items: list[BatchItem], args: argparse.Namespace, settings: Settings
) -> None:
    """Edit every item, `args.jobs` at a time, the progress bar as the sink; stop starting new ones
    after an account error."""
    progress = Progress(len(items))
    ticker = asyncio.ensure_future(_tick(progress)) if progress.tty else None
    try:
        async with AsyncImageEditClient(settings=settings) as client:
            await batch.run(
                client,
                items,
                args.prompt,
                size=args.size,
                model=args.model,
                concurrency=args.jobs,
                out_dir=args.out,
                sink=progress,
                stop_on=ACCOUNT_ERRORS,
            )
    finally:
        if ticker is not None:
            ticker.cancel()
        progress.close()


async def _tick(progress: Progress) -> None:
    """Redraw once a second on a terminal, so elapsed time moves during long calls."""
    while True:
        progress.draw()
        await asyncio.sleep(1.0)


def run_batch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`batch`: skip finished inputs, edit the rest concurrently, summarise; resumable."""
    try:
        inputs = collect_inputs(args.paths, args.out)
    except ValueError as exc:
        parser.error(str(exc))
    if not inputs:
        parser.error("no images found (folders are searched for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    settings = load_settings()
    jobs = [BatchItem.for_input(path, args.prompt, args.size, args.model) for path in inputs]
    done = finished_results(args.out)
    todo = [job for job in jobs if job.stem not in done]
    skipped = len(jobs) - len(todo)
    if not todo:
        print(f"nothing to do: all {len(jobs)} inputs already have results in {args.out}", file=sys.stderr)
        return EXIT_OK
    print(
        f"batch: {len(jobs)} inputs -> {args.out} ({skipped} already done, {len(todo)} to edit, "
        f"{min(args.jobs, len(todo))} at a time)",
        file=sys.stderr,
    )
    batch = Batch()  # made outside the event loop: what it did survives Ctrl-C
    started = time.monotonic()
    try:
        asyncio.run(edit_all(batch, todo, args, settings))
    except KeyboardInterrupt:
        print_summary(batch, skipped, time.monotonic() - started, interrupted=True, out_dir=args.out)
        return EXIT_INTERRUPTED
    print_summary(batch, skipped, time.monotonic() - started)
    return EXIT_FAILED if batch.counts()[FAILED] else EXIT_OK


def print_summary(
    batch: Batch,
    skipped: int,
    elapsed: float,
    *,
    interrupted: bool = False,
    out_dir: Path | None = None,
) -> None:
    """The closing lines on stderr: counts, then each failure with its code."""
    failed = [item for item in batch.items if item.status == FAILED]
    edited = sum(1 for item in batch.items if item.status == DONE and not item.resumed)
    abandoned = 0
    if interrupted and out_dir is not None:
        # a result being written when Ctrl-C came was finished by its thread before exit
        finished = finished_results(out_dir)
        edited += sum(1 for item in batch.abandoned if item.stem in finished)
        abandoned = sum(1 for item in batch.abandoned if item.stem not in finished)
    not_started = len(batch.items) - edited - len(failed) - abandoned
    head = "interrupted" if interrupted else "finished"
    line = f"{head} after {_clock(elapsed)}: {edited} edited, {skipped} skipped (already done), "
    line += f"{len(failed)} failed"
    if not_started:
        line += f", {not_started} not started"
    print(line, file=sys.stderr)
    if abandoned:
        calls = "1 call in flight was" if abandoned == 1 else f"{abandoned} calls in flight were"
        print(f"{calls} abandoned; the provider may still bill them", file=sys.stderr)
    if batch.stopped_by is not None:
        print(f"stopped early after {error_line(batch.stopped_by)}", file=sys.stderr)
    for item in sorted(failed, key=lambda item: str(item.input)):
        print(f"failed {item.input}: error {item.error_code}: {item.error}", file=sys.stderr)
    if interrupted or failed:
        print("run the same command again to resume (finished results are skipped)", file=sys.stderr)


# ---------------------------------------------------------------- entry point


def run_simulator(argv: Sequence[str]) -> int:
    """`simulator`: the same as `python -m juhe.simulator`, its usage line named as it was called."""
    from .simulator import main as simulator_main

    simulator_main(list(argv), prog=f"{program_name()} simulator")
    return EXIT_OK


def _tolerant_streams() -> None:
    """Never crash printing 中文 to a terminal that cannot show it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _tolerant_streams()
    if argv[:1] == ["simulator"]:
        return run_simulator(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, args.command_parser)
    except JuheError as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted / 已中断", file=sys.stderr)
        return EXIT_INTERRUPTED
