"""The README runner (test/readme/run_readme_commands.py) finds the recipes of README.md and docs/*.md and has a rule
for each; running them is its own job (not part of the unit tests)."""
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_runner():
    path = os.path.join(REPO, "test", "readme", "run_readme_commands.py")
    spec = importlib.util.spec_from_file_location("run_readme_commands", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclass looks its module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_shell_blocks_of_every_kind_are_recipes_and_other_blocks_are_not(tmp_path):
    runner = load_runner()
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\nmake demo\n```\n"
        "```bash\n# a comment\npython -m fer_mask_ros classify photo.jpg \\\n    --output faces.csv\n```\n"
        "```console\n$ rostopic list\n/rosout\n```\n"
        "  ```\n  export NAO_PASSWORD='x'   # a comment\n  roslaunch fer_mask_ros nao.launch\n  ```\n"
        "```\nfer_mask_ros/   the package\n```\n"
        "```python\nimport fer_mask_ros\n```\n"
        "```\nerror: missing.mp4: no such file\n```\n",
        encoding="utf-8")
    assert runner.commands(str(doc)) == [
        ("make demo", ""),
        ("python -m fer_mask_ros classify photo.jpg      --output faces.csv", ""),
        ("rostopic list", ""),
        ("export NAO_PASSWORD='x'   # a comment", ""),
        ("roslaunch fer_mask_ros nao.launch", "export NAO_PASSWORD='x'"),
    ]


def test_every_documented_command_has_a_rule():
    runner = load_runner()
    files = runner.default_files()
    assert os.path.join(REPO, "docs", "ANALYSIS.md") in files
    unjudged = [(os.path.basename(f), c) for f in files for c, _ in runner.commands(f)
                if runner.rule_for(c).mode == "none"]
    assert unjudged == []


def test_cluster_display_and_dataset_recipes_are_skipped_with_a_reason():
    runner = load_runner()
    for command in ("sbatch analyze.sbatch", "python -m fer_mask_ros analyze /data/sessions --output /scratch/out",
                    "xdg-open out/demo/report.html", "python -m fer_mask_ros analyze session.mp4 --output o --play",
                    "python tools/finetune_detector.py train --seed 0"):
        rule = runner.rule_for(command)
        assert rule.mode == "skip" and rule.why, command
    assert runner.rule_for("python -m pytest test/unit/test_safe_write.py").mode == "run"
    assert runner.rule_for("rostest fer_mask_ros reconnect.test").mode == "run"
