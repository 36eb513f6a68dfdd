"""The gate (`webapp.gate`) on its own: which raw values of an event it admits, by component type, and
the registry of issued files it consults (`Issued`). No app, no server, a fake clock."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from helpers.apphost import is_bilingual

from webapp.gate import (
    MAX_BLOB_ID,
    MAX_DEPTH,
    MAX_FILES,
    MAX_IDS,
    MAX_LAYERS,
    MAX_NUMBER,
    MAX_TEXT,
    Gate,
    Issued,
)

SESSION, OTHER_SESSION = "session-a", "session-b"
VISITOR, OTHER_VISITOR = "203.0.113.1", "203.0.113.2"


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(*blocks, name: str = "fn") -> SimpleNamespace:
    """What the gate reads of a Gradio `BlockFunction`."""
    return SimpleNamespace(inputs=list(blocks), component_prop_inputs=[], batch=False, name=name, fn=print)


def file_data(path: str, **fields) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **fields}


@pytest.fixture
def paths(tmp_path):
    """Paths in a cache folder: `given` issued to SESSION, `uploaded` by VISITOR, `public` to all."""
    names = ("given", "uploaded", "public", "stranger")
    return SimpleNamespace(**{name: str(tmp_path / f"{name}.png") for name in names})


@pytest.fixture
def gate(paths):
    issued = Issued(public=lambda: [paths.public])
    issued.issue(SESSION, [paths.given])
    issued.upload(VISITOR, [paths.uploaded])
    return Gate(issued, visitor=lambda request: request)  # the request stands for its visitor key


def check(gate: Gate, block, value, session: str = SESSION, visitor: str | None = VISITOR):
    return gate.check(event(block), [value], session, visitor)[0]


def refused(gate: Gate, block, value, session: str = SESSION, visitor: str | None = VISITOR) -> str:
    with pytest.raises(gr.Error) as info:
        check(gate, block, value, session, visitor)
    assert is_bilingual(info.value.message) and "Value 1 of this request" in info.value.message
    return info.value.message


# --- files --------------------------------------------------------------------------------------


def test_a_file_is_admitted_only_when_issued_uploaded_or_public(gate, paths):
    image = gr.Image()
    assert check(gate, image, file_data(paths.given))["path"] == paths.given
    assert check(gate, image, file_data(paths.uploaded))["path"] == paths.uploaded
    assert check(gate, image, file_data(paths.public), OTHER_SESSION, OTHER_VISITOR)["path"] == paths.public
    assert "not a file this page was given" in refused(gate, image, file_data(paths.stranger))
    # another session does not get SESSION's output, another visitor not VISITOR's upload
    refused(gate, image, file_data(paths.given), OTHER_SESSION, OTHER_VISITOR)
    refused(gate, image, file_data(paths.uploaded), OTHER_SESSION, OTHER_VISITOR)
    refused(gate, image, file_data(paths.uploaded), "session-c", None)  # no visitor named: not theirs


def test_a_path_is_compared_in_one_spelling(gate, paths, tmp_path):
    dotted = str(tmp_path / "sub" / ".." / "given.png")
    assert check(gate, gr.Image(), file_data(dotted))["path"] == dotted
    refused(gate, gr.Image(), file_data(str(tmp_path / "given.png" / ".." / "stranger.png")))


def test_an_upload_a_session_sends_is_issued_to_it(gate, paths):
    check(gate, gr.Image(), file_data(paths.uploaded), OTHER_SESSION, VISITOR)
    # the same session, now from another address (a phone changing networks): still its file
    assert check(gate, gr.Image(), file_data(paths.uploaded), OTHER_SESSION, OTHER_VISITOR)


@pytest.mark.parametrize(
    "value",
    [
        {"url": "https://example.org/cat.png", "meta": {"_type": "gradio.FileData"}},
        {"url": "data:image/png;base64,iVBORw0KGgo=", "meta": {"_type": "gradio.FileData"}},
        {"path": "", "url": "data:image/png;base64,iVBORw0KGgo="},
        {"path": None},
        {"path": 3},
        "data:image/png;base64,iVBORw0KGgo=",
        ["/tmp/x.png"],
    ],
    ids=["link", "data url", "empty path", "None path", "number path", "bare data url", "list"],
)
def test_a_file_without_an_issued_path_is_refused(gate, value):
    refused(gate, gr.Image(), value)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("https://example.org/cat.png", "send links as plain strings"),
        ("data:image/png;base64,iVBORw0KGgo=", "not a file this page was given"),
    ],
)
def test_a_link_or_data_url_as_path_is_refused(gate, path, why):
    assert why in refused(gate, gr.Image(), file_data(path))


def test_an_admitted_file_is_rebuilt_without_its_url(gate, paths):
    sent = file_data(
        paths.given,
        url="data:image/png;base64,AAAA",
        orig_name="cat.png",
        mime_type="image/png",
        is_stream=True,
        size=10**12,
    )
    assert check(gate, gr.Image(), sent) == {
        "path": paths.given,
        "meta": {"_type": "gradio.FileData"},
        "orig_name": "cat.png",
        "mime_type": "image/png",
    }
    long_name = check(gate, gr.Image(), file_data(paths.given, orig_name="x" * 256, mime_type=7))
    assert "orig_name" not in long_name and "mime_type" not in long_name


def test_no_image_is_none(gate):
    assert check(gate, gr.Image(), None) is None


# --- the region editor ---------------------------------------------------------------------------


def test_an_editor_value_within_the_rules_is_admitted(gate, paths):
    value = {
        "background": file_data(paths.given, url="https://example.org/x"),
        "layers": [file_data(paths.uploaded), None],
        "composite": None,
        "id": "a" * MAX_BLOB_ID,
    }
    clean = check(gate, gr.ImageEditor(), value)
    assert clean["id"] == "a" * MAX_BLOB_ID and clean["composite"] is None
    assert clean["background"] == {"path": paths.given, "meta": {"_type": "gradio.FileData"}}
    assert clean["layers"] == [{"path": paths.uploaded, "meta": {"_type": "gradio.FileData"}}, None]
    assert check(gate, gr.ImageEditor(), None) is None
    assert check(gate, gr.ImageEditor(), {"id": "blob-1"}) == {
        "id": "blob-1",
        "layers": [],
        "background": None,
        "composite": None,
    }
    assert check(gate, gr.ImageEditor(), {"layers": [None] * MAX_LAYERS})["layers"] == [None] * MAX_LAYERS


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({"layers": [None] * (MAX_LAYERS + 1)}, f"at most {MAX_LAYERS} layers"),
        ({"layers": {"0": None}}, f"at most {MAX_LAYERS} layers"),
        ({"id": "a" * (MAX_BLOB_ID + 1)}, "a painting's id expected"),
        ({"id": 7}, "a painting's id expected"),
        ({"background": None, "extra": 1}, "a painting expected"),
        ("data:image/png;base64,AAAA", "a painting expected"),
        ({"background": {"url": "data:image/png;base64,AAAA"}}, "not a link or data"),
        ({"composite": file_data("/etc/passwd")}, "not a file this page was given"),
        ({"layers": [file_data("/etc/passwd")]}, "not a file this page was given"),
    ],
)
def test_an_editor_value_outside_the_rules_is_refused(gate, value, why):
    assert why in refused(gate, gr.ImageEditor(), value)


# --- text, numbers, choices, examples, the browser's ids -------------------------------------------


def test_text_rules(gate):
    assert check(gate, gr.Textbox(), "x" * MAX_TEXT) == "x" * MAX_TEXT
    assert check(gate, gr.Textbox(), None) is None
    assert check(gate, gr.Code(), "print()") == "print()"
    assert "over" in refused(gate, gr.Textbox(), "x" * (MAX_TEXT + 1))
    assert "text expected" in refused(gate, gr.Textbox(), {"path": "/etc/passwd"})
    assert check(gate, gr.Dropdown(["auto", "1K"]), "1K") == "1K"
    refused(gate, gr.Dropdown(["auto"]), "x" * 257)
    refused(gate, gr.Radio(["a"]), ["a"])


@pytest.mark.parametrize("value", [0, -3, 2.5, MAX_NUMBER, -MAX_NUMBER, None])
def test_finite_numbers_within_the_bound_pass(gate, value):
    assert check(gate, gr.Number(), value) == value
    assert check(gate, gr.Slider(), value) == value


@pytest.mark.parametrize("value", [True, "3", float("nan"), float("inf"), MAX_NUMBER * 10, [1]])
def test_other_numbers_are_refused(gate, value):
    refused(gate, gr.Number(), value)


def test_checkbox_rules(gate):
    assert check(gate, gr.Checkbox(), True) is True and check(gate, gr.Checkbox(), None) is None
    refused(gate, gr.Checkbox(), 1)
    refused(gate, gr.Checkbox(), "true")


def test_an_example_is_chosen_by_its_index_only(gate):
    examples = gr.Dataset(components=[gr.Textbox()], samples=[["one"], ["two"]])
    assert check(gate, examples, 1) == 1
    assert "no such example" in refused(gate, examples, 2)
    assert "no such example" in refused(gate, examples, -1)
    for value in (True, "0", None, {"path": "/etc/passwd"}, 0.0):
        assert "an example's number expected" in refused(gate, examples, value)


def test_the_browsers_ids_keep_only_short_strings(gate):
    ids = gr.BrowserState([])
    assert check(gate, ids, ["a1", 7, None, "x" * 65, "b2", {"path": "/etc/passwd"}]) == ["a1", "b2"]
    assert check(gate, ids, ["id"] * (MAX_IDS + 50)) == ["id"] * MAX_IDS
    assert check(gate, ids, "a1") == [] and check(gate, ids, None) == []


def test_a_state_is_left_to_gradio(gate):
    state = gr.State()
    anything = {"path": "/etc/passwd"}
    assert check(gate, state, anything) is anything  # Gradio takes it from the session instead


def test_a_component_without_a_rule_is_closed(gate):
    for block in (gr.Gallery(), gr.Audio(), gr.JSON(), gr.HTML()):
        assert check(gate, block, None) is None
        assert "takes no value" in refused(gate, block, {"path": "/etc/passwd"})
        refused(gate, block, "text")


# --- file inputs: one file, or a bounded list of them (the batch panel's photos) -------------------


def test_a_multiple_file_input_takes_a_list_of_admitted_files(gate, paths):
    photos = gr.File(file_count="multiple")
    value = [
        file_data(paths.uploaded, orig_name="a.jpg", url="data:image/png;base64,AAAA"),
        file_data(paths.given),
    ]
    admitted = check(gate, photos, value)
    assert [one["path"] for one in admitted] == [paths.uploaded, paths.given]
    assert "url" not in admitted[0] and admitted[0]["orig_name"] == "a.jpg"  # rebuilt: nothing to fetch
    assert check(gate, photos, None) is None and check(gate, photos, []) == []
    assert len(check(gate, photos, [file_data(paths.given)] * MAX_FILES)) == MAX_FILES


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not a list", "a list of at most"),
        ({"path": "x"}, "a list of at most"),
        (True, "a list of at most"),
        ([True], "a file expected"),
        (["/etc/passwd"], "a file expected"),
        ([{"path": "/etc/passwd"}], "not a file this page was given"),
        ([{"path": "https://example.org/a.png"}], "send links as plain strings"),
        ([{"url": "data:image/png;base64,AAAA"}], "not a link or data"),
    ],
    ids=repr,
)
def test_a_multiple_file_input_refuses_anything_else(gate, paths, value, why):
    assert why in refused(gate, gr.File(file_count="multiple"), value)


def test_a_multiple_file_input_is_capped_and_every_item_checked(gate, paths):
    photos = gr.File(file_count="multiple")
    assert "at most 40 files" in refused(gate, photos, [file_data(paths.given)] * (MAX_FILES + 1))
    mixed = [file_data(paths.given)] * 3 + [file_data(paths.stranger)]  # one bad item refuses all
    assert "not a file this page was given" in refused(gate, photos, mixed)


def test_a_single_file_input_takes_one_admitted_file(gate, paths):
    one = gr.File()
    assert check(gate, one, file_data(paths.given))["path"] == paths.given
    assert "not a file this page was given" in refused(gate, one, {"path": "/etc/passwd"})
    assert "a file expected" in refused(gate, one, [file_data(paths.given)])


# --- the public API: any JSON, its files checked -------------------------------------------------


def test_api_values_have_their_files_checked_and_strings_untouched(gate, paths):
    api = _api_block()
    link = "https://example.org/cat.png"
    uri = "data:image/png;base64," + "A" * 1000
    value = {"image1": link, "image2": uri, "n": [1, 2.5, None, True], "file": file_data(paths.given)}
    clean = check(gate, api, value)
    assert clean["image1"] == link and clean["image2"] == uri and clean["n"] == [1, 2.5, None, True]
    assert clean["file"] == {"path": paths.given, "meta": {"_type": "gradio.FileData"}}
    assert check(gate, api, link) == link and check(gate, api, None) is None
    nested = [{"deep": [file_data(paths.uploaded, url=uri)]}]
    assert check(gate, api, nested) == [
        {"deep": [{"path": paths.uploaded, "meta": {"_type": "gradio.FileData"}}]}
    ]
    assert "not a file this page was given" in refused(gate, api, {"x": [file_data("/etc/passwd")]})
    assert "not a link or data" in refused(gate, api, [{"url": link}])
    refused(gate, api, float("nan"))


def test_api_values_are_bounded_in_depth(gate):
    api = _api_block()
    value: list = []
    for _ in range(MAX_DEPTH):
        value = [value]
    assert check(gate, api, value) == value
    assert "nested too deep" in refused(gate, api, [value])


def _api_block():
    from gradio.components.api_component import Api

    return Api(None, {"type": {}})


# --- the event as a whole ------------------------------------------------------------------------


def test_the_values_must_match_the_inputs(gate):
    two = event(gr.Textbox(), gr.Number())
    assert gate.check(two, ["a", 1], SESSION, VISITOR) == ["a", 1]
    for values in (["a"], ["a", 1, 2], "a", None):
        with pytest.raises(gr.Error, match="not one the page sends"):
            gate.check(two, values, SESSION, VISITOR)
    batched = SimpleNamespace(inputs=[gr.Textbox()], component_prop_inputs=[], batch=True, name="b", fn=print)
    with pytest.raises(gr.Error, match="wrong number of values"):
        gate.check(batched, ["a"], SESSION, VISITOR)


def test_the_first_bad_value_is_named(gate):
    with pytest.raises(gr.Error, match="Value 2 of this request") as info:
        gate.check(event(gr.Textbox(), gr.Number(), gr.Checkbox()), ["a", "b", "c"], SESSION, VISITOR)
    assert "number expected" in info.value.message


def test_a_session_whose_event_passed_is_live(gate):
    assert not gate.issued.seen("new-session")
    with pytest.raises(gr.Error):
        gate.check(event(gr.Number()), ["x"], "new-session", VISITOR)
    assert not gate.issued.seen("new-session")  # a refused event makes no session live
    gate.check(event(gr.Number()), [1], "new-session", VISITOR)
    assert gate.issued.seen("new-session")
    assert not gate.issued.seen(None) and not gate.issued.seen("")


def test_record_issues_every_path_in_nested_outputs(gate, tmp_path):
    out = [str(tmp_path / f"out{n}.png") for n in range(5)]
    outputs = [
        file_data(out[0]),
        [file_data(out[1]), "text", 3, None],
        {"__type__": "update", "value": {"image": file_data(out[2]), "list": (file_data(out[3]),)}},
        {"value": [{"image": file_data(out[4]), "caption": "x"}]},
        {"path": ""},
    ]
    gate.record(outputs, OTHER_SESSION)
    for path in out:
        assert check(gate, gr.Image(), file_data(path), OTHER_SESSION, OTHER_VISITOR)["path"] == path
        refused(gate, gr.Image(), file_data(path), SESSION, VISITOR)
    gate.record([file_data(str(tmp_path / "nobody.png"))], None)  # no session: issued to no one
    refused(gate, gr.Image(), file_data(str(tmp_path / "nobody.png")), OTHER_SESSION)


# --- Issued: bounds ------------------------------------------------------------------------------


def test_issued_keeps_a_bounded_number_of_files_per_key():
    issued = Issued(per_key=2)
    issued.issue("s", ["/c/1", "/c/2"])
    issued.issue("s", ["/c/3"])
    assert not issued.admits("/c/1", "s", None)
    assert issued.admits("/c/2", "s", None) and issued.admits("/c/3", "s", None)
    issued.upload("v", ["/u/1", "/u/2", "/u/3"])
    assert [issued.admits(f"/u/{n}", None, "v") for n in (1, 2, 3)] == [False, True, True]


def test_issued_forgets_the_least_recently_used_key():
    issued = Issued(keys=2)
    issued.issue("s1", ["/c/1"])
    issued.issue("s2", ["/c/2"])
    issued.touch("s1")  # s1 used again: s2 is now the oldest
    issued.issue("s3", ["/c/3"])
    assert issued.seen("s1") and not issued.seen("s2") and issued.seen("s3")
    assert issued.admits("/c/1", "s1", None) and not issued.admits("/c/2", "s2", None)


def test_issued_forgets_a_key_unused_for_its_ttl():
    clock = Clock()
    issued = Issued(clock=clock, ttl_s=100)
    issued.issue("s", ["/c/1"])
    issued.upload("v", ["/u/1"])
    clock.now = 99
    assert issued.admits("/c/1", "s", None) and issued.admits("/u/1", None, "v")
    issued.touch("s")  # an event of s passed the gate: the session lives on
    clock.now = 150
    assert issued.admits("/c/1", "s", None)
    assert not issued.admits("/u/1", None, "v")
    clock.now = 300
    assert not issued.admits("/c/1", "s", None) and not issued.seen("s")


def test_issued_forgets_deleted_files_and_lists_what_it_holds():
    issued = Issued(public=lambda: ["/p/1"])
    issued.issue("s", ["/c/1", "/c/2"])
    issued.upload("v", ["/u/1"])
    assert issued.files() == {"/c/1", "/c/2", "/u/1"}
    issued.forget(["/c/1", "/u/1", "/c/../u/1"])
    assert issued.files() == {"/c/2"}
    assert not issued.admits("/c/1", "s", "v") and not issued.admits("/u/1", "s", "v")
    assert issued.admits("/p/1", None, None)


def test_a_js_only_event_is_refused(gate):
    """An event that runs in the browser (no server function) is never called by the page."""
    js_only = SimpleNamespace(
        inputs=[gr.Textbox()], component_prop_inputs=[], batch=False, name="js", fn=None
    )
    with pytest.raises(gr.Error, match="not an event of the server"):
        gate.check(js_only, ["x"], "s1", None)


def test_a_choice_must_be_one_of_the_choices(gate):
    dropdown = gr.Dropdown([("Auto", "auto"), ("Square", "1024*1024")], value="auto")
    assert gate.check(event(dropdown), ["1024*1024"], "s1", None) == ["1024*1024"]
    with pytest.raises(gr.Error, match="not one of the choices"):
        gate.check(event(dropdown), ["/etc/passwd"], "s1", None)


def test_a_huge_integer_is_refused_without_becoming_a_float(gate):
    with pytest.raises(gr.Error, match="number out of range"):
        gate.check(event(gr.Number()), [10**400], "s1", None)


def test_an_api_call_written_before_a_parameter_was_added_gets_its_default(gate):
    """The public API's later parameters are optional (variants came after mask): fewer values are
    filled with None, the handler's default; a page event must still send every value."""
    from gradio.components.api_component import Api

    api = event(*(Api(None, {"type": "string"}) for _ in range(3)), name="edit")
    assert gate.check(api, ["a prompt"], SESSION, VISITOR) == ["a prompt", None, None]
    with pytest.raises(gr.Error, match="wrong number of values"):
        gate.check(api, ["a", "b", "c", "d"], SESSION, VISITOR)
    with pytest.raises(gr.Error, match="wrong number of values"):
        gate.check(event(gr.Textbox(), gr.Textbox()), ["only one"], SESSION, VISITOR)
