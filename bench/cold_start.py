"""Cold start of every handler against the floor, as on Lambda (issue 10, point 4).

  python bench/cold_start.py                    # tracing off and as deployed (Active)
  python bench/cold_start.py --tracing off      # POWERTOOLS_TRACE_DISABLED=true only
  python bench/cold_start.py --runs 11 --top 5
  python bench/cold_start.py --python /path/to/py313-venv/bin/python   # as on Lambda

Each figure comes from a fresh interpreter (one subprocess per measurement) set up as
Lambda's python runtime sets up a function:
- awscrt cannot be imported (the runtime's boto3 has no CRT; a meta-path finder refuses
  it, so botocore takes its pure-Python paths as it does on Lambda);
- the environment a function gets: template.yaml's Globals and the function's own
  variables (intrinsics replaced by placeholders), AWS_REGION, LAMBDA_TASK_ROOT,
  AWS_LAMBDA_FUNCTION_NAME, AWS_EXECUTION_ENV, credentials; `--tracing off` adds
  POWERTOOLS_TRACE_DISABLED=true, `on` is the template's `Tracing: Active`, under which
  Powertools' Tracer is enabled (it sees LAMBDA_TASK_ROOT);
- the function's folder first on sys.path (the runtime's /var/task), then the layer.

The floor is a minimal Lambda handler in the same conditions: `import boto3;
boto3.client("dynamodb")` at module level. For each handler:
- `init ms`: importing the handler module (Lambda's INIT phase), and its ratio to the
  floor;
- `+ddb ms`: the same plus what every handler's first invocation starts with:
  `bootstrap.store()` and `boto3.client("dynamodb")` (the floor includes one client, so
  this is the like-for-like figure), and its ratio to the floor;
- `+models`: the same plus building the validator of every pydantic model the import
  defined that is not built yet (the domain's are built on first use): the most the
  first invocation can add for models, so a handler's cold start lies between `+ddb`
  and `+models`;
- `modules`: how many modules the import adds to sys.modules (stable, unlike the times);
- the top modules by cumulative import time (`python -X importtime`, one extra run).
Times are CPU time of the fresh process by default (`--clock wall` for elapsed time: on
a machine shared with other work, elapsed time mostly measures the others), medians over
`--runs` rounds; in each round the floor and every handler run
once, interleaved, so that a noisy machine weighs on all of them alike. Bytecode is
compiled by a warm-up round first (Lambda's runtime ships its .pyc; a layer built by SAM
does not, so the first cold start after a deploy is a little slower than this).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The distributions Lambda's python runtime brings (boto3 and what it needs).
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
LAYER = ROOT / "layers" / "shiplane"
FLOOR = "floor"
HIDDEN: list[str] = []
PYTHON = [sys.executable]
CLOCK = ["cpu"]
MARK = "#cold-start-mark#"

# Run in the fresh interpreter. argv: target ("floor" or a function folder), client (0/1).
PROBE = r"""
import sys, time, importlib.abc

class NotOnLambda(importlib.abc.MetaPathFinder):
    # What a function cannot import on Lambda (awscrt, pyOpenSSL, cryptography, moto...):
    # botocore and urllib3 must take the paths they take there.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

target, mode, clock = sys.argv[1], int(sys.argv[2]), sys.argv[4]
hidden = set(sys.argv[3].split(","))
sys.meta_path.insert(0, NotOnLambda())
if target != "floor":
    sys.path[:0] = [target, LAYER]
before = set(sys.modules)
sys.stderr.write(MARK + "\n"); sys.stderr.flush()
start, start_cpu = time.perf_counter(), time.process_time()
if target == "floor":
    import boto3
    boto3.client("dynamodb")
else:
    import app
    if mode >= 1:
        # What every first invocation starts with: the store (bootstrap), a client.
        from shiplane import bootstrap
        import boto3
        bootstrap.store()
        boto3.client("dynamodb")
    if mode >= 2:
        # As if the first invocation validated every model the handler imported.
        from pydantic import BaseModel
        for name, module in list(sys.modules.items()):
            if not name.startswith("shiplane"):
                continue
            for value in list(vars(module).values()):
                if (
                    isinstance(value, type)
                    and issubclass(value, BaseModel)
                    and value.__module__ == name
                    and not value.__pydantic_complete__
                    and not value.__pydantic_generic_metadata__["parameters"]
                ):
                    value.model_rebuild()
elapsed = time.perf_counter() - start if clock == "wall" else time.process_time() - start_cpu
added = set(sys.modules) - before
print(f"{elapsed * 1000:.3f} {len(added)} {int('aws_xray_sdk' in added)} {int('awscrt' in added)}")
""".replace("LAYER", repr(str(LAYER))).replace("MARK", repr(MARK))


class _CfnLoader(yaml.SafeLoader):
    """Reads template.yaml: CloudFormation's short-form intrinsics become placeholders."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    return {"intrinsic": suffix, "value": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass
class Function:
    name: str
    logical_id: str
    environment: dict[str, str]


def _value(value: Any, template: dict[str, Any]) -> str:
    """A variable's value: a parameter's default, or a placeholder for other intrinsics."""
    if not isinstance(value, dict):
        return str(value)
    parameter = template.get("Parameters", {}).get(value["value"] or "", {})
    if value["intrinsic"] == "Ref" and "Default" in parameter:
        return str(parameter["Default"])
    return f"placeholder-{value['intrinsic']}-{value['value']}"


def template_functions() -> tuple[list[Function], dict[str, Any]]:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    globals_ = template.get("Globals", {}).get("Function", {})
    common = globals_.get("Environment", {}).get("Variables", {})
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        name = Path(str(props.get("CodeUri", ""))).name
        if not (ROOT / "functions" / name / "app.py").exists():
            continue
        own = props.get("Environment", {}).get("Variables", {})
        env = {k: _value(v, template) for k, v in {**common, **own}.items()}
        functions.append(Function(name, logical_id, env))
    return sorted(functions, key=lambda f: f.name), globals_


def lambda_environment(function: Function | None, tracing: str, memory: int) -> dict[str, str]:
    """What the runtime gives a function (the parts an import can see)."""
    name = function.logical_id if function else "Floor"
    task_root = str(ROOT / "functions" / function.name) if function else "/var/task"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"shiplane-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/shiplane-{name}",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_ACCESS_KEY_ID": "ASIAXXXXXXXXXXXXXXXX",
        "AWS_SECRET_ACCESS_KEY": "cold-start-bench",
        "AWS_SESSION_TOKEN": "cold-start-bench",
        # No shared config or credentials files on Lambda.
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    }
    if function:
        env.update(function.environment)
    if tracing == "off":
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    else:
        # Tracing: Active: the runtime passes the daemon's address; the trace id is
        # per invocation and not set during INIT.
        env["AWS_XRAY_DAEMON_ADDRESS"] = "169.254.79.129:2000"
        env["AWS_XRAY_CONTEXT_MISSING"] = "LOG_ERROR"
    return env


@dataclass
class Sample:
    ms: float
    modules: int
    xray: bool
    awscrt: bool


@dataclass
class Figures:
    init: list[Sample] = field(default_factory=list)
    with_client: list[Sample] = field(default_factory=list)
    with_schemas: list[Sample] = field(default_factory=list)
    top: list[tuple[str, int]] = field(default_factory=list)

    def median(self, mode: int = 0) -> float:
        samples = [self.init, self.with_client, self.with_schemas][mode]
        return statistics.median(s.ms for s in samples)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def not_on_lambda() -> list[str]:
    """Top-level modules installed here that a function cannot import on Lambda: those of
    every distribution neither in the runtime nor in the layer (with what they need)."""
    wanted = set(RUNTIME)
    for line in (LAYER / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            wanted.add(re.split(r"[=<>\[; ]", line.strip())[0])
    allowed: set[str] = set()
    while wanted:
        name = _canonical(wanted.pop())
        if name in allowed:
            continue
        allowed.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" not in requirement:
                wanted.add(re.split(r"[=<>!~\[;( ]", requirement.strip())[0])
    allowed.add("shiplane")  # the layer itself (installed here in editable mode)
    hidden = {"awscrt"}  # the condition, whatever the venv holds
    for module, distributions in metadata.packages_distributions().items():
        if not any(_canonical(d) in allowed for d in distributions):
            hidden.add(module)
    return sorted(m for m in hidden if m.isidentifier())


def probe(target: str, env: dict[str, str], mode: int, importtime: bool = False) -> Any:
    argv = [PYTHON[0], *(["-X", "importtime"] if importtime else []), "-c", PROBE]
    done = subprocess.run(
        [*argv, target, str(mode), ",".join(HIDDEN), CLOCK[0]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"{target}: the import failed\n{done.stderr[-3000:]}")
    ms, modules, xray, crt = done.stdout.split()
    sample = Sample(float(ms), int(modules), xray == "1", crt == "1")
    if not importtime:
        return sample
    return sample, top_modules(done.stderr)


def top_modules(stderr: str) -> list[tuple[str, int]]:
    """(module, cumulative µs), largest first, of what was imported after the mark.

    The entries are disjoint (none imported by another shown), so their figures add up.
    Shiplane's own modules are opened up into what they import plus their own time
    ("(own)"), other packages shown whole; a chain of modules that each add little
    is shown by its last link that still holds 90 % of the chain's time."""
    lines = stderr.splitlines()
    Node = tuple[str, int, list[Any], int]
    pending: dict[int, list[Node]] = {}
    for line in lines[lines.index(MARK) + 1 :]:
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        # -X importtime prints a module after what it imports, one indent deeper.
        node = (name.strip(), int(cumulative), pending.pop(depth + 1, []), int(own))
        pending.setdefault(depth, []).append(node)
    frontier: list[Node] = []
    for root in pending.get(min(pending, default=0), []):
        # The root of the measurement (the handler module) is the whole figure.
        frontier.extend(root[2] if root[0] == "app" else [root])
    shown: list[tuple[str, int]] = []
    while frontier:
        frontier.sort(key=lambda n: -n[1])
        node = frontier.pop(0)
        children = sorted(node[2], key=lambda n: -n[1])
        if children and node[0].startswith("shiplane"):
            frontier.extend(children)
            frontier.append((f"{node[0]} (own)", node[3], [], node[3]))
            continue
        if children and children[0][1] >= 0.9 * node[1]:
            frontier.extend(children)  # the chain's cost is further down
            continue
        shown.append((node[0], node[1]))
        if len(shown) == 20:
            break
    return shown


def python_version() -> str:
    done = subprocess.run(
        [PYTHON[0], "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def run(tracing: str, runs: int, top: int, memory: int, only: list[str]) -> None:
    functions, globals_ = template_functions()
    if only:
        functions = [f for f in functions if f.name in only]
    targets: dict[str, tuple[str, dict[str, str]]] = {
        FLOOR: (FLOOR, lambda_environment(None, tracing, memory))
    }
    for f in functions:
        targets[f.name] = (str(ROOT / "functions" / f.name), lambda_environment(f, tracing, memory))
    figures = {name: Figures() for name in targets}
    for target, env in targets.values():  # warm-up: compile bytecode
        probe(target, env, mode=2)
    for _ in range(runs):
        for name, (target, env) in targets.items():
            figures[name].init.append(probe(target, env, mode=0))
            if name != FLOOR:
                figures[name].with_client.append(probe(target, env, mode=1))
                figures[name].with_schemas.append(probe(target, env, mode=2))
    for name, (target, env) in targets.items():
        figures[name].top = probe(target, env, mode=0, importtime=True)[1][:top]

    template_tracing = globals_.get("Tracing", "PassThrough")
    setting = (
        "POWERTOOLS_TRACE_DISABLED=true"
        if tracing == "off"
        else f"as deployed: Tracing {template_tracing}, Powertools Tracer enabled"
    )
    floor = figures[FLOOR].median()
    floor_sample = figures[FLOOR].init[0]
    print(f"== cold start, tracing {tracing} ({setting}) ==")
    print(
        f"python {python_version()}, what Lambda lacks hidden (awscrt...), "
        f"{CLOCK[0]} time, median of {runs} fresh interpreters; "
        f"floor = import boto3 + boto3.client('dynamodb'): {floor:.1f} ms, "
        f"{floor_sample.modules} modules"
    )
    header = (
        f"{'function':26} {'init ms':>8} {'ratio':>6} {'+ddb ms':>8} {'ratio':>6} "
        f"{'+models':>8} {'ratio':>6} {'modules':>7} {'xray':>5}  "
        f"top {top} by cumulative import (ms)"
    )
    print(header)
    print("-" * len(header))
    worst = [0.0, 0.0, 0.0]
    for name, fig in figures.items():
        sample = fig.init[0]
        if sample.awscrt:
            raise SystemExit(f"{name}: awscrt was imported; the finder did not hide it")
        tops = ", ".join(f"{mod} {us / 1000:.0f}" for mod, us in fig.top)
        if name == FLOOR:
            print(
                f"{name:26} {floor:8.1f} {1:6.2f} {'':>8} {'':>6} {'':>8} {'':>6} "
                f"{sample.modules:7d} {'yes' if sample.xray else 'no':>5}  {tops}"
            )
            continue
        init, client, models = fig.median(), fig.median(1), fig.median(2)
        worst = [max(w, x / floor) for w, x in zip(worst, [init, client, models], strict=True)]
        print(
            f"{name:26} {init:8.1f} {init / floor:6.2f} {client:8.1f} {client / floor:6.2f} "
            f"{models:8.1f} {models / floor:6.2f} "
            f"{sample.modules:7d} {'yes' if sample.xray else 'no':>5}  {tops}"
        )
    print(
        f"worst handler / floor: init {worst[0]:.2f}x, +ddb {worst[1]:.2f}x, "
        f"+models {worst[2]:.2f}x (target <= 1.30x)\n"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracing", choices=["off", "on", "both"], default="both")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--memory", type=int, default=512)
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of the fresh processes, e.g. a python3.13 virtual environment "
        "holding only boto3 and the layer's requirements (Lambda's runtime is python3.13)",
    )
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: the process's CPU time (steady on a shared machine; an import is CPU "
        "work, so on an idle machine it is close to the wall time); wall: elapsed time",
    )
    parser.add_argument("functions", nargs="*", help="only these functions/ folders")
    args = parser.parse_args()
    PYTHON[0] = args.python
    CLOCK[0] = args.clock
    HIDDEN[:] = not_on_lambda()
    print(
        f"not importable (not on Lambda): {len(HIDDEN)} top-level modules, e.g. "
        f"{', '.join(m for m in HIDDEN if m in {'awscrt', 'OpenSSL', 'cryptography', 'moto'})}"
    )
    if os.cpu_count() and os.cpu_count() == 1:
        print("one CPU: figures are noisier than usual")
    for tracing in ["off", "on"] if args.tracing == "both" else [args.tracing]:
        run(tracing, args.runs, args.top, args.memory, args.functions)


if __name__ == "__main__":
    main()
