"""The README and docs/ are current: every relative link points at a file, the code blocks run, the sample
outputs are what the commands print today, and the settings tables match the code.

What runs, block by block (a fenced block preceded by `<!-- no-test: why -->` is skipped):
- ```python blocks are executed, each in a fresh namespace, in a temporary directory;
- ```bash blocks: every `arena` command that works without a service (`arena tasks`, `arena train`,
  `arena --version`) runs and must exit 0; the commands that need a service (`arena submit`, `status`,
  `leaderboard`, ...) and `curl` lines run in order against a fresh embedded service per file (API and a
  worker as real processes; after a POST /jobs or /studies the test waits for its jobs to finish, so the ids and the
  runs the later lines name exist);
- ```console blocks: each `$ arena ...` line runs and its output must be the lines shown (times in seconds
  masked, since they vary); a sample that starts with "arena: " is an error and must exit with code 2.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Service, _clean_env, wait_for

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]
# Pages written by others (wholly or partly): their links must point at files, their anchors are theirs to keep.
NOT_OURS = {"statistics.md", "operations.md", "studies.md"}
ARENA = [sys.executable, "-m", "arena"]
LOCAL_COMMANDS = {"tasks", "train", "--version", "--help"}  # work without a service
SERVICE_COMMANDS = {"submit", "status", "jobs", "cancel", "leaderboard", "compare", "summary", "plot", "export", "study"}


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skipped: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found, lines, index = [], path.read_text().splitlines(), 0
    while index < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[index])
        if not match:
            index += 1
            continue
        start, body = index, []
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        found.append(Block(path, start + 1, match.group(1), "\n".join(body) + "\n", previous.strip().startswith("<!-- no-test")))
        index += 1
    return found


ALL_BLOCKS = [block for path in MARKDOWN for block in blocks(path)]


def shell_commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # not a command line shlex can read: kept whole, so a test names it
            commands.append(line.strip())
            continue
        if words:
            commands.append(shlex.join(words))
    return commands


def arena_subcommand(command: str) -> str | None:
    words = command.split()
    return words[1] if len(words) > 1 and words[0] == "arena" else None


def prose(path: Path) -> str:
    """The file without its code blocks (a link in a code block is an example, not a link)."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose(path).splitlines() if re.match(r"^#{1,6} ", line)}


# --- the README's length and the links ------------------------------------------------------------


def test_the_readme_is_a_page_a_newcomer_reads_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) <= 320, f"README.md has {len(lines)} lines; move details to docs/"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files_and_headings(path):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(path)):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        file, _, anchor = target.partition("#")
        destination = (path.parent / file).resolve() if file else path
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and destination.suffix == ".md" and path.name not in NOT_OURS and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.name}")
    assert not broken, f"{path.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {Path(target.partition("#")[0]).name for target in re.findall(r"\]\((docs/[^)\s#]+)", prose(README))}
    orphans = sorted(path.name for path in DOCS.glob("*.md") if path.name not in linked)
    assert not orphans, f"README.md links none of {orphans}"


# --- code blocks ------------------------------------------------------------------------------------

PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python" and not b.skipped]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_blocks_run(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write pictures
    monkeypatch.setenv("MPLBACKEND", "Agg")
    exec(compile(block.code, block.id, "exec"), {"__name__": f"doc_{block.line}"})


LOCAL_LINES = [
    (block, command)
    for block in ALL_BLOCKS
    if block.lang in ("bash", "sh") and not block.skipped
    for command in shell_commands(block)
    if arena_subcommand(command) in LOCAL_COMMANDS
]


@pytest.mark.parametrize(("block", "command"), LOCAL_LINES, ids=[f"{b.id} {c[:60]}" for b, c in LOCAL_LINES])
def test_local_arena_commands_exit_0(block, command, tmp_path):
    result = subprocess.run(ARENA + shlex.split(command)[1:], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])


def test_every_arena_command_in_a_tested_block_is_run():
    """A shell block that is not skipped may hold only commands this file knows how to run."""
    unknown = [
        (block.id, command)
        for block in ALL_BLOCKS
        if block.lang in ("bash", "sh") and not block.skipped
        for command in shell_commands(block)
        if not (arena_subcommand(command) in LOCAL_COMMANDS | SERVICE_COMMANDS or command.startswith("curl "))
    ]
    assert not unknown, f"mark these blocks <!-- no-test: why --> or make them runnable: {unknown}"


CONSOLE_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "console" and not b.skipped]
SECONDS = re.compile(r"\d+(\.\d+)? (CPU )?s\b")


def console_samples(block: Block) -> list[tuple[str, list[str]]]:
    samples = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            samples.append((line[2:], []))
        else:
            samples[-1][1].append(line)
    return samples


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=lambda b: b.id)
def test_console_samples_are_what_the_commands_print_today(block, tmp_path):
    for command, expected in console_samples(block):
        assert arena_subcommand(command) in LOCAL_COMMANDS, command
        result = subprocess.run(ARENA + shlex.split(command)[1:], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        error = bool(expected) and expected[0].startswith("arena: ")
        assert result.returncode == (2 if error else 0), (command, result.stderr)
        printed = (result.stderr if error else result.stdout).rstrip("\n").splitlines()
        mask = lambda lines: [SECONDS.sub("<seconds>", line.rstrip()) for line in lines]  # noqa: E731
        assert mask(printed) == mask(expected), f"{block.id}: `{command}` now prints:\n" + "\n".join(printed)


# --- the examples that need a service ------------------------------------------------------------------

SERVICE_FILES = [
    path
    for path in MARKDOWN
    if any(
        arena_subcommand(c) in SERVICE_COMMANDS or c.startswith("curl ")
        for block in blocks(path)
        if block.lang in ("bash", "sh") and not block.skipped
        for c in shell_commands(block)
    )
]


@pytest.mark.parametrize("path", SERVICE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_service_examples_run_in_order_against_a_fresh_service(path, tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    service = Service("embedded", _clean_env({"ARENA_DATA_DIR": str(data_dir)}), data_dir)
    env = {**service.env, "ARENA_URL": service.base_url}
    work = tmp_path / "work"
    work.mkdir()

    def all_jobs_finished():
        jobs = service.client.get("/jobs", params={"limit": 500}).json()["jobs"]
        return all(job["status"] not in ("queued", "running") for job in jobs)

    try:
        service.start_api()
        service.start_worker()
        for block in blocks(path):
            if block.lang not in ("bash", "sh") or block.skipped:
                continue
            for command in shell_commands(block):
                if command.startswith("curl "):
                    # -f: an HTTP error fails the line; the docs' localhost:8000 is this service.
                    line = "curl -f " + command[len("curl ") :].replace("localhost:8000", service.base_url)
                    result = subprocess.run(line, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=120)
                    submitted = "-X POST" in command and ("/jobs" in command or "/studies" in command) and "/cancel" not in command
                elif arena_subcommand(command) in SERVICE_COMMANDS:
                    result = subprocess.run(ARENA + shlex.split(command)[1:], cwd=work, env=env, capture_output=True, text=True, timeout=600)
                    submitted = False  # `arena submit` waits only when the docs say --wait
                else:
                    continue  # local commands: test_local_arena_commands_exit_0
                assert result.returncode == 0, f"{block.id}: `{command}` exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}\n{service.diagnosis()}"
                if submitted:
                    wait_for(all_jobs_finished, 300, interval=0.5, message=f"the jobs of `{command[:60]}` to finish")
    finally:
        service.stop()


# --- tables that must match the code ---------------------------------------------------------------------


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of each row of the first table after `heading` (its header and rule dropped)."""
    lines = text[text.index(heading) :].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return table[2:]


def same_default(cell: str, default) -> bool:
    first = cell.split()[0].strip("`")
    if default is None:
        return first == "null"
    if default == "":
        return first == "empty"
    if isinstance(default, bool):
        return first == str(default).lower()
    if isinstance(default, (int, float)):
        try:
            return float(first.replace(",", "")) == float(default)
        except ValueError:
            return False
    return first == str(getattr(default, "value", default))


def test_the_method_settings_tables_match_the_settings_models():
    from arena.methods import ALGORITHMS

    text = (DOCS / "methods.md").read_text()
    for name, module in ALGORITHMS.items():
        heading = f"### `{name}` settings"
        assert heading in text, f"docs/methods.md has no {heading!r} table"
        rows = {row[0].strip("`"): row[1] for row in table_rows(text, heading)}
        fields = module.Settings.model_fields
        assert set(rows) == set(fields), (name, set(rows) ^ set(fields))
        wrong = {key: (rows[key], field.default) for key, field in fields.items() if not same_default(rows[key], field.default)}
        assert not wrong, f"{name}: documented default vs the model's: {wrong}"


def test_the_environment_table_matches_the_settings_module():
    from arena.store.settings import Settings

    text = (DOCS / "service.md").read_text()
    rows = {row[0].strip("`"): row[1] for row in table_rows(text, "## Settings")}
    fields = {field.validation_alias: field for field in Settings.model_fields.values()}
    assert set(rows) == set(fields), set(rows) ^ set(fields)
    for alias, field in fields.items():
        if alias in ("DATABASE_URL", "BROKER_URL", "ARENA_DATA_DIR"):
            continue  # derived from the data directory: documented in words
        assert same_default(rows[alias], field.default), (alias, rows[alias], field.default)
