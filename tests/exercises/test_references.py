"""The book's version of each exercise piece (what a student copy runs until the learner writes it) is an answer
its own check accepts, and a stand-in runs it, saying so once."""
import pytest
import torch

from tests.exercises.test_errors import CHECKS, SIGNATURES
from vgg_helpers import exercises
from vgg_helpers.exercises.references import REFERENCES, reference


@pytest.mark.parametrize("check", CHECKS)
def test_every_reference_passes_its_check(check, capsys):
    piece = SIGNATURES[check].split("(")[0]
    assert piece in REFERENCES, f"{check} checks {piece}, which has no book's version"
    getattr(exercises, check)(reference(piece))
    assert capsys.readouterr().out.startswith("correct:")


def test_a_stand_in_runs_the_books_version_and_says_so_once(capsys):
    shard = exercises.not_attempted("shard")
    batch = torch.arange(10)
    assert shard(batch, 1, 3).tolist() == [3, 4, 5] and shard(batch, 2, 3).tolist() == [6, 7, 8, 9]
    assert capsys.readouterr().out == "using the book's version of shard: your exercise is still open\n"


def test_an_unknown_piece_is_named():
    with pytest.raises(KeyError, match="no exercise piece is called 'shards'"):
        exercises.not_attempted("shards")
