import pytest

from llm_instruct.data.instructions import Example, InstructionFileError, InstructionSet, parse_instruction_file


def parse(tmp_path, content: bytes | str) -> InstructionSet:
    path = tmp_path / "file.txt"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return parse_instruction_file(path)


def test_training_and_evaluation_lines_split_at_the_marker(tmp_path):
    parsed = parse(
        tmp_path,
        "# Kommentar\n\nNenne ein Tier.#Ein Hund.\n  Zähle bis zwei.   #   Eins, zwei.  \n"
        "# _EVAL_ ab hier\nNenne eine Farbe.#Blau.\n",
    )
    assert parsed == InstructionSet(
        train=[Example("Nenne ein Tier.", "Ein Hund.", 3), Example("Zähle bis zwei.", "Eins, zwei.", 4)],
        eval=[Example("Nenne eine Farbe.", "Blau.", 6)],
        eval_is_train=False,
    )


def test_split_at_the_last_hash_so_instructions_may_contain_one(tmp_path):
    parsed = parse(tmp_path, "Was bedeutet # in Python?#Einen Kommentar.\n")
    assert parsed.train == [Example("Was bedeutet # in Python?", "Einen Kommentar.", 1)]


def test_without_marker_training_lines_double_as_evaluation_lines(tmp_path):
    parsed = parse(tmp_path, "A?#B.\nC?#D.\n")
    assert parsed.eval_is_train
    assert parsed.eval == parsed.train == [Example("A?", "B.", 1), Example("C?", "D.", 2)]


def test_bom_and_crlf_are_accepted(tmp_path):
    parsed = parse(tmp_path, b"\xef\xbb\xbfSage Hallo.#Hallo!\r\n# _EVAL_\r\nSage Tsch\xc3\xbcss.#Tsch\xc3\xbcss!\r\n")
    assert parsed.train == [Example("Sage Hallo.", "Hallo!", 1)]
    assert parsed.eval == [Example("Sage Tschüss.", "Tschüss!", 3)]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("A?#B.\nKein Trenner hier\n", 2, "expected 'instruction#answer', found no '#'"),
        ("A?#B.\n  #Antwort ohne Frage\n", 2, "empty instruction before '#'"),
        ("A?#B.\nFrage ohne Antwort?#   \n", 2, "empty answer after the last '#'"),
        ("A?#B.\n# Kommentar #mit#Rauten\n", None, None),
        ("A?#B.\n# _EVAL_\nC?#D.\n# _EVAL_ nochmal\nE?#F.\n", 4, "second _EVAL_ marker (the first is on line 2)"),
        ("# _EVAL_\nC?#D.\n", 1, "no training lines before the _EVAL_ marker"),
        ("A?#B.\n# _EVAL_\n# noch ein Kommentar\n\n", 2, "the _EVAL_ marker is followed by no evaluation lines"),
        ("# nur Kommentare\n\n", None, "no instruction lines, only comments"),
        ("\n  \n", None, "file is empty"),
        (b"A?#B.\nC?#Gr\xfc\xdfe\n", 2, "not UTF-8 (byte 0xfc at column 6); save the file as UTF-8"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, line, message):
    if message is None:  # a comment may hold any number of '#'
        assert parse(tmp_path, content).train == [Example("A?", "B.", 1)]
        return
    with pytest.raises(InstructionFileError) as raised:
        parse(tmp_path, content)
    where = f"{tmp_path / 'file.txt'}:{line}" if line else f"{tmp_path / 'file.txt'}"
    assert str(raised.value) == f"{where}: {message}"


def test_missing_file(tmp_path):
    with pytest.raises(InstructionFileError, match=r"missing\.txt: no such file$"):
        parse_instruction_file(tmp_path / "missing.txt")


def test_lone_carriage_returns_end_lines_as_newlines_do(tmp_path):
    """Classic Mac line ends: the marker stays a marker and the evaluation line is not trained on."""
    parsed = parse(tmp_path, "Hallo#Antwort\r# _EVAL_\rTag#Gut\r")
    assert parsed == InstructionSet(
        train=[Example("Hallo", "Antwort", 1)], eval=[Example("Tag", "Gut", 3)], eval_is_train=False
    )


def test_a_path_through_a_file_is_no_such_file(tmp_path):
    (tmp_path / "file.txt").write_text("A?#B.\n")
    with pytest.raises(InstructionFileError) as raised:
        parse_instruction_file(tmp_path / "file.txt" / "inner.txt")
    assert str(raised.value) == f"{tmp_path / 'file.txt' / 'inner.txt'}: no such file"


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("A?#B.\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(path), "read_bytes", refuse)
    with pytest.raises(InstructionFileError) as raised:
        parse_instruction_file(path)
    assert str(raised.value) == f"{path}: cannot be read (Permission denied)"
