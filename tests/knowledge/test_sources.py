"""FAQ entries from a CSV file or a folder of Markdown articles, and `faq import`'s TOML."""

import pytest

from app.autoreply import parse_rules
from app.knowledge import sources


def test_csv_rows_sharing_an_id_are_one_entry(tmp_path):
    """question,answer,id: rows with one id are its phrasings; rows without one are entries
    named after their question."""
    path = tmp_path / "faq.csv"
    path.write_text('question,answer,id\n'
                    'How do I return an item?,"Free within 30 days, at example.com.",returns\n'
                    'Can I send something back?,,returns\n'
                    'How much is shipping?,Free from 50 EUR.,\n')
    assert sources.read(path) == [
        {"id": "returns", "questions": ["How do I return an item?", "Can I send something back?"],
         "answer": "Free within 30 days, at example.com."},
        {"id": "how-much-is-shipping", "questions": ["How much is shipping?"],
         "answer": "Free from 50 EUR."},
    ]


def test_markdown_articles_are_entries(tmp_path):
    """The first heading is the question, 'Also asked as' items are phrasings, the rest
    is the answer; the file's name is the id."""
    (tmp_path / "card-delivery.md").write_text(
        "# When will my card arrive?\n\n## Also asked as\n- My card hasn't come\n"
        "- Where is my card?\n\nCards arrive within **7 working days**.\n\nStill nothing? Call us.\n")
    [entry] = sources.read(tmp_path)
    assert entry == {"id": "card-delivery",
                     "questions": ["When will my card arrive?", "My card hasn't come",
                                   "Where is my card?"],
                     "answer": "Cards arrive within **7 working days**.\n\nStill nothing? Call us."}


def test_markdown_files_as_editors_name_them(tmp_path):
    """`.MD` and `.markdown` are articles too, a name with spaces becomes an id, and a
    hidden file (an editor's swap or draft) is skipped, not a reason to refuse them all."""
    (tmp_path / "Returns.MD").write_text("# How do I return an item?\n\nFree, 30 days.\n")
    (tmp_path / "gift cards.markdown").write_text("# Do you sell gift cards?\n\nYes.\n")
    (tmp_path / ".draft.md").write_text("not an article yet")
    assert [entry["id"] for entry in sources.read(tmp_path)] == ["Returns", "gift-cards"]


def test_a_rules_file_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_bytes('\ufeff[fallback]\ntext = "Thanks!"\n'.encode())
    from app.autoreply import load_rules

    assert load_rules(path).fallback.default.text.source == "Thanks!"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_quoted_answer_keeps_its_line_breaks(tmp_path, newline):
    """A spreadsheet's multi-line cell, quoted as Excel and Google Sheets export it,
    reaches the customer on several lines; a U+2028 in a cell is text, not a row end."""
    path = tmp_path / "faq.csv"
    path.write_bytes(newline.join([
        "id,question,answer",
        'hours,When are you open?,"We are open:' + newline + "Mon-Fri 9-17" + newline
        + 'Sat 10-14"',
        "call,Can I call?,Yes\u2028on weekdays",
        "",
    ]).encode())
    hours, call = sources.read(path)
    assert hours["answer"] == "We are open:\nMon-Fri 9-17\nSat 10-14"
    assert call["answer"] == "Yes\u2028on weekdays"


def test_many_rows_with_one_question_get_numbered_ids(tmp_path):
    """Rows without an id are named after their question, numbered when one repeats."""
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\n" + "Where is it?,Here.\n" * 3000 + "where-is-it-2?,X\n")
    ids = [entry["id"] for entry in sources.read(path)]
    assert ids[:3] == ["where-is-it", "where-is-it-2", "where-is-it-3"]
    assert len(set(ids)) == len(ids) == 3001 and ids[-1] == "where-is-it-2-2"


@pytest.mark.parametrize("content, problem", [
    ("question,answer\nq?," + "x" * 200_000 + "\n", "field larger than field limit"),
    ("question\nWhere?\n", "must name the columns question and answer"),
    ("question,answer,id\n,Yes,a\n", "line 2: the question is empty"),
    ("question,answer,id\nA?,One,a\nB?,Two,a\n", "line 3: entry 'a' has another answer"),
    ("question,answer,id\nA?,,a\n", "entry 'a' has no answer"),
    # An unquoted comma in an answer, a spreadsheet's usual slip: once a traceback that
    # stopped the server, and a running one when a worker restarted.
    ("question,answer\nWhere?,It ships soon, usually in 2 days\n",
     "line 2: 3 cells, the header has 2 \\(an answer with a comma in it goes in double"),
])
def test_a_bad_csv_is_refused_naming_the_place(tmp_path, content, problem):
    path = tmp_path / "faq.csv"
    path.write_text(content)
    with pytest.raises(sources.SourceError, match=problem):
        sources.read(path)


def test_import_prints_toml_that_loads_as_the_same_entries(tmp_path):
    """`faq import`'s output pasted into a rules file gives the same entries."""
    path = tmp_path / "faq.csv"
    path.write_text('question,answer,id\n"Say ""hi""?",Hello — {{ customer }}!,greet\n'
                    'Wave?,,greet\n')
    rules = parse_rules(sources.to_toml(sources.read(path)))
    [entry] = rules.knowledge.entries
    assert entry.id == "greet" and entry.questions == ('Say "hi"?', "Wave?")
    assert entry.answer.default.render({"customer": "+1555"})[0] == "Hello — +1555!"
