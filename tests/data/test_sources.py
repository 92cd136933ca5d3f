import pytest

from llm_instruct.data.instructions import Example, InstructionFileError, InstructionSet, parse_instruction_file
from llm_instruct.data.sources import read_examples, read_instructions


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def jsonl(*records: tuple[str, str, str]) -> str:
    """JSON Lines from (instruction, output, split) triples."""
    return "".join(f'{{"instruction": "{i}", "output": "{o}", "split": "{s}"}}\n' for i, o, s in records)


@pytest.mark.parametrize("name", ["train.txt", "train", "TRAIN.TXT"])
@pytest.mark.parametrize("content", ["A?#B.\nC?#D.\n", "A?#B.\n# _EVAL_\nC?#D.\n"])
def test_instruction_lines_read_exactly_as_parse_instruction_file_reads_them(tmp_path, name, content):
    path = write(tmp_path, name, content)
    assert read_instructions(path) == parse_instruction_file(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.jsonl", '{"instruction": "A?", "output": "B."}\n'),
        ("data.JSONL", '{"instruction": "A?", "output": "B."}\n'),
        ("data.json", '[{"instruction": "A?", "output": "B."}]'),
        ("data.Csv", "instruction,output\nA?,B.\n"),
        ("data.tsv", "instruction\toutput\nA?\tB.\n"),
    ],
)
def test_suffix_picks_the_reader_case_insensitively(tmp_path, name, content):
    instructions = read_instructions(write(tmp_path, name, content))
    assert instructions.train == instructions.eval
    assert [(e.instruction, e.answer) for e in instructions.train] == [("A?", "B.")]


def test_unknown_suffix_is_named_with_the_supported_ones(tmp_path):
    path = write(tmp_path, "data.xml", "<a/>")
    with pytest.raises(InstructionFileError) as raised:
        read_instructions(path)
    assert str(raised.value) == (
        f"{path}: unknown file type '.xml'; use .txt (instruction#answer), .jsonl, .json, .csv or .tsv"
    )


def test_records_split_eval_form_the_evaluation_set(tmp_path):
    path = write(tmp_path, "data.jsonl", jsonl(("A", "B", "train"), ("C", "D", "eval"), ("E", "F", "")))
    assert read_instructions(path) == InstructionSet(
        train=[Example("A", "B", 1), Example("E", "F", 3)], eval=[Example("C", "D", 2)], eval_is_train=False
    )


def test_records_without_split_eval_double_as_evaluation_set(tmp_path):
    path = write(tmp_path, "data.jsonl", jsonl(("A", "B", "train"), ("C", "D", "")))
    examples = [Example("A", "B", 1), Example("C", "D", 2)]
    assert read_instructions(path) == InstructionSet(train=examples, eval=examples, eval_is_train=True)


def test_eval_file_gives_all_its_examples_whatever_their_split_or_marker(tmp_path):
    train_file = write(tmp_path, "train.txt", "A?#B.\nC?#D.\n")
    eval_file = write(tmp_path, "eval.jsonl", jsonl(("E", "F", "train"), ("G", "H", "eval")))
    assert read_instructions(train_file, eval_file) == InstructionSet(
        train=[Example("A?", "B.", 1), Example("C?", "D.", 2)],
        eval=[Example("E", "F", 1), Example("G", "H", 2)],
        eval_is_train=False,
    )
    marked_eval_file = write(tmp_path, "eval.txt", "E?#F.\n# _EVAL_\nG?#H.\n")
    structured_train_file = write(tmp_path, "train.csv", "instruction,output,split\nA,B,train\nC,D,\n")
    assert read_instructions(structured_train_file, marked_eval_file) == InstructionSet(
        train=[Example("A", "B", "row 2"), Example("C", "D", "row 3")],
        eval=[Example("E?", "F.", 1), Example("G?", "H.", 3)],
        eval_is_train=False,
    )


def test_read_examples_ignores_the_split(tmp_path):
    assert read_examples(write(tmp_path, "a.txt", "A?#B.\n# _EVAL_\nC?#D.\n")) == [
        Example("A?", "B.", 1),
        Example("C?", "D.", 3),
    ]
    assert read_examples(write(tmp_path, "b.txt", "A?#B.\n")) == [Example("A?", "B.", 1)]
    assert read_examples(write(tmp_path, "c.jsonl", jsonl(("A", "B", "eval"), ("C", "D", "train")))) == [
        Example("A", "B", 1),
        Example("C", "D", 2),
    ]


@pytest.mark.parametrize(
    ("name", "content", "eval_content", "location", "message"),
    [
        (
            "train.txt",
            "A?#B.\n# _EVAL_\nC?#D.\n",
            "E?#F.\n",
            2,
            "both an _EVAL_ marker and --eval-file name evaluation examples; use one",
        ),
        (
            "train.jsonl",
            jsonl(("A", "B", "train"), ("C", "D", "eval")),
            "E?#F.\n",
            2,
            "both split 'eval' records and --eval-file name evaluation examples; use one",
        ),
        (
            "train.csv",
            "instruction,output,split\nA,B,eval\nC,D,eval\n",
            None,
            None,
            "every record has split 'eval'; none is left for training",
        ),
        (
            "train.json",
            '[{"instruction": "A", "output": "B", "split": "eval"}]',
            "E?#F.\n",
            None,
            "every record has split 'eval'; none is left for training",
        ),
    ],
)
def test_split_conflicts_name_the_training_file(tmp_path, name, content, eval_content, location, message):
    path = write(tmp_path, name, content)
    eval_file = write(tmp_path, "eval.txt", eval_content) if eval_content is not None else None
    with pytest.raises(InstructionFileError) as raised:
        read_instructions(path, eval_file)
    where = f"{path}" if location is None else f"{path}:{location}"
    assert str(raised.value) == f"{where}: {message}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("eval.txt", "# nur Kommentare\n", "no instruction lines, only comments"),
        ("eval.jsonl", "\n", "file is empty"),
        ("eval.csv", "instruction,output\n", "no rows after the header"),
        ("eval.yaml", "- a\n", "unknown file type '.yaml'; use .txt (instruction#answer), .jsonl, .json, .csv or .tsv"),
    ],
)
def test_eval_file_without_examples_is_an_error_naming_it(tmp_path, name, content, message):
    eval_file = write(tmp_path, name, content)
    with pytest.raises(InstructionFileError) as raised:
        read_instructions(write(tmp_path, "train.txt", "A?#B.\n"), eval_file)
    assert str(raised.value) == f"{eval_file}: {message}"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("eval.txt", "# _EVAL_\nE?#F.\nG?#H.\n"),
        ("eval.jsonl", jsonl(("E?", "F.", "eval"), ("G?", "H.", "eval"))),
    ],
)
def test_a_file_of_evaluation_examples_only_serves_as_eval_file_and_for_scoring(tmp_path, name, content):
    eval_file = write(tmp_path, name, content)
    expected = [e.instruction for e in read_examples(eval_file)]
    assert expected == ["E?", "G?"]
    assert [e.instruction for e in read_examples(eval_file, "eval")] == expected
    instructions = read_instructions(write(tmp_path, "train.txt", "A?#B.\n"), eval_file)
    assert [e.instruction for e in instructions.eval] == expected
    with pytest.raises(InstructionFileError):
        read_examples(eval_file, "train")
