"""The book's experiment harness: what records and replays the runs the chapters show.

The library around it (``vgg_helpers``) is what the chapters teach, one module per concept; this sub-package is
how the book itself measures: which runs, at which budget, stored where. A learner can skip it.

* ``plans``     -- every run a chapter shows, per budget, in one shape (``Plan``, with named ``Rung`` variants);
* ``store``     -- the stored runs: ``train_or_load``, the one way to a stored run (with its weights where stored);
* ``failure``   -- the runs on the failing network (the 10% failure and the batch-norm fix, over seeds);
* ``paper``     -- the runs of the paper's methods (pre-initialisation, scale jittering and testing, the schedule);
* ``fast``      -- the runs of the classic VGG made fast (one run, the ladder of ingredients);
* ``modern``    -- the runs of the modern VGG (the ladder of ingredients, the final runs);
* ``pipelines`` -- is data loading the bottleneck? images per second of the same step fed by different pipelines;
* ``scaling``   -- the training command's flags for a plan (several processes);
* ``results``   -- the recorded results the chapters cite, shipped: test-set recordings, hold-out comparisons;
* ``record``    -- the one command that records a topic's runs: ``python -m vgg_helpers.book.record TOPIC``.

What belongs where: a concept a learner reads beside a chapter goes in the library; a chapter's plans, its stored
runs and the drivers that train or load them go here. The library never imports this package; the chapters import
it only for their plans, their runs and the recorded results they cite. Plans and runs are named by topic, never
by chapter number.
"""
