import pytest

from llm_instruct.data.instructions import Example, InstructionFileError
from llm_instruct.data.records import Record, read_csv, read_json, read_jsonl, read_tsv


def write(tmp_path, name: str, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def assert_error(tmp_path, reader, name: str, content: bytes | str, location: int | str | None, message: str):
    path = write(tmp_path, name, content)
    with pytest.raises(InstructionFileError) as raised:
        reader(path)
    if location is None:
        where = f"{path}"
    elif isinstance(location, int):
        where = f"{path}:{location}"
    else:
        where = f"{path}: {location}"
    assert str(raised.value) == f"{where}: {message}"
    assert "\n" not in str(raised.value)


def test_jsonl_records_with_input_alias_split_bom_and_crlf(tmp_path):
    path = write(
        tmp_path,
        "data.jsonl",
        b"\xef\xbb\xbf"
        b'{"instruction": "  Nenne ein Tier. ", "input": "", "output": " Ein Hund. ", "id": 7}\r\n'
        b"\r\n"
        b'{"prompt": "Z\xc3\xa4hle bis zwei.", "completion": "Eins,\\r\\nzwei.\\n", "split": "eval"}\r\n'
        b'{"instruction": "\xc3\x9cbersetze.", "input": "  Hund\\n", "output": "dog", "split": ""}\n',
    )
    assert read_jsonl(path) == [
        Record(Example("Nenne ein Tier.", "Ein Hund.", 1), "train"),
        Record(Example("Zähle bis zwei.", "Eins,\nzwei.", 3), "eval"),
        Record(Example("Übersetze.", "dog", 4, input="Hund"), "train"),
    ]


def test_json_list_as_in_alpaca_data(tmp_path):
    path = write(
        tmp_path,
        "alpaca_data.json",
        '[\n  {"instruction": "Give three tips.", "input": "", "output": "1. Eat.\\n2. Sleep.\\n3. Move."},\n'
        '  {"instruction": "Translate.", "input": "Hund", "output": "dog", "split": "eval"}\n]\n',
    )
    assert read_json(path) == [
        Record(Example("Give three tips.", "1. Eat.\n2. Sleep.\n3. Move.", "record 1"), "train"),
        Record(Example("Translate.", "dog", "record 2", input="Hund"), "eval"),
    ]


def test_csv_rows_numbered_as_a_spreadsheet_shows_them(tmp_path):
    # Excel's export: BOM, CRLF, a quoted cell spanning lines; the header in any case and spacing.
    path = write(
        tmp_path,
        "data.csv",
        b"\xef\xbb\xbf Instruction ,Notiz,OUTPUT,Split\r\n"
        b'Nenne zwei V\xc3\xb6gel.,egal,"Amsel,\r\nMeise."\r\n'
        b",,,\r\n"
        b'Nenne eine Farbe.,,"  Blau, sagt er ""gern"".  ",eval\r\n',
    )
    assert read_csv(path) == [
        Record(Example("Nenne zwei Vögel.", "Amsel,\nMeise.", "row 2"), "train"),
        Record(Example("Nenne eine Farbe.", 'Blau, sagt er "gern".', "row 4"), "eval"),
    ]


def test_tsv_with_prompt_completion_and_input(tmp_path):
    path = write(tmp_path, "data.tsv", "prompt\tinput\tcompletion\nÜbersetze.\tHund\tdog\nSage Hallo.\t\tHallo!\n")
    assert read_tsv(path) == [
        Record(Example("Übersetze.", "dog", "row 2", input="Hund"), "train"),
        Record(Example("Sage Hallo.", "Hallo!", "row 3"), "train"),
    ]


VALUE_ERRORS = [  # (record after a good one, message); shared by the JSONL and JSON readers
    ('{"output": "B"}', "missing 'instruction' (or 'prompt')"),
    ('{"prompt": "A", "answer": "B"}', "missing 'output' (or 'completion')"),
    ('{"instruction": "A", "prompt": "A", "output": "B"}', "both 'instruction' and 'prompt'; use one"),
    ('{"instruction": "A", "output": "B", "completion": "B"}', "both 'output' and 'completion'; use one"),
    ('{"instruction": "A", "output": " \\r\\n "}', "empty 'output'"),
    ('{"prompt": "", "output": "B"}', "empty 'prompt'"),
    ('{"instruction": "A", "output": 3}', "'output' must be a string, found number"),
    ('{"instruction": "A", "completion": 2.5}', "'completion' must be a string, found number"),
    ('{"instruction": true, "output": "B"}', "'instruction' must be a string, found boolean"),
    ('{"instruction": "A", "output": ["B", "C"]}', "'output' must be a string, found list"),
    ('{"instruction": {"text": "A"}, "output": "B"}', "'instruction' must be a string, found object"),
    ('{"instruction": "A", "input": null, "output": "B"}', "'input' must be a string, found null"),
    ('{"instruction": "A", "output": "B", "split": 1}', "'split' must be a string, found number"),
    ('{"instruction": "A", "output": "B", "split": "test"}', "'split' must be 'train' or 'eval', found 'test'"),
    ('{"instruction": "A", "output": "B", "split": "a\\nb"}', "'split' must be 'train' or 'eval', found 'a\\nb'"),
    ('["A", "B"]', "expected a JSON object, found list"),
    ('"A#B"', "expected a JSON object, found string"),
    ("42", "expected a JSON object, found number"),
    ("null", "expected a JSON object, found null"),
]
GOOD = '{"instruction": "A", "output": "B"}'


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [(f"{GOOD}\n\n{record}\n", 3, message) for record, message in VALUE_ERRORS]
    + [
        (f'{GOOD}\n{{"instruction": "A" "output": "B"}}\n', 2, "invalid JSON: Expecting ',' delimiter (column 21)"),
        (f"{GOOD}\n[{GOOD}\n", 2, "invalid JSON: Expecting ',' delimiter (column 37)"),
        ("\n  \n", None, "file is empty"),
        (
            b'{"instruction": "A", "output": "B"}\n{"instruction": "Gr\xfc\xdfe"}\n',
            2,
            "not UTF-8 (byte 0xfc at column 20); save the file as UTF-8",
        ),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, content, line, message):
    assert_error(tmp_path, read_jsonl, "data.jsonl", content, line, message)


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [(f"[{GOOD},\n {record}]", "record 2", message) for record, message in VALUE_ERRORS]
    + [
        (
            f'[\n  {GOOD},\n  {{"instruction": "C" "output": "D"}}\n]',
            3,
            "invalid JSON: Expecting ',' delimiter (column 23)",
        ),
        (GOOD, None, "expected a list of records as in alpaca_data.json, found object"),
        ('"A#B"', None, "expected a list of records as in alpaca_data.json, found string"),
        ("[]\n", None, "the list holds no records"),
        ("  \n", None, "file is empty"),
        (
            b'[{"instruction": "A",\n "output": "Gr\xfc\xdfe"}]',
            2,
            "not UTF-8 (byte 0xfc at column 15); save the file as UTF-8",
        ),
    ],
)
def test_json_errors_name_file_and_record(tmp_path, content, location, message):
    assert_error(tmp_path, read_json, "data.json", content, location, message)


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [
        (
            "Frage, Antwort ,Notiz\nA,B,C\n",
            "row 1",
            "the header names no 'instruction' (or 'prompt') column; found: Frage, Antwort, Notiz",
        ),
        (
            "Instruction,Notiz\nA,B\n",
            "row 1",
            "the header names no 'output' (or 'completion') column; found: Instruction, Notiz",
        ),
        (
            "\ninstruction,output\n",
            "row 1",
            "the header names no 'instruction' (or 'prompt') column; found: an empty row",
        ),
        ("instruction,prompt,output\nA,,B\n", "row 1", "the header names both 'instruction' and 'prompt'; use one"),
        ("instruction,output, Output\nA,B,C\n", "row 1", "the header names 'output' twice"),
        ("instruction,output\nA,B\nC,D,E\n", "row 3", "3 cells, but the header names 2 columns"),
        ('instruction,output\nA,"B\nB"\nC,  \n', "row 3", "empty 'output'"),
        ("instruction,input,output\nA,B\n", "row 2", "empty 'output'"),
        ("instruction,output\n ,B\n", "row 2", "empty 'instruction'"),
        ("prompt,completion\nA,\n", "row 2", "empty 'completion'"),
        ("instruction,output,split\nA,B,eval\nC,D,test\n", "row 3", "'split' must be 'train' or 'eval', found 'test'"),
        ('instruction,output\nA,B\nC,"D\nE,F\n', "row 3", "invalid CSV: unexpected end of data"),
        ('instruction,output\nA,"B"x\n', "row 2", "invalid CSV: ',' expected after '\"'"),
        ("instruction,output\n\n", None, "no rows after the header"),
        ("\n\n", None, "file is empty"),
        (b"instruction,output\nA,Gr\xfc\xdfe\n", 2, "not UTF-8 (byte 0xfc at column 5); save the file as UTF-8"),
    ],
)
def test_csv_errors_name_file_and_row(tmp_path, content, location, message):
    assert_error(tmp_path, read_csv, "data.csv", content, location, message)


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [
        (
            "instruction,output\nA,B\n",
            "row 1",
            "the header names no 'instruction' (or 'prompt') column; found: instruction,output",
        ),
        ("instruction\toutput\nA\tB\tC\n", "row 2", "3 cells, but the header names 2 columns"),
        ("instruction\toutput\nA\t\n", "row 2", "empty 'output'"),
    ],
)
def test_tsv_errors_name_file_and_row(tmp_path, content, location, message):
    assert_error(tmp_path, read_tsv, "data.tsv", content, location, message)


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [
        ('{"instruction": "A", "output": ' + "9" * 5000 + "}\n", 1, "invalid JSON: a number of more than 4300 digits"),
        ("[" * 100_000 + "]" * 100_000 + "\n", 1, "invalid JSON: nested too deeply to read"),
        (
            '{"instruction": "A\\ud800", "output": "B"}\n',
            1,
            "'instruction' holds an invalid character ('\\ud800' at position 2)",
        ),
        (
            '{"instruction": "A", "Instruction": "B", "output": "C"}\n',
            1,
            "'instruction' and 'Instruction' name the same field; use one",
        ),
        ('{"Prompt": "A", "instruction": "B", "output": "C"}\n', 1, "both 'instruction' and 'Prompt'; use one"),
    ],
)
def test_hostile_json_lines_are_one_line_errors(tmp_path, content, location, message):
    assert_error(tmp_path, read_jsonl, "data.jsonl", content, location, message)


def test_hostile_json_file_is_a_one_line_error(tmp_path):
    assert_error(tmp_path, read_json, "data.json", "[" * 100_000, None, "invalid JSON: nested too deeply to read")


def test_field_names_are_matched_ignoring_case_in_json_as_in_csv(tmp_path, capsys):
    path = write(tmp_path, "data.jsonl", '{"Instruction": "c", "OUTPUT": "d", "Split": "eval", "Input": "e"}\n')
    assert read_jsonl(path) == [Record(Example("c", "d", 1, input="e"), "eval")]
    assert capsys.readouterr().err == ""


def test_unknown_fields_are_named_once_per_file(tmp_path, capsys):
    path = write(
        tmp_path,
        "data.jsonl",
        '{"instruction": "a", "output": "b", "id": 1, "category": "x"}\n{"instruction": "c", "output": "d", "id": 2}\n',
    )
    assert len(read_jsonl(path)) == 2
    assert capsys.readouterr().err == (
        f"Notice: {path}: ignoring unknown field(s) 'id', 'category'; "
        "known: instruction, output, prompt, completion, input, split\n"
    )
    csv_path = write(tmp_path, "data.csv", "Instruction,Output,Kategorie\na,b,x\n")
    assert read_csv(csv_path) == [Record(Example("a", "b", "row 2"), "train")]
    assert capsys.readouterr().err == (
        f"Notice: {csv_path}: ignoring unknown field(s) 'Kategorie'; "
        "known: instruction, output, prompt, completion, input, split\n"
    )
