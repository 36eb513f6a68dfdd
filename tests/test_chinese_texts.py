"""Every Chinese text the app and `juhe` can show follows one punctuation and spacing rule.

The rule, for the Chinese part of a text (Chinese readers expect it; half-width marks inside Chinese
sentences read as typos):

1. Inside Chinese, the marks are full-width: ， ： ； ！ ？ and （ ）. A half-width , : ; ! ? is wrong
   next to a Chinese character; half-width ( ) are wrong around Chinese words or right after one.
   Code, links, placeholders and English sentences (Chinese quoted in them too) keep their ASCII
   (`handle_file()`, `http(s)`, `data:image/...;base64`, `{n}`, "the API (接口 1985)").
2. One space between Chinese characters and Latin letters or digits; none between two Chinese
   characters and none beside a full-width mark. A `{placeholder}` is spaced as what it stands for.
3. The image names 图1, 图2, 图3 (and 图{n}) are one Chinese word: no space inside, and, like any
   Chinese word, none between them and the Chinese around them.

The texts are read from the source (every string literal with a Chinese character, docstrings and
comments aside, which are for developers), so a text added later is held to the rule too; the
README's Chinese lines as well.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The simulator repeats the provider's own wire texts verbatim (it imitates the provider, whose
# words are not ours to restyle); everything else a person can read is ours.
SOURCES = sorted(
    path
    for path in [ROOT / "app.py", *ROOT.glob("webapp/**/*.py"), *ROOT.glob("juhe/*.py")]
    if path.name != "simulator.py"
)
HAN = "\u3400-\u4dbf\u4e00-\u9fff"
FULL = "，：；！？（）。、「」《》"
CODE = re.compile(
    r"`[^`]*`"  # a code span
    r"|https?://\S+|http\(s\)|data:image/\S*"  # links and link forms
    r"|[A-Za-z_][\w.]*\(\)"  # a call, e.g. handle_file()
)
IMAGE_NAME = re.compile(r"图(?:[123]|\{\w*\})")
RULES = [
    (re.compile(rf"[{HAN}][,:;!?]|[,:;!?][{HAN}]"), "half-width , : ; ! ? next to Chinese"),
    (re.compile(rf"\([^()]*[{HAN}][^()]*\)"), "half-width ( ) around Chinese"),
    (re.compile(rf"[{HAN}{FULL}] ?\("), "half-width ( after Chinese"),
    (re.compile(rf"[{HAN}][A-Za-z0-9]|[A-Za-z0-9][{HAN}]"), "no space between Chinese and Latin/digits"),
    (re.compile(rf"[{HAN}] {{2,}}[A-Za-z0-9]|[A-Za-z0-9] {{2,}}[{HAN}]"), "more than one space"),
    (re.compile(rf"[{HAN}] +[{HAN}]"), "a space between Chinese characters"),
    (re.compile(rf"[{FULL}] +[\w{HAN}{{]|[\w{HAN}}}] +[{FULL}]"), "a space beside a full-width mark"),
]


SEPARATOR = re.compile(r" / | · |\n")  # "中文 / English", "错误 · Error", lines: each apart
# three Latin words in a row: an English sentence, whose Chinese asides ("the API (接口 1985)", 'e.g.
# "把图1中的人放进图2的场景"') follow English punctuation
ENGLISH = re.compile(r"[A-Za-z][\w'-]*(?:[ ,;:.()]+[A-Za-z][\w'-]*){2}")


def problems(text: str) -> list[str]:
    """What in `text` breaks the rule (empty when nothing does). Only its Chinese parts are held to
    it: an English part that names 图1 is English."""
    found = []
    for part in SEPARATOR.split(CODE.sub("x", text)):  # code keeps its ASCII and counts as Latin
        if not re.search(f"[{HAN}]", IMAGE_NAME.sub("", part)) or ENGLISH.search(part):
            continue
        part = IMAGE_NAME.sub("图图", part)  # 图1 is a Chinese word
        found += [f"{why}: {match.group()!r}" for pattern, why in RULES for match in pattern.finditer(part)]
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _placeholder(part: ast.AST) -> str:
    """The name of an f-string's value as the text's reader would see a placeholder: `{n}`; a call
    such as `{t("原图", "Before")}` is a value like any other (its own literals are scanned)."""
    value = part.value if isinstance(part, ast.FormattedValue) else part
    return ast.unparse(value) if isinstance(value, (ast.Name, ast.Attribute)) else "value"


def _patterns(tree: ast.AST) -> set[int]:
    """Regular expressions (the arguments of `re.*` calls): what they match is not a text."""
    found = set()
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if call and isinstance(node.func.value, ast.Name) and node.func.value.id == "re":
            found.update(id(arg) for arg in node.args)
    return found


def _text(node: ast.AST) -> str | None:
    """A string literal as the reader sees it, f-string values as `{name}`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{" + _placeholder(part) + "}"
            for part in node.values
        )
    return None


def source_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal in `path` with a Chinese character, docstrings aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | _patterns(tree)
    inner = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    texts = []
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inner:
            continue
        text = _text(node)
        if text and re.search(f"[{HAN}]", text):
            texts.append((node.lineno, text))
    return texts


def readme_lines() -> list[tuple[int, str]]:
    """The README's lines with Chinese, outside code blocks."""
    lines, code = [], False
    for number, line in enumerate((ROOT / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            code = not code
        elif not code and re.search(f"[{HAN}]", line):
            lines.append((number, line))
    return lines


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_chinese_text_in_the_source_follows_the_rule(path: Path):
    found = [f"{path.name}:{line}: {why}" for line, text in source_texts(path) for why in problems(text)]
    assert not found, "\n".join(found)


def test_the_readme_chinese_lines_follow_the_rule():
    found = [f"README.md:{line}: {why}" for line, text in readme_lines() for why in problems(text)]
    assert not found, "\n".join(found)


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_the_scan_reaches_the_texts_people_read():
    """The scan is not vacuous: it sees the page's, the runtime's, the CLI's and juhe's texts."""
    from juhe._exceptions import ERROR_CODES
    from webapp.texts import ERRORS, RUNTIME, ZH

    scanned = {text for path in SOURCES for _, text in source_texts(path)}
    assert ZH["subtitle"] in scanned and RUNTIME["cancelled"][0] in scanned and ERRORS["logins"][0] in scanned
    assert ERROR_CODES[10005][1] in scanned
    assert any("AIGC" in text for _, text in source_texts(ROOT / "juhe" / "cli.py"))
    assert readme_lines()


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("图1 是要编辑的图片, 图2 可选", True),  # half-width comma, a space after 图1
        ("例如: 把图中的小猫换成小狗", True),
        ("自动 (保持原图比例)", True),
        ("宽 ({MIN_SIDE}–{MAX_SIDE})", True),
        ("上传1到3张图片", True),
        ("图{n}为空", False),
        ("上传 1 到 3 张图片（图1 是要编辑的图片）", True),  # 图1 beside Chinese takes no space
        ("上传 1 到 3 张图片（图1是要编辑的图片，图2、图3可选）", False),
        ("curl (服务方接口)", True),  # a Chinese label: its aside is Chinese too
        ("Edit images with the Juhe AI image-edit API (接口 1985).", False),  # an English sentence
        ("用 handle_file() 上传的文件", False),
        ("公开的 http(s) 链接", False),
        ("请 {wait} 秒后再试", False),
        ("error io: 读写文件失败 / file error: {exc}", False),
    ],
)
def test_the_rule_itself(text: str, broken: bool):
    assert bool(problems(text)) is broken, problems(text)
