"""The benchmarks in bench/: both commands on tiny settings, their JSON, and the generated README part."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import report, save
from bench import scaling as scaling_cmd
from bench import throughput as throughput_cmd
from bench import modern_vgg as modern_cmd
from bench import time_to_accuracy as tta_cmd
from tests.helpers import tiny_cifar
from vgg_helpers.settings import settings

DATA_DIR = settings().data_dir
HAVE_JPEGS = bool(DATA_DIR) and (Path(DATA_DIR) / "train").is_dir()


def test_results_dir_does_not_depend_on_the_working_directory(monkeypatch, tmp_path):
    from bench import RESULTS_DIR

    monkeypatch.chdir(tmp_path)
    assert RESULTS_DIR.is_absolute() and RESULTS_DIR.parent.name == "bench" and RESULTS_DIR.is_dir()


def test_time_to_accuracy_tiny(tmp_path):
    result = tta_cmd.time_to_accuracy(tiny_cifar(1000), "smoke", target=0.0, epochs=2, progress=False)
    assert result["kind"] == "time-to-accuracy-smoke"
    assert [row["epoch"] for row in result["epochs"]] == [1, 2]
    assert result["reached_target_at_epoch"] == 1
    assert result["time_to_target_s"] <= result["wall_to_target_s"]
    assert all(row["train_seconds"] > 0 and row["eval_seconds"] >= 0 for row in result["epochs"])
    assert result["final_test_acc"]["flip"] is not None and result["diverged"] is None
    never = tta_cmd.time_to_accuracy(tiny_cifar(1000), "smoke", target=1.01, epochs=1, progress=False,
                                     augment=False)
    assert never["reached_target_at_epoch"] is None and never["time_to_target_s"] is None
    assert never["kind"] == "time-to-accuracy-smoke-no-augment"
    assert save(result, tmp_path).exists()


@pytest.mark.skipif(not HAVE_JPEGS, reason="needs the image-folder copy of CIFAR-10 (VGG_DATA_DIR)")
def test_commands_record_results(tmp_path):
    assert tta_cmd.main(["--budget", "smoke", "--epochs", "1", "--train-size", "256", "--test-size", "200",
                         "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("time-to-accuracy-*.json")
    result = json.loads(path.read_text())
    assert result["settings"]["test_images"] == 200 and result["settings"]["train_images"] == 256
    assert 0.0 <= result["final_test_acc"]["flip"] <= 1.0 and result["data_load_s"] > 0
    assert throughput_cmd.main(["--width", "0.125", "--batch-size", "16", "--steps", "1", "--warmup", "1",
                                "--rounds", "1", "--num-workers", "0", "--threads", "1", "--out",
                                str(tmp_path)]) == 0
    (path,) = tmp_path.glob("throughput-*.json")
    result = json.loads(path.read_text())
    assert "conventional_imagefolder" in result["images_per_second"]       # the JPEG folder was found
    assert result["settings"]["threads"] == result["environment"]["torch_threads"] == 1


def test_bench_readme_matches_the_recorded_results():
    # every number in bench/README.md's "Recorded numbers" is rendered from the results by bench/report.py
    assert report.main(["--check"]) == 0, "run `python -m bench.report` after recording results"


def test_bench_readme_names_no_machine_folders():
    assert report._data("image folder /work/shared/data/cifar10-jpeg (JPEG copy)") == \
        "image folder cifar10-jpeg (JPEG copy)"
    text = report.README.read_text()
    assert not any(f" {root}/" in text for root in ("/work", "/home", "/root", "/tmp", "/Users"))


def _tta_result(acc: float, seconds: float) -> dict:
    return {"kind": "time-to-accuracy-cpu", "date": "2026-01-01T00:00:00+00:00",
            "environment": {"torch": "2.x", "python": "3.11", "cpu": "Test CPU", "cpu_count": 2, "torch_threads": 2},
            "settings": {"budget": "cpu", "target": 0.882, "data_source": "synthetic", "train_images": 50000,
                         "test_images": 10000, "run": {"epochs": 1, "batch_size": 128},
                         "model": {"arch": "vgg11", "width": 0.5}, "speed": {"threads": None},
                         "recipe": {"lr": 0.1, "schedule": "onecycle", "label_smoothing": 0.1},
                         "augment": True, "tta": 1},
            "epochs": [{"epoch": 1, "test_acc": acc, "train_seconds": seconds - 5, "eval_seconds": 5.0,
                        "wall_seconds": seconds}],
            "reached_target_at_epoch": 1 if acc >= 0.882 else None,
            "time_to_target_s": seconds - 5 if acc >= 0.882 else None, "train_seconds": seconds - 5,
            "time_to_result_s": seconds, "final_test_acc": {"flip": acc, "plain": acc - 0.01},
            "total_wall_s": seconds + 10}


@pytest.mark.parametrize("acc, seconds, verdict", [
    (0.91, 800.0, "**met**"),
    (0.87, 800.0, "**missed**: 0.0300 short in accuracy"),
    (0.91, 960.0, "**missed**: 60 s over time"),
])
def test_report_states_whether_the_cpu_target_was_met(tmp_path, acc, seconds, verdict):
    (tmp_path / "time-to-accuracy-cpu-2026-01-01T000000Z.json").write_text(json.dumps(_tta_result(acc, seconds)))
    text = report.render(tmp_path)
    assert f"cpu-budget target (>= 90% within 15 min): {verdict}" in text
    assert "### Time to accuracy, gpu budget" in text and "**Not measured**" in text   # no gpu file: says so
    assert "### Ladder, cpu budget" in text                        # read from the stored runs


def test_commands_refuse_bad_numbers_when_parsing(capsys):
    with pytest.raises(SystemExit):
        tta_cmd.main(["--target", "88.2"])
    assert "write 0.882 for 88.2%" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        throughput_cmd.main(["--steps", "0"])
    assert "--steps: expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_commands_explain_missing_data_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match=r"error: The data folder .* does not exist"):
        tta_cmd.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)])


def test_scaling_configurations_and_their_names():
    assert scaling_cmd.configurations("cpu", 2, 0) == [(1, 1, True), (1, 2, True), (2, 1, True), (2, 1, False)]
    assert scaling_cmd.configurations("cpu", 1, 0) == [(1, 1, True)]
    assert scaling_cmd.configurations("cuda", 1, 1) == [(1, 1, True)]
    assert scaling_cmd.configurations("cuda", 1, 4)[1:] == [(4, 1, True), (4, 1, False)]
    assert scaling_cmd.label(2, 1, False) == "2 processes x 1 thread, batch norm per process"
    assert scaling_cmd.label(1, 2) == "1 process x 2 threads"


def test_modern_vgg_tiny(tmp_path):
    from vgg_helpers.modern import ModernRecipe
    recipe = ModernRecipe(epochs=2, batch_size=128, whiten_images=256, ema_from_epoch=1)
    result = modern_cmd.modern_vgg(tiny_cifar(1024, 256), "modern-128", recipe, seeds=[0, 1],
                                   eval_every_epoch=True, device="cpu", verbose=False)
    assert result["kind"] == "modern-vgg-test-cpu" and [r["seed"] for r in result["runs"]] == [0, 1]
    assert all(len(r["epoch_acc"]) == 2 and r["seconds"] >= r["epoch_seconds"][-1] for r in result["runs"])
    accs = [r["final_acc"] for r in result["runs"]]
    assert result["final_acc"]["min"] == min(accs) and result["final_acc"]["max"] == max(accs)
    assert result["settings"]["recipe"]["epochs"] == 2 and save(result, tmp_path).exists()


def test_modern_vgg_in_float32_uses_no_autocast_anywhere(monkeypatch):
    from vgg_helpers import fast, modern
    from vgg_helpers.modern import ModernRecipe

    monkeypatch.setattr(modern, "autocast_dtype", lambda device: torch.bfloat16)   # as on a CPU with bfloat16
    monkeypatch.setattr(fast, "autocast_dtype", lambda device: torch.bfloat16)
    recipe = ModernRecipe(epochs=1, batch_size=128, whiten_images=64)
    result = modern_cmd.modern_vgg(tiny_cifar(256, 64), "modern-128", recipe, seeds=[0], device="cpu",
                                   verbose=False, float32=True)
    assert result["kind"] == "modern-vgg-test-cpu-float32" and result["settings"]["autocast"] is None
    assert modern.autocast_dtype("cpu") is fast.autocast_dtype("cpu") is torch.bfloat16   # for the run only


def test_modern_vgg_never_writes_into_the_package(tmp_path):
    """The benchmark measures; the book's stored runs are the record command's (python -m vgg_helpers.book.record)."""
    from vgg_helpers.book.store import STORED_DIR
    from vgg_helpers.modern import ModernRecipe
    before = {p: p.stat().st_mtime_ns for p in STORED_DIR.iterdir()}
    data = tiny_cifar(256, 64)
    recipe = ModernRecipe(epochs=1, batch_size=64, whiten_images=128)
    result = modern_cmd.modern_vgg(data, "modern-128", recipe, seeds=[0], test_size=32, device="cpu", verbose=False)
    assert result["settings"]["measured_on"] == "32 test images" and result["settings"]["train_images"] == 256
    assert {p: p.stat().st_mtime_ns for p in STORED_DIR.iterdir()} == before
    with pytest.raises(ValueError, match="hold-out is measured on its 5,000 validation images"):
        modern_cmd.modern_vgg(data, "modern-128", recipe, seeds=[0], holdout=True, test_size=32, device="cpu")
    with pytest.raises(SystemExit):
        modern_cmd.main(["--store", "modern-final"])     # the option is gone: the record command stores runs


def test_modern_vgg_refuses_fewer_training_images_than_one_batch(capsys):
    with pytest.raises(SystemExit):
        modern_cmd.main(["--train-size", "500", "--epochs", "1"])
    assert ("--train-size 500 is less than one batch of 1024 images, so nothing would be trained: add --set "
            "batch_size=500") in capsys.readouterr().err


def test_modern_vgg_settings_are_typed_and_checked():
    assert modern_cmd.parse_settings(["lr=10", "flip=random", "translate=1"]) == {
        "lr": 10.0, "flip": "random", "translate": 1}
    with pytest.raises(SystemExit, match="FIELD=VALUE with a field of ModernRecipe"):
        modern_cmd.parse_settings(["learning_rate=3"])
    with pytest.raises(SystemExit, match="translate takes an int"):
        modern_cmd.parse_settings(["translate=two"])


def test_modern_vgg_net_settings_are_typed_and_checked():
    assert modern_cmd.parse_net(["whiten=false", "logit_scale=0.2", "whiten_kernel=3", "pool_first=True"]) == {
        "whiten": False, "logit_scale": 0.2, "whiten_kernel": 3, "pool_first": True}
    for bad, says in (("whiten=no", "whiten takes true or false"), ("width=2", "a field of ModernConfig"),
                      ("logit_scale=big", "logit_scale takes a float"), ("whiten", "a field of ModernConfig"),
                      ("activation=relu", "it comes from --activation"), ("layers=1", "it comes from --arch")):
        with pytest.raises(SystemExit, match=says):
            modern_cmd.parse_net([bad])


def test_modern_vgg_builds_the_network_it_is_given_and_records_the_change(tmp_path, monkeypatch):
    from vgg_helpers.modern import ModernRecipe
    built, original = [], modern_cmd.build_modern_vgg

    def build(arch, **kwargs):
        built.append(original(arch, **kwargs))
        return built[-1]

    monkeypatch.setattr(modern_cmd, "build_modern_vgg", build)
    recipe = ModernRecipe(epochs=1, batch_size=128, whiten_images=64)
    plain, changed = (modern_cmd.modern_vgg(tiny_cifar(256, 64), "modern-128", recipe, seeds=[0],
                                            device="cpu", verbose=False, net=net) for net in (None, {"whiten": False}))
    assert [m.config.whiten for m in built] == [True, False]
    assert not built[0].whiten.weight.requires_grad and built[1].whiten.weight.requires_grad   # trained, not set
    assert "net" not in plain["settings"] and changed["settings"]["net"] == {"whiten": False}
    save(changed, tmp_path)
    assert "gelu, whiten=False, 1 epochs" in report.render(tmp_path)


@pytest.mark.parametrize("accs, seconds, verdict", [
    ([0.905, 0.91, 0.90], [800, 820, 810], "**met**; the issue's target of 92% is missed by 0.0150"),
    ([0.89, 0.895, 0.885], [800, 820, 810], "**missed**: mean 0.0100 short"),
    ([0.93, 0.92, 0.925], [800, 920, 810], "**missed**: slowest seed 20 s over; the issue's target of 92% is met"),
])
def test_report_states_the_modern_vgg_verdict(tmp_path, accs, seconds, verdict):
    from vgg_helpers.modern import ModernRecipe
    result = modern_cmd.modern_vgg(tiny_cifar(256, 64), "modern-128", ModernRecipe(epochs=1, batch_size=128,
                                   whiten_images=64), seeds=[0, 1, 2], device="cpu", verbose=False)
    for run, a, s in zip(result["runs"], accs, seconds):
        run.update(final_acc=a, seconds=s)
    result["final_acc"] = modern_cmd._summary(accs)
    result["seconds"] = modern_cmd._summary([float(s) for s in seconds])
    save(result, tmp_path)
    text = report.render(tmp_path)
    assert "### Modern VGG, final recipe on the test set" in text
    assert f"every seed within 15 min): {verdict}" in text
    assert "### Modern VGG, gpu budget" in text and "GPU (mean over three seeds)" in text   # no cuda file


def test_report_drops_the_gpu_placeholder_once_the_gpu_result_exists(tmp_path):
    from vgg_helpers.modern import ModernRecipe
    result = modern_cmd.modern_vgg(tiny_cifar(256, 64), "modern-128", ModernRecipe(epochs=1, batch_size=128,
                                   whiten_images=64), seeds=[0], device="cpu", verbose=False)
    result["kind"] = "modern-vgg-test-cuda"
    save(result, tmp_path)
    text = report.render(tmp_path)
    assert "### Modern VGG, gpu budget" not in text and "### Modern VGG, final recipe on the test set" in text
    assert "- gpu target (>= 94% mean over the seeds, every seed within 60 s): **missed**: mean" in text


def test_report_shows_the_final_run_and_the_short_schedule_apart(tmp_path):
    from vgg_helpers.modern import ModernRecipe
    result = modern_cmd.modern_vgg(tiny_cifar(256, 64), "modern-128", ModernRecipe(epochs=1, batch_size=128,
                                   whiten_images=64), seeds=[0, 1], device="cpu", verbose=False)
    for store, accs, seconds, stamp in (("modern-final", [0.89, 0.90], [780.0, 790.0], "2025-12-31T000000Z"),
                                        ("modern-final", [0.90, 0.91], [800.0, 820.0], "2026-01-01T000000Z"),
                                        ("modern-short", [0.885, 0.883], [450.0, 490.0],
                                         "2026-01-02T000000Z")):
        r = json.loads(json.dumps(result))
        r["settings"]["store"] = store
        r["final_acc"], r["seconds"] = modern_cmd._summary(accs), modern_cmd._summary(seconds)
        (tmp_path / f"modern-vgg-test-cpu-{stamp}.json").write_text(json.dumps(r))
    text = report.render(tmp_path)
    final = text.index("### Modern VGG, final recipe on the test set (`results/modern-vgg-test-cpu-2026-01-01")
    short = text.index("### Modern VGG, the short schedule for 88.2% on the test set (`results/modern-vgg-test-"
                       "cpu-2026-01-02")
    assert final < short
    earlier = text.index("Earlier recordings of this schedule")
    assert final < earlier < short and "| `modern-vgg-test-cpu-2025-12-31T000000Z.json` | `modern-128` | 1 | 2 | 0.8950 +-" in text
    assert "every seed within 15 min): **met**" in text
    assert "- goal (>= 88.2% on every seed, every seed within 8 min): **missed**: slowest seed 10 s over" in text


def test_a_schedule_recorded_as_stored_runs_is_reported_as_its_newest_recording(tmp_path, monkeypatch):
    from dataclasses import asdict

    from vgg_helpers.book.plans import MODERN_SHORT
    from vgg_helpers.modern import ModernRecipe
    from vgg_helpers.training import History

    plan = MODERN_SHORT["cpu"]
    accs = dict(zip(plan.seeds, [0.885, 0.879, 0.884, 0.883, 0.886]))

    def fake_history(name, budget):
        if not name.startswith("modern-short"):
            return None
        seed = int(name.rsplit("-s", 1)[1])
        i = plan.seeds.index(seed)                  # the k-th seed was recorded on day k, in 410 + k s
        h = History(epoch=[1, 2], val_acc=[0.80, accs[seed]], time=[200.0, 400.0])
        h.meta.update(final_acc=accs[seed], total_seconds=410.0 + i, recorded=f"2026-12-0{i + 1}",
                      recipe=asdict(ModernRecipe(epochs=7)),
                      device="cpu", torch="2.14.1", python="3.11", cpu="AMD EPYC", cpu_count=2, torch_threads=2,
                      data_source="CIFAR-10 JPEG copy", train_images=50000, autocast="bfloat16")
        return h

    monkeypatch.setattr(report, "stored_history", fake_history)
    path, result = report.stored_schedule("modern-short")
    first = plan.run_name(seed=plan.seeds[0])
    assert path.name == f"{first}-cpu.json" and result["date"] == "2026-12-05"
    assert [r["seed"] for r in result["runs"]] == list(plan.seeds) and result["final_acc"]["min"] == 0.879
    assert report.stored_schedule("modern-final") is None                 # not recorded this way
    text = "\n".join(report.modern_test_section(path, result, short=True))
    assert f"(stored runs `{first}-cpu.json` and its other seeds, 2026-12-05)" in text
    assert "- goal (>= 88.2% on every seed, every seed within 8 min): **missed**: lowest seed 0.0030 short" in text
    first_seed, second_seed = plan.seeds[:2]
    assert f"| {second_seed} | 0.8790 | 411 | not reached |" in text
    assert f"| {first_seed} | 0.8850 | 410 | epoch 2, 400 s |" in text
    assert "short schedule" in report.render(tmp_path, stored=True)
    assert "short schedule" not in report.render(tmp_path, stored=False)


def test_a_result_without_a_store_name_is_sorted_by_its_network_and_epochs():
    from vgg_helpers.book.plans import MODERN, MODERN_SHORT

    def settings(plan) -> dict:
        return {"settings": {"arch": plan.model["arch"], "recipe": {"epochs": plan.run.epochs}}}

    short, final = settings(MODERN_SHORT["cpu"]), settings(MODERN["cpu"])
    named = {"settings": {"arch": "modern-128", "recipe": {"epochs": 8}, "store": "modern-short"}}
    assert [report.schedule_of(r) for r in (short, final, named)] == ["modern-short", "modern-final", "modern-short"]


def test_your_run_bench_runs_the_chapter_up_to_its_live_cell():
    import nbformat

    from bench import your_run

    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    chapter = nbformat.v4.new_notebook(cells=[md("# T"), code("a = 1"), md("## Your run\n\ntext"),
                                              code("history = train()"), code("after()")])
    cells, live = your_run.cells_to_run(chapter, float32=True)
    assert [c.source for c in cells[1:live + 1]] == ["a = 1", "history = train()"]
    assert "bf16_supported = lambda" in cells[0].source and "@@" in cells[-1].source
    assert "bf16_supported = lambda" not in your_run.cells_to_run(chapter, float32=False)[0][0].source
    for stem in ("06-batch-norm-fix", "07-paper-methods", "08-training-fast", "09-airbench-style-vgg"):
        nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / f"{stem}.ipynb", as_version=4)
        cells, live = your_run.cells_to_run(nb, float32=False)
        assert "train" in cells[live].source, stem
    with pytest.raises(SystemExit, match="no '## Your run' section"):
        your_run.cells_to_run(nbformat.v4.new_notebook(cells=[md("# T"), code("x")]), float32=False)


def test_the_measurement_protocol_is_one_text_for_the_benchmarks_and_the_book():
    """bench/README.md holds the protocol between two markers; the book's page includes exactly that part (no
    second copy to drift), and every training page that records choices links it."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "bench" / "README.md").read_text()
    start, end = "<!-- protocol-start -->", "<!-- protocol-end -->"
    assert readme.count(start) == readme.count(end) == 1 and readme.index(start) < readme.index(end)
    protocol = readme[readme.index(start):readme.index(end)]
    rules = [line for line in protocol.splitlines() if line[:3] in {f"{n}. " for n in range(1, 10)}]
    assert len(rules) == 6, rules
    for words in ("validation", "sqrt(seeds)", "seeds declared beforehand", "get_cpu_capability", "worst seed"):
        assert words in protocol, words
    page = (root / "book" / "measurement-protocol.md").read_text()
    assert f"```{{include}} ../bench/README.md\n:start-after: {start}\n:end-before: {end}\n```" in page
    assert "book/measurement-protocol" in (root / "_toc.yml").read_text()
    for name in ("batch-norm-fix", "training-fast", "airbench-style-vgg"):
        assert "{doc}`../measurement-protocol`" in (root / "book" / "how-made" / f"{name}.md").read_text(), name


def test_float32_hold_out_runs_are_reported_apart_with_their_cpu_and_full_set_time(tmp_path):
    runs = [{"seed": s, "final_acc": a, "seconds": t} for s, a, t in ((0, 0.88, 500.0), (1, 0.87, 516.0))]
    result = {"kind": "modern-vgg-holdout-cpu-float32", "date": "2026-12-07T01:00:00+00:00",
              "environment": {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "cpu_bf16": False,
                              "cpu_count": 2},
              "settings": {"arch": "modern-128", "train_images": 45_000, "recipe": {"epochs": 7, "batch_size": 1024}},
              "runs": runs, "final_acc": {"mean": 0.875, "sd": 0.0071, "median": 0.875}}
    path = save(result, tmp_path)
    changed = {**result, "settings": {**result["settings"], "recipe": {"epochs": 7, "batch_size": 1024,
                                                                       "label_smoothing": 0.0}}}
    text = "\n".join(report.float32_holdout_section([(path, result), (path, changed)]))
    assert "Intel(R) Xeon(R) Processor (AVX512, no native bfloat16), 2 cores" in text
    assert "0.8800 (seed 0) / 0.8700 (seed 1)" in text and "| 500 / 516 | 576 |" in text   # 516 x 48 / 43
    assert "| `modern-128`, 7 | " in text and "| `modern-128`, 7, label_smoothing=0.0 | " in text  # a change is named
    assert "float32" in report.render(tmp_path, stored=False).split("### Modern VGG in float32")[1][:200]


def _float32_test_result(arch: str, epochs: float, runs: list[tuple[int, float, float]]) -> dict:
    """A ``bench.modern_vgg --float32`` test-set result of ``arch`` for ``epochs``, with (seed, accuracy, seconds)
    per run, as the Intel Xeon without native bfloat16 would record it."""
    from dataclasses import asdict

    from vgg_helpers.modern import ModernRecipe

    acc, sec = [a for _, a, _ in runs], [t for _, _, t in runs]
    return {"kind": "modern-vgg-test-cpu-float32", "date": "2026-12-07T02:30:00+00:00",
            "environment": {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "cpu_bf16": False,
                            "cpu_count": 2, "torch": "2.14.1", "python": "3.11.7", "torch_threads": 2},
            "settings": {"arch": arch, "layers": [64, "M", "G"], "activation": "gelu", "train_images": 50_000,
                         "measured_on": "10,000 test images", "data_source": "CIFAR-10 JPEG copy", "autocast": None,
                         "recipe": asdict(ModernRecipe(epochs=epochs))},
            "runs": [{"seed": s, "final_acc": a, "seconds": t, "epoch_acc": [None], "epoch_to_blog_post": None,
                      "seconds_to_blog_post": None} for s, a, t in runs],
            "final_acc": {"mean": sum(acc) / len(acc), "sd": 0.0035, "median": sum(acc) / len(acc),
                          "min": min(acc), "max": max(acc)},
            "seconds": {"median": sum(sec) / len(sec), "min": min(sec), "max": max(sec)}, "data_load_s": 30.0}


def test_the_float32_short_schedule_is_judged_by_its_own_goal(tmp_path):
    from vgg_helpers.book.plans import MODERN_SHORT

    short = MODERN_SHORT["cpu"]
    result = _float32_test_result(short.model["arch"], short.run.epochs, [(200, 0.885, 620.0), (201, 0.880, 910.0)])
    assert report.is_short_schedule(result["settings"])
    save(result, tmp_path)
    text = report.render(tmp_path, stored=False)
    assert "kept for 15 minutes in float32 on a CPU without native bfloat16" in text
    assert "every seed within 15 min): **missed**: lowest seed 0.0020 short, slowest seed 10 s over" in text
    assert "cpu floor" not in text                                   # not judged as the final recipe


def test_a_float32_schedule_other_than_the_short_one_is_judged_by_the_float32_goal(tmp_path):
    from vgg_helpers.book.plans import MODERN, MODERN_SHORT

    arch = "modern-128"                  # the Xeon's first float32 schedule: neither the final nor the short one
    assert arch not in (MODERN["cpu"].model["arch"], MODERN_SHORT["cpu"].model["arch"])
    result = _float32_test_result(arch, 7, [(210, 0.884, 780.0), (211, 0.883, 890.0)])
    assert not report.is_final_schedule(result["settings"]) and not report.is_short_schedule(result["settings"])
    save(result, tmp_path)
    text = report.render(tmp_path, stored=False)
    assert f"`{arch}` for 7 epochs, a schedule for 88.2% within 15 minutes in float32" in text
    assert "every seed within 15 min): **met**" in text and "cpu floor" not in text
    final = _float32_test_result(MODERN["cpu"].model["arch"], MODERN["cpu"].run.epochs, [(100, 0.902, 1579.0)])
    assert report.is_final_schedule(final["settings"])


def test_every_test_set_recording_is_listed_oldest_first_with_its_cpu_and_precision(tmp_path):
    xeon = _float32_test_result("modern-128-256", 7, [(210, 0.8887, 701.04), (211, 0.8877, 776.4)])
    older = {**_float32_test_result("modern-128", 15, [(0, 0.8984, 817.3)]), "kind": "modern-vgg-test-cpu",
             "date": "2026-11-27T18:08:53+00:00"}
    older["environment"] = {**older["environment"], "cpu": "AMD EPYC", "cpu_bf16": None}
    older["settings"] = {**older["settings"], "autocast": "bfloat16",
                         "recipe": {**older["settings"]["recipe"], "ema_from_epoch": 2}}
    (tmp_path / "modern-vgg-test-cpu-float32-2026-12-07T023000Z.json").write_text(json.dumps(xeon))
    (tmp_path / "modern-vgg-test-cpu-2026-11-27T180853Z.json").write_text(json.dumps(older))
    (tmp_path / "modern-vgg-holdout-cpu-2026-12-07T000000Z.json").write_text(json.dumps(xeon))   # not the test set
    rows = report.recordings_on_test_set(tmp_path)
    assert report.recordings_on_test_set(tmp_path, stored=False) == rows      # another folder: no stored runs
    assert [r["source"] for r in rows] == ["bench/results/modern-vgg-test-cpu-2026-11-27T180853Z.json",
                                           "bench/results/modern-vgg-test-cpu-float32-2026-12-07T023000Z.json"]
    first, last = rows
    assert (first["date"], first["precision"], first["cpu"], first["under_protocol"]) == \
        ("2026-11-27", "bfloat16", "AMD EPYC", False)
    assert first["recipe_changes"] == {"ema_from_epoch": 2} and last["recipe_changes"] == {}
    assert (last["date"], last["precision"], last["cpu"], last["cpu_bf16"], last["under_protocol"]) == \
        ("2026-12-07", "float32", "Intel Xeon", False, True)
    assert (last["network"], last["epochs"], last["seeds"], last["test_acc"], last["seconds"]) == \
        ("modern-128-256", 7, [210, 211], [0.8887, 0.8877], [701.0, 776.4])
    assert json.loads(report.results_text(tmp_path))["test_set_recordings"] == rows


def test_the_report_check_fails_while_the_shipped_results_are_stale(tmp_path, monkeypatch, capsys):
    shipped = report.RESULTS_FILE.read_text()
    readme, recordings = tmp_path / "README.md", tmp_path / "results.json"
    readme.write_text(report.README.read_text())
    edited = json.loads(shipped)
    edited["test_set_recordings"][0]["test_acc"][0] += 0.01            # one seed's accuracy edited by hand
    recordings.write_text(json.dumps(edited))
    monkeypatch.setattr(report, "README", readme)
    monkeypatch.setattr(report, "RESULTS_FILE", recordings)
    assert report.main(["--check"]) == 1
    assert f"{recordings} out of date with the recorded results" in capsys.readouterr().out
    recordings.unlink()                                                 # a missing file is stale too
    assert report.main(["--check"]) == 1
    assert report.main([]) == 0 and report.main(["--check"]) == 0
    assert recordings.read_text() == shipped and readme.read_text() == report.README.read_text()


def test_the_how_made_page_lists_every_test_set_recording():
    page = (report.README.parents[1] / "book" / "how-made" / "airbench-style-vgg.md").read_text()
    for r in report.recordings_on_test_set():
        name = r["source"].rsplit("/", 1)[-1] if r["source"].startswith("bench/") else r["source"].split()[2]
        assert f"`{name}`" in page, f"{r['source']} is not in the how-made page's list of test-set recordings"


def test_hold_out_comparisons_pair_each_arm_with_its_base_seed_by_seed(tmp_path):
    from vgg_helpers.book.plans import BATCH_NORM

    run = {"train_size": None, "val_size": 5000, "epochs": 6, "batch_size": 128, "test_size": None}
    classic = {"kind": "holdout-batch-norm-cpu", "date": "2026-12-06T16:12:09+00:00", "plan": "batch-norm",
               "budget": "cpu", "changes": {"epochs": 4}, "base_source": "stored", "run": run,
               "arm_run": {**run, "epochs": 4}, "seeds": [0, 1, 2], "threads": 2,
               "environment": {"cpu": "AMD EPYC", "cpu_bf16": True},
               "base": [{"seed": s, "val_acc": a} for s, a in zip((0, 1, 2), (0.81, 0.812, 0.815))],
               "arm": [{"seed": s, "val_acc": a} for s, a in zip((0, 1, 2), (0.778, 0.781, 0.787))],
               "decision": {"gains": [-0.032, -0.031, -0.028], "mean": -0.0303, "se": 0.0012}}
    (tmp_path / "holdout-batch-norm-cpu-2026-12-06T161209Z.json").write_text(json.dumps(classic))
    base_stamp, arm_stamp = report.MODERN_COMPARISONS[0]
    base = _float32_test_result("modern-128-256", 7, [(0, 0.885, 400.0), (1, 0.883, 410.0), (2, 0.885, 405.0)])
    arm = _float32_test_result("modern-128-256", 7, [(0, 0.884, 401.0), (1, 0.887, 402.0), (2, 0.882, 403.0)])
    arm["settings"]["recipe"]["label_smoothing"] = 0.0
    for stamp, r in ((base_stamp, base), (arm_stamp, arm)):
        (tmp_path / f"modern-vgg-holdout-cpu-{stamp}.json").write_text(json.dumps({**r, "date": "2026-12-07"}))
    classic_row, modern_row = report.holdout_comparisons(tmp_path)        # the other declared pairs are absent
    assert (classic_row["plan"], classic_row["base"], classic_row["change"], classic_row["epochs"]) == \
        ("batch-norm", "the plan, epochs=6", "epochs=4", 4)
    assert classic_row["network"] == f"vgg11 x{BATCH_NORM['cpu'].model['width']:g}"
    assert classic_row["precision"] == "float32" and classic_row["gains"] == [-0.032, -0.031, -0.028]
    assert (modern_row["plan"], modern_row["base"], modern_row["change"]) == \
        ("modern", "the final recipe, epochs=7", "label_smoothing=0")
    assert [round(g, 4) for g in modern_row["gains"]] == [-0.001, 0.004, -0.003]
    assert modern_row["cpu"] == "Intel Xeon" and modern_row["precision"] == "float32"
    arm["runs"] = arm["runs"][:2]                                          # seeds that do not pair
    (tmp_path / f"modern-vgg-holdout-cpu-{arm_stamp}.json").write_text(json.dumps(arm))
    with pytest.raises(ValueError, match="trained different seeds: they cannot be paired"):
        report.holdout_comparisons(tmp_path)


def test_precision_steps_keep_every_row_with_its_cpu(tmp_path):
    env = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_bf16": False, "torch_threads": 2}
    rows = [{"plan": "fast", "network": "vgg11", "width": 0.5, "batch_size": 128,
             "median_s": {"float32": 0.15, "bfloat16": 0.417}},
            {"plan": "modern", "network": "modern-128-256", "width": None, "batch_size": 1024, "layout": "contiguous",
             "median_s": {"float32": 2.95432, "bfloat16": 6.81}}]
    (tmp_path / "precision-cpu-2026-12-07T000849Z.json").write_text(json.dumps(
        {"kind": "precision-cpu", "date": "2026-12-07T00:08:49+00:00", "environment": env, "rows": rows}))
    fast, modern = report.precision_steps(tmp_path)
    assert (fast["cpu"], fast["cpu_bf16"], fast["network"], fast["layout"], fast["float32_s"]) == \
        ("Intel Xeon", False, "vgg11 x0.5", "channels_last", 0.15)
    assert (modern["network"], modern["layout"], modern["float32_s"], modern["bfloat16_s"]) == \
        ("modern-128-256", "contiguous", 2.9543, 6.81)
    assert json.loads(report.results_text(tmp_path))["precision_steps"] == [fast, modern]
