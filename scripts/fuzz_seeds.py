#!/usr/bin/env python3
"""Seeds each fuzz target's corpus with the golden fixtures.

The first input byte picks the chunk size the fuzz driver feeds the framer
with; CMPP's last byte's low bit picks the version, so every fixture is
written twice for CMPP.
"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
for target, dirs in {"cmpp": ["cmpp"], "smgp": ["smgp"], "sgip": ["sgip"]}.items():
    out = root / "codecs" / "fuzz" / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        for f in sorted((root / "fixtures" / d).rglob("*.hex")):
            text = "".join(re.sub(r"#.*", "", line) for line in f.read_text().splitlines())
            data = bytes.fromhex("".join(text.split()))
            name = f.relative_to(root / "fixtures").as_posix().replace("/", "_")
            (out / f"seed_{name}").write_bytes(b"\x07" + data)
            if target == "cmpp":
                (out / f"seed_{name}_v3").write_bytes(b"\x07" + data + b"\x01")
