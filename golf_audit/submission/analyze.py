"""Static (ast) reading of a submission script: what the child needs to run its own eval.

Everything here works on source text and never executes it:

* the environment variables the script reads (``os.environ.get``/``getenv``/``os.environ[...]``,
  in ``Hyperparameters`` or anywhere else), with their defaults;
* the tiny configuration to put in them: widths, vocabulary, sequence and batch sizes shrunk
  with their *derived* sizes kept consistent (head dim, partial RoPE dims, GQA ratio); the depth
  shrinks with every layer position mapped onto the shallower stack (loop ranges, XSA's last N,
  ``VE_LAYERS``: ``_depth_plan``), and is kept where a layer variable is not understood; eval
  features switched on (SLOT, TTT, n-gram, PPM, ... and the flags the logged run had on), CUDA-only
  paths switched off, thresholds (chunk sizes, prefix documents, warm-ups) small enough to fire
  on the audit stream;
* the scoring functions, found by what they do (they score tokens and compute a bits-per-byte),
  not only by an ``eval_val*`` name; orchestrators (``main``, ``train_and_eval``), pure helpers
  (``_loss_bpb``) and wrappers that forward ``*args`` (``timed_eval``) are not scoring functions;
* the flag-guarded branches inside them, so the audit can say which ones never ran.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from dataclasses import dataclass, field

from .. import astmemo

TINY_SEQ = 64  # eval/train sequence length of the audit
TINY_STRIDE = 16
TINY_DIM = 64
TINY_HEAD_DIM = 32
TINY_VOCAB = 256
TINY_LAYERS = 4  # the least depth of a shrunk stack (an even split keeps U-Net halves)
# words of variables that index or count layers: their values are mapped when the depth shrinks
LAYER_WORDS = {"LAYER", "LAYERS", "LOOP", "LOOPS", "RECUR", "RECURRENCE", "XSA", "DEPTH", "ENCODER", "DECODER",
               "PARALLEL", "BLOCKS", "UNET"}
# Eval features: switched on so the audit reaches the code the submission claims.
EVAL_FLAG_WORDS = ("SLOT", "TTT", "NGRAM", "CACHE", "PPM", "MIXER", "TILT", "SLIDING", "ETLB", "TEMP_CAL", "LORA",
                   "BOOST", "COMPLEMENT", "RESCORE")
# Flags that would skip the eval, debug it, or demand a file the audit does not have.
NEVER_ON_WORDS = ("ONLY", "SKIP", "DEBUG", "DUMP", "BYPASS", "SWEEP", "RESUME", "PATH", "DIR", "FILE", "COMPILE",
                  "PRECOMPUTE_OUTSIDE")
CUDA_ONLY_WORDS = ("FUSED", "TRITON", "CUDA_GRAPH", "FA3", "FLASH")


class AnalysisError(ValueError):
    """The script does not have the structure the audit needs (reported as an error verdict)."""


@dataclass
class EnvVar:
    name: str  # environment variable, e.g. "NUM_LAYERS"
    attr: str  # the name it is assigned to (Hyperparameters attribute or variable), e.g. "num_layers"
    default: str  # default as written in the source
    line: int
    in_hparams: bool = True  # read inside a Hyperparameters-like class
    flag: bool = False  # read as a boolean (bool(int(...)), == "1", name *_ENABLED / USE_*)


@dataclass
class ScoringFunction:
    name: str
    line: int
    end_line: int
    why: str  # what made it a scoring function


@dataclass
class Branch:
    """An ``if`` inside a scoring function (or the entry code) whose test reads a flag."""

    function: str
    line: int
    test: str
    body: tuple[int, int]  # first and last line of the body


@dataclass
class EvalTarget:
    """Kept for adapter files: one thing the child calls (the adapter's ``evaluate``)."""

    name: str
    line: int
    bindings: dict[str, str] = field(default_factory=dict)
    adapter: bool = False


# ----------------------------------------------------------------------------- env vars


# Values for path variables a script requires without a default (``os.environ["DATA_PATH"]``).
REQUIRED_PATHS = {"DATA": "./data/datasets/fineweb10B_sp1024", "TOKENIZER": "./data/tokenizers/fineweb_1024_bpe.model",
                  "OTHER": "./golf_audit_work"}


def _env_read(node: ast.AST) -> tuple[str | None, str]:
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str):
        f = astmemo.unparse(node.func)
        if f in ("os.environ.get", "os.getenv", "environ.get", "getenv", "_e", "_env"):
            default = astmemo.unparse(node.args[1]) if len(node.args) > 1 else "None"
            return node.args[0].value, default
    if isinstance(node, ast.Subscript) and astmemo.unparse(node.value) in ("os.environ", "environ"):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value, "<required>"
    return None, ""


def env_vars(tree: ast.Module) -> list[EnvVar]:
    """Every environment variable the script reads, with the name it is assigned to."""
    out: dict[str, EnvVar] = {}
    hp_classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and "hyperparam" in n.name.lower()]
    in_hp = {id(n) for c in hp_classes for n in astmemo.walk(c)}
    for stmt in astmemo.walk(tree):
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
            continue
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        attr = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
        for node in astmemo.walk(stmt.value):
            name, default = _env_read(node)
            if name and name not in out:
                out[name] = EnvVar(name, attr, default, stmt.lineno, id(stmt) in in_hp, _reads_bool(stmt.value, name))
                break
    for node in astmemo.walk(tree):  # reads not assigned to anything (os.environ.get("X", "0") == "1")
        name, default = _env_read(node)
        if name and name not in out:
            out[name] = EnvVar(name, "", default, getattr(node, "lineno", 0), id(node) in in_hp,
                               name.upper().endswith(("_ENABLED", "_ENABLE")))
    return sorted(out.values(), key=lambda v: v.line)


def _reads_bool(value: ast.expr, name: str) -> bool:
    """The assignment turns the variable into a boolean (a flag, not a number)."""
    if name.upper().endswith(("_ENABLED", "_ENABLE")) or name.upper().startswith("USE_"):
        return True
    text = astmemo.unparse(value).replace("'", '"')
    if any(isinstance(c, ast.Call) and any(isinstance(a, ast.Name) and a.id == "bool" for a in c.args)
           for c in astmemo.walk(value)):  # _e("SLIDING_EVAL", 0, bool): a typed env helper
        return True
    return text.startswith("bool(") or any(op in text for op in ('== "1"', 'in ("1"', '== "true"', '.lower() in')) \
        or isinstance(value, ast.Compare)


def _literal(default: str) -> object:
    """The default's value when it is a literal (also inside str()/int()/float()), else None."""
    try:
        node = ast.parse(default, mode="eval").body
    except SyntaxError:
        return None
    while isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Name) and node.func.id in ("str", "int", "float"):
        node = node.args[0]
    if isinstance(node, ast.BinOp):  # 2048 * 48 * 8
        try:
            return eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})  # noqa: S307 - literals only
        except Exception:  # noqa: BLE001
            return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _number(default: str) -> float | None:
    value = _literal(default)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _is_flag(var: EnvVar) -> bool:
    return var.flag or isinstance(_literal(var.default), bool)


def _fmt(value: float, like: str) -> str:
    integral = value == int(value) and "." not in like.strip("'\"")
    return str(int(value)) if integral else repr(float(value))


def _words(name: str) -> set[str]:
    return set(name.upper().split("_"))


def tiny_env(variables: list[EnvVar], submitted: dict[str, tuple[str, str]] | None = None,
             overrides: dict[str, str] | None = None, seq: int = TINY_SEQ) -> dict[str, str]:
    """The child's environment: a tiny, self-consistent configuration of the submitted run.

    ``submitted`` (:func:`submitted_config`) gives the flags and modes of the run that produced
    the record (logged hyperparameters, the README's or run script's command): they are kept,
    so the audit exercises what the submission ran, eval features included; a flag nobody set
    keeps its default. Sizes are always tiny. CUDA-only paths are off. ``overrides`` (``--env``)
    win over everything.
    """
    submitted = submitted or {}
    by_name = {v.name.upper(): v for v in variables}
    num = {k: _number(v.default) for k, v in by_name.items()}
    env: dict[str, str] = {}

    def default(name: str, fallback: float) -> float:
        value = num.get(name)
        return fallback if value is None or value <= 0 else value

    dim0 = default("MODEL_DIM", 512)
    heads0 = default("NUM_HEADS", 8)
    kv0 = default("NUM_KV_HEADS", heads0)
    head_dim0 = dim0 / heads0 if heads0 else 64
    head_dim = min(TINY_HEAD_DIM, head_dim0) if head_dim0 == int(head_dim0) else TINY_HEAD_DIM
    heads = max(1, TINY_DIM // int(head_dim))
    kv = max(1, round(heads * kv0 / heads0)) if heads0 else heads
    while heads % kv:
        kv -= 1
    scale = TINY_DIM / dim0

    for name, var in by_name.items():
        words = _words(name)
        value = num.get(name)
        if var.name in submitted and (_is_flag(var) or value is None):
            # the submitted run's flag or mode (a string such as NGRAM_MODE); sizes are handled below
            sub = submitted[var.name][0]
            env[var.name] = _flag_value(sub) if _is_flag(var) and _flag_value(sub) in ("0", "1") else sub
        if var.default == "<required>" and var.name not in submitted and words & {"PATH", "DIR", "FILE"}:
            # read as os.environ["X"] with no default (the run script sets it): a path of the
            # challenge's layout, which the data shims answer
            env[var.name] = REQUIRED_PATHS["TOKENIZER" if "TOKENIZER" in words else "DATA" if words & {
                "DATA", "DATASET", "DATASETS"} else "OTHER"]
        if name == "VOCAB_SIZE":
            env[var.name] = str(TINY_VOCAB)
        elif name in ("MODEL_DIM", "EMBEDDING_DIM", "EMBED_DIM") or (name.endswith("_INNER_DIM") and value):
            env[var.name] = str(TINY_DIM if name == "MODEL_DIM" else max(8, int(round((value or dim0) * scale))))
        elif name == "NUM_HEADS":
            env[var.name] = str(heads)
        elif name == "NUM_KV_HEADS":
            env[var.name] = str(kv)
        elif name == "HEAD_DIM":
            env[var.name] = str(int(head_dim))
        elif name in ("ROPE_DIMS", "ROPE_DIM") and value:
            env[var.name] = str(int(min(value, head_dim) // 2 * 2))
        elif name == "MLP_HIDDEN" and value:
            env[var.name] = str(max(16, int(value * scale) // 8 * 8))
        elif (words & {"BIGRAM", "TRIGRAM", "HASH"}) and (words & {"DIM"}) or name in ("VE_DIM", "LATENT_KV_DIM",
                                                                                        "POLYGLU_GATE_DIM"):
            env[var.name] = str(int(min(value or 16, 16)))
        elif (words & {"BUCKETS"} or name.endswith("VOCAB_SIZE")) and value and value > TINY_VOCAB:
            env[var.name] = str(1024 if "NGRAM" in name else 512)
        elif name.endswith("SEQ_LEN"):  # 0 means "the train length" in several scripts: keep it
            env[var.name] = "0" if value == 0 else str(seq)
        elif name in ("EVAL_STRIDE", "STRIDE", "SLIDING_STRIDE", "SW_STRIDE"):
            env[var.name] = str(TINY_STRIDE)
        elif name in ("TRAIN_BATCH_TOKENS",):
            env[var.name] = str(seq * 8)
        elif name in ("VAL_BATCH_SIZE", "VAL_BATCH_TOKENS"):
            env[var.name] = str(seq * 8 * 8)
        elif name in ("ITERATIONS",):
            env[var.name] = "2"
        elif name in ("WARMUP_STEPS", "VAL_LOSS_EVERY", "CHECKPOINT_EVERY", "MUON_COOLDOWN_START", "RECUR_START_STEP",
                      "QAT_AFTER_STEP", "FORCE_STOP_STEP", "SKIP_TOKENS", "GLOBAL_TTT_WARMUP_CHUNKS"):
            env[var.name] = "0"
        elif name in ("WARMDOWN_ITERS", "MUON_MOMENTUM_WARMUP_STEPS", "SWA_EVERY", "EMA_EVERY", "LAWA_FREQ",
                      "TRAIN_LOG_EVERY", "MULTI_EXIT_MIX_STEPS", "TEMP_CAL_STEPS"):
            env[var.name] = "1" if "LOG" not in name else "1000"
        elif "TTT" in words and (words & {"CHUNK"}) and value:
            env[var.name] = str(32 if "SIZE" in words else 256)
        elif "TTT" in words and (words & {"BATCH"}) and value:
            env[var.name] = "4"
        elif "TTT" in words and "EPOCHS" in words and value:
            env[var.name] = str(int(min(value, 2)))
        elif "TTT" in words and "RANK" in words and value:
            env[var.name] = "4"
        elif name in ("TTT_MIN_DOC_LEN",):
            env[var.name] = "16"
        elif "PREFIX" in words and "DOCS" in words:
            env[var.name] = "4"
        elif ("GPTQ" in words and (words & {"BATCHES", "SAMPLES", "SEQS"})) or name == "GPTQ_BATCH_SIZE":
            env[var.name] = "2"
        elif name == "GPTQ_GEN_LEN":
            env[var.name] = str(seq)
        elif name == "GPTQ_BLOCK_SIZE":
            env[var.name] = "32"
        elif "NGRAM" in words and "CHUNK" in words and value:
            env[var.name] = str(256 if "TOKENS" in words else 64)
        elif name in ("SLOT_STEPS", "ETLB_STEPS") and value:
            env[var.name] = "2"
        elif "LQER" in words and "RANK" in words and value:
            env[var.name] = "2"
        elif name.startswith("MAMBA") and (words & {"STATE", "HEADDIM"}) and value:
            env[var.name] = "16"
        elif name.startswith("MAMBA") and "CHUNK" in words and value:
            env[var.name] = "16"
        elif (words & {"POP", "POPULATION", "POPSIZE"}) and (words & {"SIZE", "POPSIZE"}) and value:
            env[var.name] = "2"  # an evolution-strategy population: one antithetic pair
        elif name == "MTP_NUM_HEADS":
            env[var.name] = "0"
        elif any(w in name for w in CUDA_ONLY_WORDS) and _is_flag(var):
            env[var.name] = "0"
    overrides = overrides or {}
    if not any(_words(k.upper()) & LAYER_WORDS for k in overrides):  # a layer the user set keeps the depth
        env.update(_depth_plan(by_name, env))
    env.update(overrides)
    return env


def _depth_plan(by_name: dict[str, EnvVar], env: dict[str, str]) -> dict[str, str]:
    """A shallower stack with the same layout: ``NUM_LAYERS`` and every layer position, by
    variable name (empty: the depth is kept).

    Each variable that names a layer (a loop's start and end, a parallel start layer, XSA's last
    N, a frozen first N, a list such as ``VE_LAYERS="9,10"``) marks a boundary in ``0..depth``.
    Every stretch between two boundaries keeps at least one layer, and the stretches grow back to
    ``TINY_LAYERS`` if they come to fewer. The boundaries are mapped in order, so equal
    values stay equal, different ones different, and a loop over layers 3..5 of 11 becomes one
    over 1..2 of 4 whether its end is inclusive or not. A layer variable whose value is not
    one of these (a count such as ``N_INT6_LAYERS``, a negative index, a value that no env var
    can set) keeps the depth.
    """
    var = by_name.get("NUM_LAYERS")
    depth = _number(var.default) if var is not None else None
    if depth is None or depth != int(depth) or depth <= TINY_LAYERS:
        return {}
    depth = int(depth)
    marks: list[tuple[str, str, list[int]]] = []
    for name, v in by_name.items():
        if name == "NUM_LAYERS" or not _words(name) & LAYER_WORDS or _pass_count(name):
            continue
        role = _layer_role(name, v, env.get(v.name, v.default), depth)
        if role is None:
            return {}
        if role[0] != "other":
            marks.append((v.name, *role))
    points = {0, depth}
    for _, role, values in marks:
        points.update(depth - x if role == "last" else x for x in values)
        if role == "list":
            points.update(x + 1 for x in values)
    edges = sorted(points)
    size = [1] * (len(edges) - 1)
    room = [b - a - 1 for a, b in zip(edges, edges[1:])]
    while sum(size) < TINY_LAYERS and any(room):
        i = max(range(len(room)), key=lambda k: room[k])
        size[i], room[i] = size[i] + 1, room[i] - 1
    new_depth = sum(size)
    if new_depth >= depth:
        return {}
    where = {edges[0]: 0}
    for i, n in enumerate(size):
        where[edges[i + 1]] = where[edges[i]] + n
    plan = {var.name: str(new_depth)}
    for name, role, values in marks:
        if role == "last":
            plan[name] = str(new_depth - where[depth - values[0]])
        elif role == "list":
            plan[name] = ",".join(str(where[x]) for x in values)
        else:
            plan[name] = str(where[values[0]])
    return plan


def _layer_role(name: str, var: EnvVar, raw: str, depth: int) -> tuple[str, list[int]] | None:
    """What a layer variable's value says about positions in the stack (see ``_depth_plan``):
    ("index", [i]) a layer number (``LOOP_START``, ``PARALLEL_START_LAYER``), ("last", [n]) a
    count from the end (``XSA_LAST_N``), ("first", [n]) a count from the start
    (``TTT_FREEZE_BLOCKS``), ("list", [...]) layer numbers (``VE_LAYERS``), ("other", []) no
    position at all (a flag, a mode such as "mean", a training step, a rank); None: unknown."""
    words = _words(name)
    value = _literal(raw)
    if _is_flag(var) or isinstance(value, bool) or words & {"STEP", "STEPS", "ITER", "ITERS", "FRAC", "FRACTION",
                                                            "RANK", "LANE", "MODE", "LR", "DIM"}:
        return "other", []
    text = raw.strip().strip("'\"") if not isinstance(value, str) else value.strip()
    if isinstance(value, (tuple, list)) or (isinstance(value, str) and not re.fullmatch(r"\s*-?\d+\s*", text)) \
            or value is None and "," in text:
        if not re.fullmatch(r"[\d\s,]*", text):
            return ("other", []) if not re.search(r"\d", text) else None  # "mean"; "3-5" is unknown
        items = [int(x) for x in text.replace(" ", "").split(",") if x]  # "9,10", or "" (no layers)
        ok = words & {"LAYERS", "BLOCKS"} and all(0 <= x < depth for x in items)
        return ("list", items) if ok and items else ("other", []) if ok else None
    number = _number(raw)
    if number is None or number != int(number):
        return None
    n = int(number)
    if "LAST" in words:
        return ("last", [n]) if 0 <= n <= depth else None
    if words & {"FREEZE", "FROZEN", "FIRST"}:
        return ("first", [n]) if 0 <= n <= depth else None
    if words & {"START", "END", "FROM", "AT"} or name.endswith("_LAYER"):
        return ("index", [n]) if 0 <= n <= depth else None
    return ("other", []) if n == 0 else None  # EGGROLL_LAYERS=0: none; a count of some layers is unknown


def _pass_count(name: str) -> bool:
    """How many times the whole stack runs (``EVAL_DEPTH_RECURRENCE``, a bare ``NUM_LOOPS``): any
    depth takes it; a loop over some layers names them (``LOOP_START``): positions ``_depth_plan`` maps."""
    words = _words(name)
    return bool(words & {"RECURRENCE", "REPEAT", "REPEATS", "LOOPS"}) and not words & {
        "START", "END", "LAYER", "LAYERS", "LAST", "FROM", "AT", "FIRST"}


def flag_values(variables: list[EnvVar], env: dict[str, str]) -> dict[str, bool]:
    """Each boolean flag's value in the audited configuration (``attr`` -> on/off)."""
    out: dict[str, bool] = {}
    for v in variables:
        if not v.attr or not _is_flag(v):
            continue
        raw = env.get(v.name)
        if raw is None:
            lit = _literal(v.default)
            raw = "1" if lit is True else "0" if lit in (False, None) else str(lit)
        out[v.attr] = _flag_value(str(raw)) == "1"
    return out


# an unquoted value stops at shell syntax and at prose around it: "(QTTT=1)" gives 1
COMMAND_ASSIGN = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]{2,})=(\"[^\"]*\"|'[^']*'|[^\s\\`;|&()\[\]]+)")


def _is_location(name: str) -> bool:
    """Paths, directories and run ids point at the run's machine, not at its configuration."""
    return any(w in name.upper() for w in ("PATH", "DIR", "FILE", "RUN_ID", "OUTPUT", "LOG"))


MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ptz", ".ckpt", ".safetensors", ".bin", ".npz")


def _missing_model_file(value: str, folder: Path) -> bool:
    """A checkpoint the submitted run loaded from its own machine, which the folder does not ship.

    Carrying it into the audit would only stop the run at the load; without it the script's own
    default (usually: start from its initialization) runs, which is what the flip tests need.
    """
    v = value.strip().strip("'\"")
    return v.lower().endswith(MODEL_FILE_SUFFIXES) and not (folder / v).exists()


def submitted_config(folder: Path, variables: list[EnvVar]) -> dict[str, tuple[str, str]]:
    """The submitted run's settings, with where each came from: logged hyperparameters win over
    ``NAME=value`` in the README's or a shell script's command (defaults are the script's own)."""
    folder = Path(folder)
    names = {v.name for v in variables}
    by_attr = {v.attr: v.name for v in variables if v.attr}
    out: dict[str, tuple[str, str]] = {}
    for doc in sorted(folder.glob("*.md")) + sorted(folder.glob("*.sh")):
        try:
            text = doc.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for m in COMMAND_ASSIGN.finditer(text):
            value = m.group(2).strip("'\"") if m.group(2)[:1] in "'\"" else m.group(2).rstrip(".,:")
            if m.group(1) in names and not value.startswith("$") and not _is_location(m.group(1)) \
                    and not _missing_model_file(value, folder):
                out.setdefault(m.group(1), (value, doc.name))
    for log in sorted(folder.glob("*.log")) + sorted(folder.glob("*.txt")):
        try:
            text = log.read_text(encoding="utf-8", errors="replace")[:400000]
        except OSError:
            continue
        logged = logged_config(text, set(by_attr))
        for attr, value in logged.items():
            first = (value.split() or [""])[0]
            if not _is_location(by_attr[attr]) and not _missing_model_file(first, folder):
                out[by_attr[attr]] = (first, log.name)
        if logged:
            break
    return out


def _flag_value(logged: str) -> str:
    low = (logged.split() or [""])[0].lower()
    if low in ("true", "1", "yes", "on"):
        return "1"
    if low in ("false", "0", "no", "off", "none", ""):
        return "0"
    return logged.strip()


LOG_LINE = re.compile(r"^\s{0,4}([a-z_][a-z0-9_]*):\s+(\S.*?)\s*$")  # "  ttt_enabled: True" (not source code)


def logged_config(log_text: str, attrs: set[str]) -> dict[str, str]:
    """``attr: value`` lines a run printed for its Hyperparameters (first occurrence wins)."""
    out: dict[str, str] = {}
    for line in log_text.splitlines()[:4000]:
        m = LOG_LINE.match(line)
        if m and m.group(1) in attrs and m.group(1) not in out and not any(c in m.group(2) for c in "()[]{}"):
            out[m.group(1)] = m.group(2)
    return out


# ----------------------------------------------------------------------------- functions


def find_function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def _bpb_evidence(fn: ast.AST, helpers: set[str]) -> str:
    for n in astmemo.walk(fn):
        if isinstance(n, ast.Name) and "bpb" in n.id.lower():
            return f"computes {n.id}"
        if isinstance(n, ast.Attribute) and "bpb" in n.attr.lower():
            return f"computes .{n.attr}"
        if isinstance(n, ast.Call):
            f = astmemo.unparse(n.func)
            if f in ("math.log", "np.log", "torch.log", "log") and n.args and isinstance(n.args[0], ast.Constant) \
                    and n.args[0].value in (2, 2.0):
                return "divides by log(2)"
            if f.split(".")[-1] in helpers:
                return f"calls {f}"
    return ""


def _forwards_args(fn: ast.FunctionDef) -> bool:
    """A wrapper: calls one of its own parameters with ``*args``/``**kwargs`` forwarded."""
    params = {a.arg for a in fn.args.args + fn.args.posonlyargs + fn.args.kwonlyargs}
    for c in astmemo.walk(fn):
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in params \
                and any(isinstance(a, ast.Starred) for a in c.args):
            return True
    return False


def _has_loop(fn: ast.AST) -> bool:
    return any(isinstance(n, (ast.For, ast.While, ast.comprehension)) for n in astmemo.walk(fn))


def bpb_helpers(tree: ast.Module) -> set[str]:
    """Small bpb arithmetic helpers (``_loss_bpb``, ``_accumulate_bpb``): no loop, a few statements, no
    call of another script function. They make their callers scoring functions; they are not ones."""
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    names = {f.name for f in fns} | {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    out = set()
    for f in fns:
        calls = {c.func.id for c in astmemo.walk(f) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        if _bpb_evidence(f, set()) and not _has_loop(f) and len(f.body) <= 12 and not (calls & names - {f.name}) \
                and not _forwards_args(f):
            out.add(f.name)
    return out


def entry_names(tree: ast.Module) -> set[str]:
    """Functions the ``if __name__ == "__main__":`` block calls (the entry point)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in astmemo.unparse(node.test) and "__main__" in astmemo.unparse(node.test):
            for c in astmemo.walk(node):
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Name):
                    names.add(c.func.id)
    return names or ({"main"} if find_function(tree, "main") else set())


def scoring_functions(tree: ast.Module, names: list[str] | None = None) -> list[ScoringFunction]:
    """Module-level functions that score validation tokens and compute a bpb (or those named)."""
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if names is not None:
        missing = [n for n in names if not any(f.name == n for f in fns)]
        if missing:
            raise AnalysisError(f"no module-level function named {', '.join(missing)}")
        return [ScoringFunction(f.name, f.lineno, f.end_lineno or f.lineno, "named with --function")
                for f in fns if f.name in names]
    entry = entry_names(tree)
    helpers = bpb_helpers(tree)
    out = []
    for f in fns:
        why = _bpb_evidence(f, helpers)
        returns = any(isinstance(n, ast.Return) and n.value is not None for n in astmemo.walk(f))
        if not why or not returns or f.name in helpers:
            continue
        if f.name in entry or f.name.startswith("train") or f.name == "main" or _forwards_args(f):
            continue
        out.append(ScoringFunction(f.name, f.lineno, f.end_lineno or f.lineno, why))
    return out


_FLAG_ATTR = re.compile(r"\b(?:h|args|hp|hparams|self\.h|cfg|config|self\.args)\.(\w+)")


def flag_branches(tree: ast.Module, functions: list[str]) -> list[Branch]:
    """``if`` statements inside the given functions whose test reads a hyperparameter or flag."""
    out = []
    for f in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in functions):
        for node in astmemo.walk(f):
            if not isinstance(node, ast.If) or not node.body:
                continue
            test = astmemo.unparse(node.test)
            if not (_FLAG_ATTR.search(test) or any(w.lower() in test.lower() for w in EVAL_FLAG_WORDS)):
                continue
            body = (node.body[0].lineno, max(getattr(s, "end_lineno", s.lineno) or s.lineno for s in node.body))
            out.append(Branch(f.name, node.lineno, test[:120], body))
    return out


# Module constants that size a model or a run; set as literals, no tiny configuration reaches them.
SIZE_CONSTANTS = {"MODEL_DIM": TINY_DIM, "D_MODEL": TINY_DIM, "EMBED_DIM": TINY_DIM, "HIDDEN_DIM": TINY_DIM,
                  "NUM_LAYERS": TINY_LAYERS, "N_LAYERS": TINY_LAYERS, "N_LAYER": TINY_LAYERS,
                  "SEQ_LEN": TINY_SEQ, "TRAIN_SEQ_LEN": TINY_SEQ, "BLOCK_SIZE": TINY_SEQ,
                  "TRAIN_STEPS": 2, "ITERATIONS": 2, "MAX_STEPS": 2, "NUM_STEPS": 2}


def hardcoded_sizes(tree: ast.Module, variables: list[EnvVar]) -> list[tuple[str, int, int]]:
    """(name, value, line) of module-level size constants above the tiny configuration that no
    environment variable sets (``MODEL_DIM = 512``; ``SEQ_LEN = 2048``): the script runs at its
    own full size whatever the audit asks. Empty when the script reads any model-size variable."""
    env_names = {v.name.upper() for v in variables}
    if env_names & {"MODEL_DIM", "D_MODEL", "EMBED_DIM", "NUM_LAYERS", "N_LAYERS", "TRAIN_SEQ_LEN", "SEQ_LEN"}:
        return []
    out = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            continue
        name = stmt.targets[0].id
        value = stmt.value.value if isinstance(stmt.value, ast.Constant) else None
        tiny = SIZE_CONSTANTS.get(name.upper())
        if tiny is not None and isinstance(value, int) and not isinstance(value, bool) and value > tiny:
            out.append((name, value, stmt.lineno))
    return out


def default_vocab(variables: list[EnvVar]) -> int:
    """The vocabulary the fake tokenizer must report (the tiny one, or the script's fixed one)."""
    for v in variables:
        if v.name.upper() == "VOCAB_SIZE":
            return TINY_VOCAB
    return 1024



# ----------------------------------------------------------------------------- validation data outside the evals

VAL_WORDS = ("val_tokens", "val_data", "val_files", "val_stream", "validation")
TRAINING_MARKERS = ("backward", "hessian", "calib")
SOURCE_CLASS_WORDS = ("loader", "stream", "dataset")


@dataclass
class Consumer:
    line: int
    callee: str
    argument: str


def _mentions_val(node: ast.AST, val_vars: set[str]) -> str:
    for n in astmemo.walk(node):
        if isinstance(n, ast.Name) and (n.id in val_vars or any(w in n.id.lower() for w in VAL_WORDS)):
            return n.id
        if isinstance(n, ast.Attribute) and any(w in n.attr.lower() for w in VAL_WORDS):
            return astmemo.unparse(n)
    return ""


def _trains(fn: ast.AST, defs: dict[str, ast.AST], depth: int = 0) -> bool:
    """The function (or a script function it calls, 3 levels deep) back-propagates or calibrates."""
    for n in astmemo.walk(fn):
        if isinstance(n, ast.Call):
            name = astmemo.unparse(n.func).split(".")[-1]
            if any(m in name.lower() for m in TRAINING_MARKERS):
                return True
            if depth < 3 and name in defs and defs[name] is not fn and _trains(defs[name], defs, depth + 1):
                return True
    return False


def val_consumers(tree: ast.Module, scoring: list[str]) -> list[Consumer]:
    """Calls outside the scoring functions that hand validation data to training or calibration.

    A call of a script function that back-propagates or collects calibration statistics (itself
    or through what it calls), or builds a data loader/stream class, with an argument that is
    validation data (``val_tokens``, ``val_data``, ``args.val_files``, a ``ValidationData``).
    """
    defs: dict[str, ast.AST] = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    val_classes = {n for n in defs if "validation" in n.lower() or n.lower().startswith("val")}
    out: list[Consumer] = []
    holders = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in scoring]
    holders += [n for n in tree.body if isinstance(n, ast.If) and "__main__" in astmemo.unparse(n.test)]
    for holder in holders:
        val_vars = {t.id for s in astmemo.walk(holder) if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call)
                    and astmemo.unparse(s.value.func).split(".")[-1] in val_classes | {"load_validation_tokens"}
                    for t in s.targets if isinstance(t, ast.Name)}
        for c in astmemo.walk(holder):
            if not isinstance(c, ast.Call):
                continue
            callee = astmemo.unparse(c.func).split(".")[-1]
            if callee in scoring or callee not in defs:
                continue
            target = defs[callee]
            is_source = isinstance(target, ast.ClassDef) and any(w in callee.lower() for w in SOURCE_CLASS_WORDS)
            if not is_source and not (isinstance(target, ast.FunctionDef) and _trains(target, defs)):
                continue
            for param, arg in _bound(target, c):
                which = _mentions_val(arg, val_vars)
                if which and not (param and _only_scored(target, param, set(scoring))):
                    out.append(Consumer(c.lineno, callee, which))
                    break
    return out


def _bound(target: ast.AST, call: ast.Call) -> list[tuple[str, ast.expr]]:
    """(parameter name or "", argument) pairs of a call to a script function or class."""
    fn = target if isinstance(target, ast.FunctionDef) else next(
        (n for n in getattr(target, "body", []) if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args] if fn is not None else []
    if params and params[0] == "self" and not isinstance(target, ast.FunctionDef):
        params = params[1:]
    out = [(params[i] if i < len(params) else "", a) for i, a in enumerate(call.args)]
    return out + [(k.arg or "", k.value) for k in call.keywords]


def _only_scored(fn: ast.AST, param: str, scoring: set[str]) -> bool:
    """Inside ``fn``, the parameter is only handed to scoring functions (a training loop's periodic eval)."""
    if not isinstance(fn, ast.FunctionDef):
        return False
    inside: set[int] = set()
    for c in astmemo.walk(fn):
        if isinstance(c, ast.Call) and astmemo.unparse(c.func).split(".")[-1] in scoring:
            inside |= {id(n) for n in astmemo.walk(c)}
    uses = [n for n in astmemo.walk(fn) if isinstance(n, ast.Name) and n.id == param and isinstance(n.ctx, ast.Load)]
    return all(id(n) in inside for n in uses)


def resume_modes(variables: list[EnvVar], folder: Path) -> dict[str, str]:
    """Eval-only modes the submission's README or scripts run as a later step (``TTT_EVAL_ONLY=1``)."""
    names = {v.name for v in variables if "ONLY" in v.name.upper() and "EVAL" in v.name.upper()
             or v.name.upper() in ("TTT_ONLY", "TTT_EVAL_ONLY")}
    out: dict[str, str] = {}
    for doc in sorted(Path(folder).glob("*.md")) + sorted(Path(folder).glob("*.sh")):
        try:
            text = doc.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for name in names:
            if name in text:
                out[name] = "1"
    return out
