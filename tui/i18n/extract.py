"""Find the message ids the TUI uses: `_("…")` calls, `Key(…, …, "label")` and the label
tables of `tui.formatting` and the screens. `python -m tui.i18n.extract` lists those missing
from a catalog; a test keeps the Vietnamese catalog complete."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tui.i18n import LANGUAGES, parse_po, po_path

TUI = Path(__file__).resolve().parent.parent
LABEL_TABLES = {
    "POST_STATES",
    "DELIVERY_STATES",
    "WITHDRAWAL_STATES",
    "KINDS",
    "ERROR_KINDS",
    "REMEDIES",
    "WEEKDAYS",
}


def _strings(node: ast.expr) -> list[str]:
    values = node.values if isinstance(node, ast.Dict) else getattr(node, "elts", [])
    found = []
    for value in values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.append(value.value)
        elif isinstance(value, ast.BinOp | ast.JoinedStr):
            continue
    return found


def message_ids(root: Path = TUI) -> list[str]:
    ids: dict[str, None] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                first = node.args[0] if node.args else None
                if name == "_" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    ids[first.value] = None
                label = node.args[2] if name == "Key" and len(node.args) >= 3 else None
                if isinstance(label, ast.Constant) and isinstance(label.value, str):
                    ids[label.value] = None
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(target, ast.Name) and target.id in LABEL_TABLES:
                ids.update(dict.fromkeys(_strings(node.value)))  # type: ignore[attr-defined]
    return list(ids)


def missing(language: str) -> list[str]:
    known = parse_po(po_path(language).read_text(encoding="utf-8"))
    return [m for m in message_ids() if m not in known]


def main() -> int:
    language = sys.argv[1] if len(sys.argv) > 1 else "vi"
    if language not in LANGUAGES:
        print(f"unknown language {language!r}", file=sys.stderr)
        return 2
    gaps = missing(language)
    for message in gaps:
        print(message)
    return 1 if gaps else 0


if __name__ == "__main__":
    raise SystemExit(main())
