"""Evaluate what lean/ says: compile its definitions and theorem statements to Python.

`LeanCode(project).fn("code4")` is Lean's `Q35.code4` as a Python function (ints in, ints out, or z3 terms in,
z3 terms out); `LeanCode(project).statement("quant_error_even")` is the theorem's statement as a function of
its value binders returning `(hypotheses, conclusion)`. Mirrors use these instead of hand copies, so what they
check is what the .lean files say. Typing follows Lean's `binop%` elaboration: an arithmetic tree is `Int` when
any leaf (or the expected type) is `Int`, else `Nat` (which decides whether `-` truncates).
"""
from __future__ import annotations

import copy
import keyword
from dataclasses import dataclass
from functools import cached_property

import lean_runtime as rt
from lean_expr import LeanSyntaxError, Node, parse_signature, parse_statement, parse_structure
from lean_text import NAMESPACE, LeanProject

ARITH = {"add", "sub", "mul", "div", "mod"}
COMPARE = {"eq": "rt.eq({a}, {b})", "ne": "rt.lnot(rt.eq({a}, {b}))", "lt": "rt.lt({a}, {b})",
           "gt": "rt.lt({b}, {a})", "le": "rt.le({a}, {b})", "ge": "rt.le({b}, {a})"}
# Lean library functions of the subset: name -> (arity, Python template, result type (or "arg0"/"join"))
BUILTINS = {
    "max": (2, "rt.maximum({0}, {1})", "join"), "min": (2, "rt.minimum({0}, {1})", "join"),
    "List.replicate": (2, "rt.replicate({0}, {1})", "list1"), "List.range": (1, "list(range({0}))", ("List", "Nat")),
    "List.length": (1, "len({0})", "Nat"), "List.take": (2, "rt.take({0}, {1})", "arg1"),
    "List.drop": (2, "rt.drop({0}, {1})", "arg1"), "List.Perm": (2, "rt.is_perm({0}, {1})", "Prop"),
    "List.Nodup": (1, "rt.nodup({0})", "Prop"), "List.map": (2, "[rt.apply({0}, (x_,)) for x_ in {1}]", "List?"),
    "Int.natAbs": (1, "rt.absolute({0})", "Nat"), "Int.toNat": (1, "rt.to_nat({0})", "Nat"),
    "some": (1, "rt.Some({0})", "option0"),
}
METHODS = {"length": "List.length", "take": "List.take", "drop": "List.drop", "Perm": "List.Perm",
           "Nodup": "List.Nodup", "map": "List.map", "natAbs": "Int.natAbs", "toNat": "Int.toNat"}
RECEIVER_LAST = {"List.take", "List.drop", "List.map", "List.replicate"}  # `xs.take n` is `List.take n xs`
CONSTANTS = {"True": ("True", "Prop"), "False": ("False", "Prop"), "none": ("None", "Option?"),
             "true": ("True", "Bool"), "false": ("False", "Bool")}


def py_name(name: str, prefix: str) -> str:
    out = "".join(c if c.isalnum() and c.isascii() or c == "_" else f"_u{ord(c):x}" for c in name)
    return prefix + out if not keyword.iskeyword(prefix + out) else prefix + out + "_"


def join(*types):
    """The `binop%` type of arithmetic leaves: Int beats Nat beats an untyped numeral (None)."""
    ts = [t for t in types if t is not None]
    return "Int" if "Int" in ts else ("Nat" if "Nat" in ts else (ts[0] if ts else None))


@dataclass
class Statement:
    """A theorem's statement as a Python function of its value binders."""
    name: str
    params: list[tuple[str, object]]     # (binder name, type) of the value binders, in order
    fn: object                           # fn(*values) -> (hypotheses, conclusion thunk)

    def __call__(self, **values):
        missing = [p for p, _ in self.params if p not in values]
        extra = set(values) - {p for p, _ in self.params}
        if missing or extra:
            raise rt.LeanEvalError(f"{self.name}: binders {[p for p, _ in self.params]}, got {sorted(values)}")
        return self.fn(*[values[p] for p, _ in self.params])


class LeanCode:
    """Python versions of every definition of a LeanProject (compiled on construction)."""

    def __init__(self, project: LeanProject):
        self.project = project
        self.structs = {n: parse_structure(d.tokens) for n, d in project.of_kind("structure").items()}
        self.sigs = {n: parse_signature(d.tokens) for n, d in project.of_kind("def").items()}
        self.source = "\n\n".join(self._def_source(n, s) for n, s in self.sigs.items())
        self._code = compile(self.source, f"<lean defs of {project.lean_dir}>", "exec")
        self.ns = {"rt": rt}
        exec(self._code, self.ns)
        self.overrides: dict = {}

    # --- public ----------------------------------------------------------------------------------------------
    def with_code(self, **overrides) -> "LeanCode":
        """The same Lean text with some definitions replaced by Python functions (pyref's, through an adapter
        to Lean's integer units): statements evaluated on it say what lean/ says about the project's code."""
        for name in overrides:
            if name not in self.sigs:
                raise KeyError(f"no definition {name} in {self.project.lean_dir}")
        other = copy.copy(self)
        other.ns = {"rt": rt}
        exec(self._code, other.ns)
        other.overrides = {**self.overrides, **overrides}
        for name, f in other.overrides.items():
            other.ns[py_name(name, "d_")] = f
        return other

    def fn(self, name: str):
        if name not in self.sigs:
            raise KeyError(f"no definition {name} in {self.project.lean_dir}")
        return self.ns[py_name(name, "d_")]

    def statement(self, name: str) -> Statement:
        decl = self.project.theorems[name]
        sig = parse_statement(decl.statement_tokens)
        env, params, hyps = {}, [], []
        for b in sig.binders:
            ty = self.type_of(b.type)
            if ty is None:
                hyps.append(b.type)
            else:
                env[b.name] = (py_name(b.name, "v_"), ty)
                params.append((b.name, ty))
        hyp_src = "True"  # hypotheses in order, each evaluated only when the earlier ones hold
        for h in reversed(hyps):
            hyp_src = f"rt.land({self.gen(h, env)[0]}, lambda: {hyp_src})"
        src = (f"def s_({', '.join(env[p][0] for p, _ in params)}):\n"
               f"    return {hyp_src}, (lambda: {self.gen(sig.type, env)[0]})\n")
        ns = dict(self.ns)
        exec(compile(src, f"<statement of {name}>", "exec"), ns)
        return Statement(name, params, ns["s_"])

    @cached_property
    def def_types(self) -> dict[str, tuple[list, object]]:
        """name -> (types of all arguments, result type)."""
        out = {}
        for n, s in self.sigs.items():
            args = [self.type_of(b.type) for b in s.binders if b.explicit]
            ty = self.type_of(s.type) if s.type is not None else None
            extra = len(s.arms[0][0]) if s.arms else 0
            for _ in range(extra):
                if not (isinstance(ty, tuple) and ty[0] == "Fun"):
                    raise LeanSyntaxError(f"{n}: {extra} patterns but type {ty}")
                args.append(ty[1])
                ty = ty[2]
            out[n] = (args, ty)
        return out

    # --- types -----------------------------------------------------------------------------------------------
    def type_of(self, node: Node | None):
        """Lean type -> 'Nat' | 'Int' | 'Prop' | ('List', T) | ('Prod', A, B) | ('Fun', A, B) | ('Option', T) |
        ('Struct', name); None when the node is a proposition (a hypothesis), not a type."""
        if node is None:
            return None
        if node.kind == "name":
            n = node.value.removeprefix(NAMESPACE + ".")
            if n in ("Nat", "Int", "Prop", "Bool"):
                return n
            return ("Struct", n) if n in self.structs else None
        if node.kind == "app" and node.args[0].kind == "name" and node.args[0].value in ("List", "Option"):
            inner = self.type_of(node.args[1])
            return (node.args[0].value, inner) if inner is not None and len(node.args) == 2 else None
        if node.kind == "bin" and node.value in ("prod", "imp"):
            a, b = self.type_of(node.args[0]), self.type_of(node.args[1])
            if a is not None and b is not None:
                return ("Prod" if node.value == "prod" else "Fun", a, b)
        return None

    def field_type(self, struct, field):
        for b in self.structs[struct]:
            if b.name == field:
                return self.type_of(b.type)
        raise LeanSyntaxError(f"structure {struct} has no field {field}")

    # --- definitions -----------------------------------------------------------------------------------------
    def _def_source(self, name: str, sig) -> str:
        args, ret = self.def_types[name]
        explicit = [b for b in sig.binders if b.explicit]
        env = {b.name: (py_name(b.name, "v_"), t) for b, t in zip(explicit, args)}
        params = [env[b.name][0] for b in explicit] + [f"a{i}_" for i in range(len(args) - len(explicit))]
        head = f"def {py_name(name, 'd_')}({', '.join(params)}):\n"
        if not sig.arms:
            return head + f"    return {self.gen(sig.body, env, ret)[0]}\n"
        lines = []
        extra = list(zip(params[len(explicit):], args[len(explicit):]))
        for pats, rhs in sig.arms:
            conds, binds, arm_env = [], [], dict(env)
            for pat, (src, ty) in zip(pats, extra):
                self._pattern(pat, src, ty, conds, binds, arm_env)
            body = "".join(f"        {v} = {e}\n" for v, e in binds)
            lines.append(f"    if {' and '.join(conds) or 'True'}:\n{body}"
                         f"        return {self.gen(rhs, arm_env, ret)[0]}\n")
        lines.append(f"    raise rt.LeanEvalError('{name}: no pattern matches ' + repr(({', '.join(params)},)))\n")
        return head + "".join(lines)

    def _pattern(self, pat: Node, src: str, ty, conds, binds, env):
        """Append the tests and bindings that match `pat` against the Python value `src` (of Lean type ty)."""
        k = pat.kind
        if k == "name" and pat.value == "_":
            return
        if k == "name" and pat.value == "none":
            conds.append(f"{src} is None")
        elif k == "name":
            v = py_name(pat.value, "v_")
            binds.append((v, src))
            env[pat.value] = (v, ty)
        elif k == "num":
            conds.append(f"rt.concrete_int({src}, 'a pattern') == {pat.value}")
        elif k == "bin" and pat.value == "add" and pat.args[1].kind == "num":
            conds.append(f"rt.concrete_int({src}, 'a pattern') >= {pat.args[1].value}")
            self._pattern(pat.args[0], f"({src} - {pat.args[1].value})", "Nat", conds, binds, env)
        elif k == "list":
            conds.append(f"len({src}) == {len(pat.args)}")
            for i, p in enumerate(pat.args):
                self._pattern(p, f"{src}[{i}]", ty[1], conds, binds, env)
        elif k == "bin" and pat.value == "cons":
            conds.append(f"len({src}) >= 1")
            self._pattern(pat.args[0], f"{src}[0]", ty[1], conds, binds, env)
            self._pattern(pat.args[1], f"rt.tail({src})", ty, conds, binds, env)
        elif k == "tuple":
            for i, p in enumerate(pat.args):
                self._pattern(p, f"{src}[{i}]", ty[1 + min(i, 1)], conds, binds, env)
        elif k == "app" and pat.args[0].kind == "name" and pat.args[0].value == "some":
            conds.append(f"{src} is not None")
            self._pattern(pat.args[1], f"{src}.value", ty[1], conds, binds, env)
        else:
            raise LeanSyntaxError(f"unsupported pattern {pat}")

    # --- expressions -----------------------------------------------------------------------------------------
    def gen(self, node: Node, env: dict, expected=None) -> tuple[str, object]:
        """(Python source, Lean type) of a term."""
        k = node.kind
        if k == "num":
            return str(node.value), join(expected) if expected in ("Nat", "Int") else None
        if k == "name":
            return self._name(node.value, env)
        if k == "bin":
            return self._binary(node, env, expected)
        if k == "neg":
            a, _ = self.gen(node.args[0], env, "Int")
            return f"(-{a})", "Int"
        if k == "not":
            return f"rt.lnot({self.gen(node.args[0], env)[0]})", "Prop"
        if k == "if":
            c, _ = self.gen(node.args[0], env)
            (a, ta), (b, tb) = self.gen(node.args[1], env, expected), self.gen(node.args[2], env, expected)
            return f"rt.ite({c}, lambda: {a}, lambda: {b})", join(ta, tb) or ta
        if k == "app":
            return self._app(node, env, expected)
        if k == "ascribe":
            ty = self.type_of(node.args[1])
            return self.gen(node.args[0], env, ty)[0], ty
        if k == "tuple":
            parts = [self.gen(a, env) for a in node.args]
            return "(" + ", ".join(p for p, _ in parts) + ",)", ("Prod", parts[0][1], parts[-1][1])
        if k == "list":
            parts = [self.gen(a, env, expected[1] if isinstance(expected, tuple) else None) for a in node.args]
            return "[" + ", ".join(p for p, _ in parts) + "]", ("List", parts[0][1] if parts else None)
        if k == "proj":
            return self._proj(node, env)
        if k == "fun":
            return self._lambda(node, env)
        if k in ("forall", "exists"):
            return self._quantifier(node, env), "Prop"
        raise LeanSyntaxError(f"unsupported term {node}")

    def _name(self, name: str, env):
        name = name.removeprefix(NAMESPACE + ".")
        if name in env:
            return env[name]
        head, _, rest = name.partition(".")
        if head in env and rest:   # `xs.length`, `g.zero`, `x.natAbs`
            return self._proj(Node("proj", (Node("name", value=head),), rest), env)
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.sigs:
            args, ret = self.def_types[name]
            if not args:
                return f"{py_name(name, 'd_')}()", ret
            return f"rt.curry({py_name(name, 'd_')}, {len(args)}, ())", self._fun_type(args, ret)
        raise LeanSyntaxError(f"unknown name {name!r}")

    @staticmethod
    def _fun_type(args, ret):
        for a in reversed(args):
            ret = ("Fun", a, ret)
        return ret

    def _binary(self, node: Node, env, expected):
        op = node.value
        if op in ARITH or op == "pow":
            ty = join(self._tree_type(node, env), expected if expected in ("Nat", "Int") else None) or "Nat"
            return self._arith(node, env, ty), ty
        a_node, b_node = node.args
        if op in COMPARE:
            ty = join(self._tree_type(a_node, env), self._tree_type(b_node, env))
            (a, _), (b, _) = self.gen(a_node, env, ty), self.gen(b_node, env, ty)
            return COMPARE[op].format(a=a, b=b), "Prop"
        if op in ("and", "or", "imp"):
            a, b = self.gen(a_node, env)[0], self.gen(b_node, env)[0]
            fn = {"and": "land", "or": "lor", "imp": "implies"}[op]
            return f"rt.{fn}({a}, lambda: {b})", "Prop"
        if op == "iff":
            return f"rt.iff({self.gen(a_node, env)[0]}, {self.gen(b_node, env)[0]})", "Prop"
        if op in ("mem", "notmem"):
            (b, tb) = self.gen(b_node, env)
            a = self.gen(a_node, env, tb[1] if isinstance(tb, tuple) else None)[0]
            src = f"rt.member({a}, {b})"
            return (src if op == "mem" else f"rt.lnot({src})"), "Prop"
        if op in ("append", "cons"):
            (b, tb) = self.gen(b_node, env, expected)
            a, ta = self.gen(a_node, env, tb[1] if op == "cons" and isinstance(tb, tuple) else tb)
            return (f"({a} + {b})" if op == "append" else f"([{a}] + {b})"), tb if tb else ta
        if op in ("lor", "land", "shl", "shr"):
            a, b = self.gen(a_node, env, "Nat")[0], self.gen(b_node, env, "Nat")[0]
            return f"rt.bitwise('{op}', {a}, {b})", "Nat"
        raise LeanSyntaxError(f"unsupported operator {op}")

    def _tree_type(self, node: Node, env):
        """The join of the leaf types of a `binop%` tree (+ - * / % and the base of ^, unary minus)."""
        if node.kind == "bin" and node.value in ARITH:
            return join(self._tree_type(node.args[0], env), self._tree_type(node.args[1], env))
        if node.kind == "bin" and node.value == "pow":
            return self._tree_type(node.args[0], env)
        if node.kind == "neg":
            return "Int"
        if node.kind == "num":
            return None
        ty = self.gen(node, env)[1]
        return ty if ty in ("Nat", "Int") else None

    def _arith(self, node: Node, env, ty: str) -> str:
        if node.kind == "neg":
            return f"(-{self._arith(node.args[0], env, ty)})"
        if node.kind != "bin" or node.value not in ARITH | {"pow"}:
            return self.gen(node, env, ty)[0]
        a = self._arith(node.args[0], env, ty)
        if node.value == "pow":
            return f"rt.power({a}, {self.gen(node.args[1], env, 'Nat')[0]})"
        b = self._arith(node.args[1], env, ty)
        if node.value == "sub":
            return f"rt.nsub({a}, {b})" if ty == "Nat" else f"({a} - {b})"
        return {"add": f"({a} + {b})", "mul": f"({a} * {b})", "div": f"rt.div({a}, {b})",
                "mod": f"rt.mod({a}, {b})"}[node.value]

    def _app(self, node: Node, env, expected):
        head, args = node.args[0], list(node.args[1:])
        if head.kind == "proj" and head.value in METHODS:   # `(f x).take n`
            builtin = METHODS[head.value]
            recv = head.args[0]
            args = args + [recv] if builtin in RECEIVER_LAST else [recv] + args
            return self._call_builtin(builtin, args, env, expected)
        if head.kind == "name":
            name = head.value.removeprefix(NAMESPACE + ".")
            base, _, method = name.rpartition(".")
            if name not in env and base in env and method in METHODS:   # `xs.take n`
                builtin = METHODS[method]
                recv = Node("name", value=base)
                args = args + [recv] if builtin in RECEIVER_LAST else [recv] + args
                name = builtin
            if name in self.sigs:
                return self._call_def(name, args, env)
            if name in BUILTINS:
                return self._call_builtin(name, args, env, expected)
        f, ft = self.gen(head, env)
        out, ty = f, ft
        for a in args:
            arg_ty = ty[1] if isinstance(ty, tuple) and ty[0] == "Fun" else None
            out = f"rt.apply({out}, ({self.gen(a, env, arg_ty)[0]},))"
            ty = ty[2] if isinstance(ty, tuple) and ty[0] == "Fun" else None
        return out, ty

    def _call_def(self, name, args, env):
        types, ret = self.def_types[name]
        srcs = [self.gen(a, env, t)[0] for a, t in zip(args, types + [None] * len(args))]
        fn = py_name(name, "d_")
        if len(args) == len(types):
            return f"{fn}({', '.join(srcs)})", ret
        if len(args) < len(types):
            return f"rt.curry({fn}, {len(types)}, ({', '.join(srcs)},))", self._fun_type(types[len(args):], ret)
        return f"rt.curry({fn}, {len(types)}, ({', '.join(srcs)},))", None

    def _call_builtin(self, name, args, env, expected):
        arity, template, rty = BUILTINS[name]
        if len(args) != arity:
            raise LeanSyntaxError(f"{name} takes {arity} arguments here, got {len(args)}")
        parts = [self.gen(a, env, expected if rty == "join" else None) for a in args]
        if rty == "join":
            ty = join(parts[0][1], parts[1][1], expected if expected in ("Nat", "Int") else None)
            parts = [self.gen(a, env, ty) for a in args]
        srcs = [p for p, _ in parts]
        ty = {"join": join(*(t for _, t in parts)), "list1": ("List", parts[-1][1]), "arg1": parts[-1][1],
              "option0": ("Option", parts[0][1]), "List?": ("List", None)}.get(rty, rty) if isinstance(rty, str) \
            else rty
        return template.format(*srcs), ty

    def _proj(self, node: Node, env):
        inner, ty = self.gen(node.args[0], env)
        f = node.value
        if isinstance(f, int):
            comp = ty[1 + min(f - 1, 1)] if isinstance(ty, tuple) and ty[0] == "Prod" else None
            return f"{inner}[{f - 1}]", comp
        if isinstance(ty, tuple) and ty[0] == "Struct":
            return f"{inner}[{f!r}]", self.field_type(ty[1], f)
        if f in METHODS:
            return self._call_builtin(METHODS[f], [node.args[0]], env, None)
        raise LeanSyntaxError(f"unsupported projection .{f} of {ty}")

    def _lambda(self, node: Node, env):
        env = dict(env)
        params = []
        for b in node.value:
            v = py_name(b.name, "v_")
            env[b.name] = (v, self.type_of(b.type))
            params.append(v)
        body, ty = self.gen(node.args[0], env)
        return "".join(f"(lambda {p}: " for p in params) + body + ")" * len(params), None

    def _quantifier(self, node: Node, env) -> str:
        binders, body = list(node.value), node.args[0]
        b = binders[0]
        inner = Node(node.kind, (body,), tuple(binders[1:])) if len(binders) > 1 else body
        env2 = dict(env)
        v = py_name(b.name, "v_")
        if b.bound is not None:
            xs, tl = self.gen(b.bound, env)
            env2[b.name] = (v, tl[1] if isinstance(tl, tuple) else None)
            fn = "forall_mem" if node.kind == "forall" else "exists_mem"
            return f"rt.{fn}({xs}, lambda {v}: {self.gen(inner, env2)[0]})"
        env2[b.name] = (v, self.type_of(b.type) or "Nat")
        bound = self._bounded(b.name, inner, node.kind)
        if bound is None:
            raise LeanSyntaxError(f"∀/∃ {b.name} needs a bound (`{b.name} < n →`, `{b.name} ≤ n ∧`, `∈ l`)")
        limit, rest = bound
        fn = "forall_range" if node.kind == "forall" else "exists_range"
        return f"rt.{fn}({self.gen(limit, env, 'Nat')[0]}, lambda {v}: {self.gen(rest, env2)[0]})"

    @staticmethod
    def _bounded(name, body: Node, kind):
        """`x < n → P` / `x ≤ n → P` (∀) or `x < n ∧ P` / `x ≤ n ∧ P` (∃): (exclusive limit, P)."""
        link = "imp" if kind == "forall" else "and"
        if body.kind != "bin" or body.value != link:
            return None
        cond, rest = body.args
        if cond.kind == "bin" and cond.value in ("lt", "le") and cond.args[0] == Node("name", value=name):
            limit = cond.args[1]
            if cond.value == "le":
                limit = Node("bin", (limit, Node("num", value=1)), "add")
            return limit, rest
        return None
