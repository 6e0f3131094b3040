"""Check cells for the book's build-it exercises: each ``check_*`` says "correct" or points at what is wrong.

A build-it exercise asks the learner to *write* a piece (a function, a hook, a computation); the cell after it
calls one of these checks on the learner's answer. A check prints one line starting with ``correct:`` when the
answer is right, and raises ``ExerciseError`` (an ``AssertionError``) whose message names what is wrong and
what to look at, when it is not. Checks return nothing, so a cell that ends with one shows only that line.
Each check first makes sure it was given a function it can call (``common.expect_function``): ``None``, the
function's result, its name in quotes or a network get a message that names the slip.
``tests/exercises/`` proves that every check accepts the reference solution and rejects planted mistakes.

One module per topic, in the book's order: ``architecture`` (the paper's table and the model), ``training`` (the
training loop), ``batch_norm``, ``paper`` (the paper's methods and its learning-rate rule), ``fast`` (the test-time
flip and label smoothing), ``modern`` (the whitening layer and weight averaging) and ``scaling`` (several
processes); ``common`` holds what they share. In a student copy an exercise not written yet is a stand-in,
``not_attempted(name)``: its check says "not attempted yet", and the cells that use the piece run the book's
version (``references``), so that Run All goes on through the chapter.
"""
from .common import ExerciseError, correct
from .architecture import check_conv_params, check_make_layers, check_param_count
from .training import check_train_loop, check_train_step
from .batch_norm import check_activation_hook, check_one_cycle
from .paper import check_fc_to_conv, check_lrn, check_plateau_drops
from .fast import check_label_smoothing, check_tta
from .modern import check_weight_average, check_whitening
from .scaling import check_batch_stats, check_shard
from .references import not_attempted

__all__ = ["ExerciseError", "correct", "not_attempted",
           "check_conv_params", "check_param_count", "check_make_layers",
           "check_train_step", "check_train_loop", "check_activation_hook", "check_one_cycle",
           "check_lrn", "check_fc_to_conv", "check_plateau_drops",
           "check_tta", "check_label_smoothing", "check_whitening", "check_weight_average",
           "check_shard", "check_batch_stats"]
