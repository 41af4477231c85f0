"""The memory-scale bench runs end to end at a tiny size and edits only its own section."""

from __future__ import annotations

from pathlib import Path

from bench import memory_scale


def test_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    res = memory_scale.run(600, 30, 40, tmp_path / "b.db", reflect_scopes=2)
    assert res.write is not None and res.write.rows == 600 and res.write.reflected_rows == 40
    assert res.rows_in_file == 640 and res.recall.mean_results == 10.0
    again = memory_scale.run(600, 30, 40, tmp_path / "b.db", recall_only=True)
    assert again.write is None and again.rows_in_file == 640
    figures = [f for f, _, _ in memory_scale.report(res)]
    assert any(f.startswith("bulk insert") for f in figures)
    assert any(f.startswith("recall with a query") for f in figures)


def test_write_results_replaces_only_its_own_section(tmp_path: Path) -> None:
    res = memory_scale.run(200, 20, 10, tmp_path / "b.db", reflect_scopes=1)
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Performance (issue 6)\n\nkeep me\n")
    memory_scale.write_results(res, "cmd one", path)
    memory_scale.write_results(res, "cmd two", path)
    text = path.read_text()
    assert text.count(memory_scale.SECTION) == 1 and "cmd two" in text and "cmd one" not in text
    assert text.startswith("# Benchmark results\n\n## Performance (issue 6)\n\nkeep me\n")
    path.write_text(f"# B\n\n{memory_scale.SECTION}\n\nold\n\n## Other\n\nkeep too\n")
    memory_scale.write_results(res, "cmd three", path)
    text = path.read_text()
    assert "old" not in text and text.rstrip().endswith("## Other\n\nkeep too")
