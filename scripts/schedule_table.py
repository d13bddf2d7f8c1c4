#!/usr/bin/env python3
"""Before/after table of the schedule change (issue 15): per shipped workload
on every LU22 and FFE-with-PE-array config, total DRAM words read, energy
(16-bit-MAC units) and cycles, from two directories of golden reports
(tests/golden of two checkouts). Optionally per layer (--layers).

    python3 scripts/schedule_table.py BEFORE/tests/golden AFTER/tests/golden [--layers]
"""
import json
import sys
from pathlib import Path

ARCHS = ["lu22_fixed", "lu22_programmable", "ffe4_pe_array", "ffe7_pe_array", "ffe11_pe_array"]


def figures(d):
    t = d["total"]
    return t["accesses"]["dram"]["read"], t["energy"]["total"], t["cycles"]


def main():
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    layers = "--layers" in sys.argv
    print("| config | workload | DRAM reads before | after | energy before | after | change | cycles before | after | change |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    worse = []
    for arch in ARCHS:
        for f in sorted((before / arch).glob("*.json")):
            b = json.loads(f.read_text())
            g = after / arch / f.name
            if not g.exists():
                continue
            a = json.loads(g.read_text())
            (rb, eb, cb), (ra, ea, ca) = figures(b), figures(a)
            name = f.name.removesuffix(".json")
            print(f"| {arch} | {name} | {rb:,} | {ra:,} | {eb:,.0f} | {ea:,.0f} | {100 * (ea - eb) / eb:+.1f} % "
                  f"| {cb:,} | {ca:,} | {100 * (ca - cb) / cb:+.1f} % |")
            if ea > eb * (1 + 1e-12):
                worse.append((arch, name))
            if layers:
                for lb, la in zip(b["layers"], a["layers"]):
                    if "cycles" not in lb:
                        continue
                    s = la.get("schedule") or {}
                    print(f"|  | {lb['name']} ({s.get('loop_order', '-')}/{s.get('tiles', '-')}) "
                          f"| {lb['accesses']['dram']['read']:,} | {la['accesses']['dram']['read']:,} "
                          f"| {lb['energy']['total']:,.0f} | {la['energy']['total']:,.0f} | "
                          f"| {lb['cycles']:,} | {la['cycles']:,} | |")
    print()
    print("more energy than before:", worse if worse else "none")


if __name__ == "__main__":
    main()
