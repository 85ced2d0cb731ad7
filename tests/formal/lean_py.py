"""Evaluate what lean/ says: compile its definitions and theorem statements to Python.

`LeanCode(project).fn("code4")` is Lean's `Q35.code4` as a Python function (ints in, ints out, or z3 terms in,
z3 terms out); `LeanCode(project).statement("quant_error_even")` is the theorem's statement as a function of
its value binders returning `(hypotheses, conclusion thunk)`. Mirrors use these instead of hand copies, so what
they check is what the .lean files say. Typing follows Lean's `binop%` elaboration: an arithmetic tree is `Int`
when any leaf (or the expected type) is `Int`, else `Nat` (which decides whether `-` truncates).

Lean types are represented as 'Nat' | 'Int' | 'Prop' | ('List', T) | ('Prod', A, B) | ('Fun', A, B) |
('Struct', name); values as Python ints (or z3 terms), bools, lists, pairs (tuples), dicts (structures) and
Python functions of one argument. tests/formal/test_lean_subset.py has an expectation for every construct.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import lean_runtime as rt
from lean_expr import LeanSyntaxError, Node, parse_definition, parse_statement, parse_structure
from lean_text import NAMESPACE, LeanProject

ARITH = {"add", "sub", "mul", "div", "mod", "pow"}
COMPARE = {"eq": "rt.eq({a}, {b})", "ne": "rt.lnot(rt.eq({a}, {b}))", "lt": "rt.lt({a}, {b})",
           "gt": "rt.lt({b}, {a})", "le": "rt.le({a}, {b})", "ge": "rt.le({b}, {a})"}
LOGIC = {"and": "rt.land({a}, lambda: {b})", "or": "rt.lor({a}, lambda: {b})", "iff": "rt.iff({a}, {b})"}
# Lean library functions of the subset: name -> (arity, Python template, result type; "join": of the arguments)
BUILTINS = {
    "max": (2, "rt.maximum({0}, {1})", "join"), "min": (2, "rt.minimum({0}, {1})", "join"),
    "List.replicate": (2, "rt.replicate({0}, {1})", "list of arg 2"),
    "List.range": (1, "rt.range_({0})", ("List", "Nat")),
    "List.length": (1, "len({0})", "Nat"), "List.take": (2, "rt.take({0}, {1})", "arg 2"),
    "List.Perm": (2, "rt.is_perm({0}, {1})", "Prop"), "List.Nodup": (1, "rt.nodup({0})", "Prop"),
    "Int.toNat": (1, "rt.to_nat({0})", "Nat"),
}
METHODS = {"length": "List.length", "take": "List.take", "Perm": "List.Perm", "Nodup": "List.Nodup",
           "toNat": "Int.toNat"}
RECEIVER_LAST = {"List.take"}  # `xs.take n` is `List.take n xs`
CONSTANTS = {"True": ("True", "Prop"), "False": ("False", "Prop")}


def py_name(name: str, prefix: str) -> str:
    """A Python identifier for a Lean name (`l₁` -> `v_l_u2081`)."""
    return prefix + "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"_u{ord(c):x}" for c in name)


def join(*types):
    """The `binop%` type of arithmetic leaves: Int beats Nat beats an untyped numeral (None)."""
    ts = [t for t in types if t in ("Nat", "Int")]
    return "Int" if "Int" in ts else ("Nat" if ts else None)


@dataclass
class Statement:
    """A theorem's statement as a Python function of its value binders."""
    name: str
    params: list[tuple[str, object]]     # (binder name, type) of the value binders, in order
    fn: object                           # fn(*values) -> (hypotheses, conclusion thunk)

    def __call__(self, **values):
        if set(values) != {p for p, _ in self.params}:
            raise rt.LeanEvalError(f"{self.name}: binders {[p for p, _ in self.params]}, got {sorted(values)}")
        return self.fn(*[values[p] for p, _ in self.params])


class LeanCode:
    """Python versions of every definition of a LeanProject (compiled on construction)."""

    def __init__(self, project: LeanProject):
        self.project = project
        self.structs = {n: parse_structure(d.tokens) for n, d in project.of_kind("structure").items()}
        self.sigs = {n: parse_definition(d.tokens) for n, d in project.of_kind("def").items()}
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
            self.fn(name)
        other = copy.copy(self)
        other.overrides = {**self.overrides, **overrides}
        other.ns = {"rt": rt}   # a fresh copy of the compiled definitions, whose calls then reach the overrides
        exec(self._code, other.ns)
        for name, f in other.overrides.items():
            other.ns[py_name(name, "d_")] = f
        return other

    def fn(self, name: str):
        if name not in self.sigs:
            raise KeyError(f"no definition {name} in {self.project.lean_dir}")
        return self.ns[py_name(name, "d_")]

    def statement(self, name: str) -> Statement:
        sig = parse_statement(self.project.theorems[name].statement_tokens)
        env, params, hyps = {}, [], []
        for b in sig.binders:
            ty = self.type_of(b.type)
            if ty is None:   # `(h : P)`: a hypothesis
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
        """name -> (types of all arguments, result type); a definition by match arms takes its patterns'
        arguments from its type (`def f : List Nat → Nat`)."""
        out = {}
        for n, s in self.sigs.items():
            args = [self.type_of(b.type) for b in s.binders if b.explicit]
            ty = self.type_of(s.type)
            for _ in range(len(s.arms[0][0]) if s.arms else 0):
                if not (isinstance(ty, tuple) and ty[0] == "Fun"):
                    raise LeanSyntaxError(f"{n}: more patterns than its type {ty} has arguments")
                args.append(ty[1])
                ty = ty[2]
            out[n] = (args, ty)
        return out

    # --- types -----------------------------------------------------------------------------------------------
    def type_of(self, node: Node | None):
        """The Lean type a node denotes; None when it is a proposition (a hypothesis), not a type."""
        if node is None:
            return None
        if node.kind == "name":
            n = node.value.removeprefix(NAMESPACE + ".")
            if n in ("Nat", "Int", "Prop"):
                return n
            return ("Struct", n) if n in self.structs else None
        if node.kind == "app" and len(node.args) == 2 and node.args[0] == Node("name", value="List"):
            inner = self.type_of(node.args[1])
            return ("List", inner) if inner is not None else None
        if node.kind == "bin" and node.value in ("prod", "imp"):
            a, b = self.type_of(node.args[0]), self.type_of(node.args[1])
            if a is not None and b is not None:
                return ("Prod" if node.value == "prod" else "Fun", a, b)
        return None

    def field_type(self, struct, name):
        for b in self.structs[struct]:
            if b.name == name:
                return self.type_of(b.type)
        raise LeanSyntaxError(f"structure {struct} has no field {name}")

    # --- definitions -----------------------------------------------------------------------------------------
    def _def_source(self, name: str, sig) -> str:
        args, ret = self.def_types[name]
        explicit = [b for b in sig.binders if b.explicit]
        env = {b.name: (py_name(b.name, "v_"), t) for b, t in zip(explicit, args)}
        params = [env[b.name][0] for b in explicit] + [f"a{i}_" for i in range(len(args) - len(explicit))]
        head = f"def {py_name(name, 'd_')}({', '.join(params)}):\n"
        if sig.body is not None:
            return head + f"    return {self.gen(sig.body, env, ret)[0]}\n"
        lines = []
        matched = list(zip(params[len(explicit):], args[len(explicit):]))
        for pats, rhs in sig.arms:
            if len(pats) != len(matched):
                raise LeanSyntaxError(f"{name}: an arm with {len(pats)} patterns, {len(matched)} expected")
            conds, binds, arm_env = [], [], dict(env)
            for pat, (src, ty) in zip(pats, matched):
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
        if k == "name":
            v = py_name(pat.value, "v_")
            binds.append((v, src))
            env[pat.value] = (v, ty)
        elif k == "num":
            conds.append(f"rt.concrete_int({src}, 'a pattern') == {pat.value}")
        elif k == "bin" and pat.value == "add" and pat.args[1].kind == "num":   # `n + 1`
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
        else:
            raise LeanSyntaxError(f"unsupported pattern {pat}")

    # --- expressions -----------------------------------------------------------------------------------------
    def gen(self, node: Node, env: dict, expected=None) -> tuple[str, object]:
        """(Python source, Lean type) of a term."""
        k = node.kind
        if k == "num":
            return str(node.value), join(expected)
        if k == "name":
            return self._name(node.value, env)
        if k == "neg" or (k == "bin" and node.value in ARITH):
            ty = join(self._tree_type(node, env), expected) or "Nat"
            return self._arith(node, env, ty), ty
        if k == "bin":
            return self._binary(node, env, expected)
        if k == "if":
            c, _ = self.gen(node.args[0], env)
            (a, ta), (b, tb) = self.gen(node.args[1], env, expected), self.gen(node.args[2], env, expected)
            return f"rt.ite({c}, lambda: {a}, lambda: {b})", join(ta, tb) or ta
        if k == "app":
            return self._app(node, env, expected)
        if k == "ascribe":
            ty = self.type_of(node.args[1])
            return self.gen(node.args[0], env, ty)[0], ty
        if k == "tuple" and len(node.args) == 2:
            (a, ta), (b, tb) = (self.gen(x, env, t) for x, t in zip(node.args, self._components(expected)))
            return f"({a}, {b})", ("Prod", ta, tb)
        if k == "list":
            item = expected[1] if isinstance(expected, tuple) and expected[0] == "List" else None
            parts = [self.gen(a, env, item) for a in node.args]
            return "[" + ", ".join(p for p, _ in parts) + "]", ("List", parts[0][1] if parts else item)
        if k == "proj":
            return self._proj(node, env)
        if k == "fun":
            return self._lambda(node, env, expected)
        if k in ("forall", "exists"):
            return self._quantifier(node, env), "Prop"
        raise LeanSyntaxError(f"unsupported term {node}")

    @staticmethod
    def _components(ty):
        return ty[1:] if isinstance(ty, tuple) and ty[0] == "Prod" else (None, None)

    def _name(self, name: str, env):
        name = name.removeprefix(NAMESPACE + ".")
        if name in env:
            return env[name]
        head, _, rest = name.partition(".")
        if head in env and rest:   # `xs.length`, `g.zero`
            return self._proj(Node("proj", (Node("name", value=head),), rest), env)
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.sigs and not self.def_types[name][0]:   # a constant (`def HI4 : Nat := 15`)
            return f"{py_name(name, 'd_')}()", self.def_types[name][1]
        raise LeanSyntaxError(f"unknown name {name!r} (or a definition not applied to all its arguments)")

    def _binary(self, node: Node, env, expected):
        op = node.value
        a_node, b_node = node.args
        if op in COMPARE:
            ty = join(self._tree_type(a_node, env), self._tree_type(b_node, env))
            (a, _), (b, _) = self.gen(a_node, env, ty), self.gen(b_node, env, ty)
            return COMPARE[op].format(a=a, b=b), "Prop"
        if op in LOGIC:
            return LOGIC[op].format(a=self.gen(a_node, env)[0], b=self.gen(b_node, env)[0]), "Prop"
        if op == "mem":
            (b, tb) = self.gen(b_node, env)
            return f"rt.member({self.gen(a_node, env, tb[1])[0]}, {b})", "Prop"
        if op in ("append", "cons"):
            (b, tb) = self.gen(b_node, env, expected)
            a, ta = self.gen(a_node, env, tb[1] if op == "cons" else tb)
            ty = tb if tb[1] is not None else (("List", ta) if op == "cons" else ta)
            return f"rt.{op}({a}, {b})", ty
        if op in ("lor", "land", "shl", "shr"):
            a, b = self.gen(a_node, env, "Nat")[0], self.gen(b_node, env, "Nat")[0]
            return f"rt.bitwise('{op}', {a}, {b})", "Nat"
        raise LeanSyntaxError(f"unsupported operator {op} in {node}")

    def _tree_type(self, node: Node, env):
        """The join of the leaf types of a `binop%` tree (+ - * / % and the base of ^; unary minus is Int)."""
        if node.kind == "bin" and node.value == "pow":
            return self._tree_type(node.args[0], env)
        if node.kind == "bin" and node.value in ARITH:
            return join(self._tree_type(node.args[0], env), self._tree_type(node.args[1], env))
        if node.kind == "neg":
            return "Int"
        return None if node.kind == "num" else join(self.gen(node, env)[1])

    def _arith(self, node: Node, env, ty: str) -> str:
        if node.kind == "neg":
            return f"(-{self._arith(node.args[0], env, ty)})"
        if node.kind != "bin" or node.value not in ARITH:
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
                return self._call_builtin(builtin, args, env, expected)
            if name in self.sigs:
                return self._call_def(name, args, env)
            if name in BUILTINS:
                return self._call_builtin(name, args, env, expected)
        out, ty = self.gen(head, env)   # a function-valued binder: `x c`, `e (sc, zp)`
        for a in args:
            if not (isinstance(ty, tuple) and ty[0] == "Fun"):
                raise LeanSyntaxError(f"{head} of type {ty} applied to an argument")
            out = f"rt.apply({out}, ({self.gen(a, env, ty[1])[0]},))"
            ty = ty[2]
        return out, ty

    def _call_def(self, name, args, env):
        types, ret = self.def_types[name]
        if len(args) != len(types):
            raise LeanSyntaxError(f"{name} takes {len(types)} arguments, given {len(args)}")
        srcs = [self.gen(a, env, t)[0] for a, t in zip(args, types)]
        return f"{py_name(name, 'd_')}({', '.join(srcs)})", ret

    def _call_builtin(self, name, args, env, expected):
        arity, template, rty = BUILTINS[name]
        if len(args) != arity:
            raise LeanSyntaxError(f"{name} takes {arity} arguments here, got {len(args)}")
        if rty == "join":   # max/min: one binop%-style type for both arguments and the result
            rty = join(*(self._tree_type(a, env) for a in args), expected)
        parts = [self.gen(a, env, rty if rty in ("Nat", "Int") else None) for a in args]
        rty = {"list of arg 2": ("List", parts[-1][1]), "arg 2": parts[-1][1]}.get(rty, rty) \
            if isinstance(rty, str) else rty
        return template.format(*(p for p, _ in parts)), rty

    def _proj(self, node: Node, env):
        inner, ty = self.gen(node.args[0], env)
        f = node.value
        if f in (1, 2) and isinstance(ty, tuple) and ty[0] == "Prod":
            return f"{inner}[{f - 1}]", ty[f]
        if isinstance(ty, tuple) and ty[0] == "Struct":
            return f"{inner}[{f!r}]", self.field_type(ty[1], f)
        if f in METHODS:
            return self._call_builtin(METHODS[f], [node.args[0]], env, None)
        raise LeanSyntaxError(f"unsupported projection .{f} of {ty}")

    def _lambda(self, node: Node, env, expected):
        """`fun a b => body`; untyped binders take their types from the expected function type."""
        env, params, ty = dict(env), [], expected
        for b in node.value:
            arg = ty[1] if isinstance(ty, tuple) and ty[0] == "Fun" else None
            ty = ty[2] if isinstance(ty, tuple) and ty[0] == "Fun" else None
            v = py_name(b.name, "v_")
            env[b.name] = (v, self.type_of(b.type) or arg)
            params.append(v)
        body, _ = self.gen(node.args[0], env, ty)
        return "".join(f"(lambda {p}: " for p in params) + body + ")" * len(params), expected

    def _quantifier(self, node: Node, env) -> str:
        """`∀ x ∈ l, P`, `∃ x ∈ l, P`, and for a `Nat` x: `∀ x, x < n → P` / `x ≤ n → P`,
        `∃ x, x < n ∧ P` / `x ≤ n ∧ P`."""
        if len(node.value) != 1:
            raise LeanSyntaxError("one binder per ∀/∃ here (write `∀ x, ... → ∀ y, ...`)")
        b, body = node.value[0], node.args[0]
        env2 = dict(env)
        v = py_name(b.name, "v_")
        if b.bound is not None:
            xs, tl = self.gen(b.bound, env)
            env2[b.name] = (v, tl[1])
            return f"rt.{node.kind}_mem({xs}, lambda {v}: {self.gen(body, env2)[0]})"
        if (self.type_of(b.type) or "Nat") != "Nat":
            raise LeanSyntaxError(f"∀/∃ {b.name} : {self.type_of(b.type)} with a bound: only a `Nat` counts from 0")
        env2[b.name] = (v, "Nat")
        link = "imp" if node.kind == "forall" else "and"
        cond = body.args[0] if body.kind == "bin" and body.value == link else None
        if not (cond is not None and cond.kind == "bin" and cond.value in ("lt", "le")
                and cond.args[0] == Node("name", value=b.name)):
            raise LeanSyntaxError(f"∀/∃ {b.name} needs a bound (`{b.name} < n →`, `{b.name} ≤ n ∧`, `∈ l`)")
        limit = self.gen(cond.args[1], env, "Nat")[0]
        limit = f"({limit}) + 1" if cond.value == "le" else limit
        fn = "forall_range" if node.kind == "forall" else "exists_range"
        return f"rt.{fn}({limit}, lambda {v}: {self.gen(body.args[1], env2)[0]})"
