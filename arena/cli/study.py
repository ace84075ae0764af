"""`arena study run FILE|NAME [--wait]`, `arena study show ID`, `arena study list`: studies over HTTP."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from arena.cli.errors import UsageError
from arena.cli.http import FINISHED, ServiceClient, add_url


def register(commands) -> None:
    study = commands.add_parser("study", help="studies: methods compared along an axis (network size, problem size, budget, a setting)")
    actions = study.add_subparsers(dest="study_command", metavar="ACTION")
    run = actions.add_parser("run", help="submit a study from a JSON file or a built-in NAME (network-size, problem-size, ...)")
    run.add_argument("study", metavar="FILE|NAME", help="a JSON file (the POST /studies body) or a built-in study's name")
    run.add_argument("--wait", action="store_true", help="wait until every cell finished, then show the answer")
    run.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_url(run)
    run.set_defaults(handler=run_command)
    show = actions.add_parser("show", help="a study's progress, curves and crossovers in words")
    show.add_argument("id", type=int, help="study id")
    show.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(show)
    show.set_defaults(handler=show_command)
    listing = actions.add_parser("list", help="studies, newest first, with their progress")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(listing)
    listing.set_defaults(handler=list_command)
    study.set_defaults(handler=lambda args: study.print_help())


def study_body(text: str) -> dict:
    from arena.studies import BUILTIN

    path = Path(text)
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise UsageError(f"{text}: not JSON ({error.msg}, line {error.lineno})") from None
    if text in BUILTIN:
        return {"name": text}
    raise UsageError(f"{text!r} is neither a file nor a built-in study; built-in: {', '.join(BUILTIN)}")


def run_command(args) -> int:
    client = ServiceClient(args.url)
    created = client.post("/studies", study_body(args.study))
    if not args.wait:
        print(json.dumps(created) if args.json else f"study {created['study_id']}: {created['cells']} cells, {created['runs']} runs queued "
              f"(about {created['cpu_seconds_estimate']:,.0f} CPU seconds at most); `arena study show {created['study_id']}`")  # fmt: skip
        return 0
    while True:
        body = client.get(f"/studies/{created['study_id']}")
        if body["status"] in FINISHED:
            break
        if not args.json:
            print(f"\rstudy {body['id']}: {body['cells_finished']}/{body['cells']} cells, {body['progress']:.0%} of runs finished", end="", file=sys.stderr)
        time.sleep(1.0)
    print(file=sys.stderr)
    print(json.dumps(body, default=str) if args.json else format_study(body))
    return 0


def format_study(body: dict) -> str:
    lines = [f"study {body['id']} {body['name']!r}: {body['status']}, {body['cells_finished']}/{body['cells']} cells, {body['progress']:.0%} of runs finished"]
    for answer in body["answers"]:
        where = "".join(f" ({k} {v})" for k, v in answer["slice"].items())
        lines.append(f"\nalong {answer['axis']}{where}:")
        for method, points in sorted(answer["curves"].items()):
            cells = []
            for p in points:
                ert = "-" if p["ert_evaluations"] is None else f"{p['ert_evaluations']:,.0f}"
                cells.append(f"{p['value']}: {p['solved']}/{p['n']} ERT {ert}")
            lines.append(f"  {method:10s} " + "  |  ".join(cells))
        for pair in answer["crossovers"]:
            lines.append(f"  {pair['text']}")
    lines.append("\ncells: " + ", ".join(f"{c['point']} -> job {c['job_id']} ({c['status']})" for c in body["cell_list"]))
    return "\n".join(lines)


def show_command(args) -> int:
    body = ServiceClient(args.url).get(f"/studies/{args.id}")
    print(json.dumps(body, default=str) if args.json else format_study(body))
    return 0


def list_command(args) -> int:
    body = ServiceClient(args.url).get("/studies")
    if args.json:
        print(json.dumps(body, default=str))
        return 0
    for s in body["studies"]:
        print(f"{s['id']:>5}  {s['status']:9s}  {s['cells_finished']}/{s['cells']} cells  {s['progress']:4.0%}  {s['name']}")
    return 0
