"""The README's front door: its install and test commands are the ones CI runs first, in a fresh virtual
environment (.ci/run, part 1), so a green CI means a newcomer's commands work as written."""
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
    """The install and test commands of the README's first shell block, comments stripped."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        block = re.search(r"```bash\n(.*?)```", f.read(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    install = [c for c in commands if c.startswith("pip install")]
    test = [c for c in commands if c.startswith("python -m pytest")]
    return install, test


def test_ci_runs_the_readmes_install_and_test_commands_as_written():
    install, test = readme_commands()
    assert install == ['pip install -e ".[test]"'] and len(test) == 1, (install, test)
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci_lines = [line.strip() for line in f]
    first_part = ci_lines[:ci_lines.index(test[0]) + 1]  # the README's test command, then the extras' part
    assert install[0] in first_part and "python3 -m venv \"$venv\"" in first_part
    assert first_part.index(install[0]) < first_part.index(test[0])
    assert not any(line.startswith("pip install") and re.search("atari|mujoco|tensorboard", line)
                   for line in first_part)  # no extra before the README's suite has run
