"""The tool that times the README's two commands: which commands it reads, and how it counts their console lines."""
from pathlib import Path

from benchmarks.commands import console_lines, readme_commands, run_commands

REPO = Path(__file__).resolve().parents[1]


def test_reads_the_two_commands_of_the_readme():
    cmds = readme_commands(REPO / "README.md")
    assert len(cmds) == 2 and cmds[0].startswith("pip install") and "pytest" in cmds[1]


def test_console_lines_leave_out_progress_bar_redraws():
    text = "epoch 1/2: loss 1.0\n 50%|#####     | 1/2\rrun 1\n      \n\nreport: x\n"
    assert console_lines(text) == {"all": 5, "without_progress": 2}
    assert console_lines("") == {"all": 0, "without_progress": 0}


def test_each_step_is_counted_apart_and_a_failing_step_stops_the_command(tmp_path):
    (tmp_path / "logs").mkdir()
    out = run_commands([(1, "echo a; echo b && echo c && exit 3 && echo never")], tmp_path, tmp_path / "logs")
    rec = out["command_1"]
    assert rec["exit_code"] == 3 and [s["exit_code"] for s in rec["steps"]] == [0, 0, 3]
    assert [s["console_lines"]["all"] for s in rec["steps"]] == [2, 1, 0]
    assert (tmp_path / "logs" / "command_1.log").read_text() == "a\nb\nc\n"
