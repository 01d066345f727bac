"""Everything the audit reads statically from a script, as one JSON-able plan.

``make_plan`` runs in the parent when this interpreter parses the script. When the script
needs newer syntax (PEP 701 f-strings need 3.12) and ``--python`` names an interpreter that
has it, the same function runs there instead: ``python -m golf_audit.submission.plan SCRIPT``
reads the decoded source from stdin and prints the plan as JSON.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from ..findings import CheckResult, Evidence, Severity, Status
from . import analyze, inline, static


@dataclass
class Plan:
    build: str  # code assigning the model to __ga_model__ ("" when it cannot be built)
    build_error: str  # why not
    targets: list[analyze.EvalTarget]
    env_names: list[str]  # every env var the Hyperparameters class reads
    tiny_env: dict[str, str]
    static: list[CheckResult] = field(default_factory=list)


def make_plan(text: str, path: str, functions: list[str] | None = None, inline_selector: str | None = None,
              env: dict[str, str] | None = None) -> Plan:
    """Parse and analyze one decoded script (raises SyntaxError when it does not parse here)."""
    tree = ast.parse(text)
    variables = analyze.env_vars(tree)
    targets = analyze.eval_targets(tree, text, functions)
    if inline_selector is not None:
        targets += inline.inline_targets(tree, text, inline_selector)
    elif not functions:
        # Automatic candidates: only blocks that look like a complete eval (they return loss and bpb).
        targets += [t for t in inline.inline_targets(tree, text) if not t.error]
    try:
        build, build_error = analyze.model_build(tree, text)[0], ""
    except analyze.AnalysisError as exc:
        build, build_error = "", str(exc)
    return Plan(build, build_error, targets, [v.name for v in variables], analyze.tiny_env(variables, env),
                static.run_all(tree, path))


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {"build": plan.build, "build_error": plan.build_error, "targets": [dataclasses.asdict(t) for t in plan.targets],
            "env_names": plan.env_names, "tiny_env": plan.tiny_env,
            "static": [dataclasses.asdict(r) for r in plan.static]}


def plan_from_json(data: dict[str, Any]) -> Plan:
    checks = []
    for r in data["static"]:
        evidence = [Evidence(**e) for e in r.pop("evidence")]
        checks.append(CheckResult(**{**r, "status": Status(r["status"]), "severity": Severity(r["severity"]),
                                     "evidence": evidence}))
    return Plan(data["build"], data["build_error"], [analyze.EvalTarget(**t) for t in data["targets"]],
                data["env_names"], data["tiny_env"], checks)


def plan_elsewhere(python: str, text: str, path: str, functions: list[str] | None, inline_selector: str | None,
                   env: dict[str, str] | None, timeout_s: float = 60.0) -> Plan:
    """Run ``make_plan`` under another interpreter (it parses syntax this one cannot)."""
    from .runner import REPO_ROOT

    request = json.dumps({"text": text, "path": path, "functions": functions, "inline": inline_selector, "env": env})
    try:
        done = subprocess.run([python, "-m", "golf_audit.submission.plan"], input=request, capture_output=True,
                              text=True, timeout=timeout_s, cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"--python {python}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"--python {python} could not analyze the script: {tail}")
    return plan_from_json(json.loads(done.stdout))


def main() -> None:
    req = json.loads(sys.stdin.read())
    plan = make_plan(req["text"], req["path"], req["functions"], req["inline"], req["env"])
    sys.stdout.write(json.dumps(plan_to_json(plan), default=str))


if __name__ == "__main__":
    main()
