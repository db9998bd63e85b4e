"""What a new user reads first: `nnlab list [NAME]` and the commands' help."""

from __future__ import annotations

from typer.testing import CliRunner

from nnlab.cli.main import app


def invoke(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})


def test_list_one_name_shows_only_it_with_rounded_floats():
    out = invoke("list", "har").stdout
    assert out.startswith("Datasets:\n  har ") and "Models:" not in out
    assert "test_split: float = 0.1667" in out and "synthetic: bool | None = null" in out


def test_list_covers_the_train_keys_and_names_the_choices_for_an_unknown_name():
    out = invoke("list").stdout
    assert "Training:\n  train " in out and "      epochs: int = 10  passes over the training data" in out
    result = invoke("list", "mnsit")
    assert result.exit_code == 2 and "no dataset or model 'mnsit'" in result.stderr and "mnist56" in result.stderr


def test_help_shows_flags_without_a_type_and_examples_unwrapped():
    out = invoke("train", "--help").stdout
    assert "--dry-run         Print" in out and "<bool>" not in out
    assert "\n    nnlab train configs/digits_mlp.yaml train.epochs=5 model.hidden=[64,32]\n" in out
    assert "<bool>" not in invoke("runs", "--help").stdout


def test_shell_completion_installs_and_completes_commands_and_run_ids(tmp_path, monkeypatch):
    """Typer's --install-completion / --show-completion, and what the shell gets back when Tab is pressed."""
    from fake_runs import make_run

    assert "--install-completion" in invoke("--help").stdout
    # The shell named, not detected from the parent processes (which depend on how the tests were started:
    # under `make` in CI no shell was found and --show-completion exited 1).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="nnlab")
    assert script.exit_code == 0 and "complete -o default -F _nnlab_completion nnlab" in script.stdout

    make_run(tmp_path / "runs", "20260101-120000-mnist_mlp-ab12", "multiclass")
    make_run(tmp_path / "runs", "20260102-120000-pulse_gru-cd34", "sequence_regression")

    def tab(line: str) -> list[str]:
        words = line.split(" ")
        env = {"_NNLAB_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
        return CliRunner().invoke(app, [], prog_name="nnlab", env=env).stdout.split()

    assert tab("nnlab ev") == ["evaluate"]
    assert tab("nnlab predict 20260101") == ["20260101-120000-mnist_mlp-ab12"]
    assert tab("nnlab export l") == ["latest"]
