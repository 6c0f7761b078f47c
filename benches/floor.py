#!/usr/bin/env python3
"""The report of benches/peers.sh: every tool's times beside pulltime's, and the
floor of each image computed from the single-stage costs measured in the same run
(docs/performance.md, "The floor").

    floor.py [--registry-cpu SERVED_TSV] RESULTS_TSV STAGES_TSV CORES [HEADER_LINE...]

RESULTS_TSV: fs image tool round wall_s user_s sys_s (one line per timed command).
STAGES_TSV:  fs image tool round item wall_s user_s sys_s (per layer `Ln`, or per
             hashed file `blobN` / `tarN`, of the single-stage tools).
SERVED_TSV:  fs image tool round registry_cpu_s: the registry's CPU while each
             timed command ran. Here the registry serves on the same cores as
             the puller, which the floor's CPU term does not count; with this
             file the report also gives the floor with the registry's CPU to
             serve the blobs once (to curl) added to that term, and pulltime
             against it.
Prints Markdown: the header lines, then per image and filesystem the tools' table,
the per-layer stage costs and the floor with its bounding term, then a summary.
"""

import collections
import csv
import statistics
import sys

INFLATE = ("gzip-dc", "pigz-dc", "zstd-dc")  # and every pulltime-inflate(BACKEND)
EXTRACT = ("tar-x", "pulltime-apply")
HASH = ("sha256sum", "pulltime-sha256")
NETWORK = ("curl", "curl-par")
PULLERS = ("pulltime", "ctr-native", "ctr-overlayfs", "skopeo+umoci")
# Their work is done in containerd, whose CPU is not the client's.
CLIENT_ONLY_CPU = ("ctr-native", "ctr-overlayfs")


def is_inflate(tool):
    return tool in INFLATE or tool.startswith("pulltime-inflate(")


def med(values):
    return statistics.median(values)


class Run:
    def __init__(self, results, stages, served=None):
        self.walls = collections.defaultdict(list)
        self.cpus = collections.defaultdict(list)
        self.order = []  # (fs, image) in run order
        self.tools = collections.defaultdict(list)  # (fs, image) -> tools in order
        for fs, img, tool, _r, wall, user, sys_ in csv.reader(open(results), delimiter="\t"):
            key = (fs, img)
            if key not in self.order:
                self.order.append(key)
            if tool not in self.tools[key]:
                self.tools[key].append(tool)
            self.walls[key, tool].append(float(wall))
            self.cpus[key, tool].append(float(user) + float(sys_))
        # (fs, image, tool) -> item -> [(wall, cpu)] over rounds
        self.stages = collections.defaultdict(lambda: collections.defaultdict(list))
        for fs, img, tool, _r, item, wall, user, sys_ in csv.reader(open(stages), delimiter="\t"):
            self.stages[fs, img, tool][item].append((float(wall), float(user) + float(sys_)))
        # (fs, image, tool) -> the registry's CPU s over rounds
        self.served = collections.defaultdict(list)
        for fs, img, tool, _r, cpu in csv.reader(open(served), delimiter="\t") if served else []:
            self.served[fs, img, tool].append(float(cpu))

    def serving(self, fs, img, agg=med):
        """The registry's CPU to serve every blob of `img` once: the least over the
        network tools (median over rounds, or `agg`), with the tool; a tmpfs run
        takes the figure of another filesystem's run of the image, as the network
        term does. None when not recorded."""
        for where in [fs] + [f for f, i in self.order if i == img and f != fs]:
            got = [(agg(self.served[where, img, t]), t) for t in NETWORK if self.served.get((where, img, t))]
            if got:
                s, t = min(got)
                return s, t + ("" if where == fs else f" (on {where})")
        return None

    def stage(self, fs, img, tool, agg=med):
        """item -> (wall, CPU) of a single-stage tool over its rounds (median, or
        `agg`), or {}."""
        per = self.stages.get((fs, img, tool), {})
        return {i: (agg([w for w, _ in v]), agg([c for _, c in v])) for i, v in per.items()}

    def stage_tools(self, fs, img, pick):
        return [t for t in self.tools[fs, img] if pick(t) and self.stage(fs, img, t)]


def layer_key(item):
    return int(item.lstrip("Lbloatr"))


def floor_of(run, fs, img, cores, agg=med):
    """The floor's terms, each (seconds, how), from each stage's median over the
    rounds (or `agg`, e.g. min); a term is absent where its stage was not measured."""
    terms = {}
    # Network: fastest fetch of every blob to /dev/null. It does not depend on the
    # destination, so a tmpfs run uses the ext4 run's figure for the same image.
    for where in [fs] + [f for f, i in run.order if i == img and f != fs]:
        net = [(agg(run.walls[(where, img), t]), t) for t in NETWORK if run.walls.get(((where, img), t))]
        if net:
            s, t = min(net)
            terms["network"] = (s, t + ("" if where == fs else f" (on {where})"))
            break
    # Inflate: per layer the best backend, by wall (one core) and by CPU.
    inflaters = run.stage_tools(fs, img, is_inflate)
    cpu_parts = {}
    if inflaters:
        costs = {t: run.stage(fs, img, t, agg) for t in inflaters}
        layers = sorted(set().union(*costs.values()), key=layer_key)
        best_wall = {layer: min((costs[t][layer][0], t) for t in inflaters if layer in costs[t]) for layer in layers}
        (s, t), layer = max((best_wall[x], x) for x in layers)
        terms["largest single-layer inflate"] = (s, f"{layer}, {t}")
        cpu_parts["inflate"] = sum(min(costs[t][x][1] for t in inflaters if x in costs[t]) for x in layers)
    hashers = run.stage_tools(fs, img, lambda t: t in HASH)
    if hashers:
        costs = {t: run.stage(fs, img, t, agg) for t in hashers}
        items = set().union(*costs.values())
        cpu_parts["hash"] = sum(min(costs[t][x][1] for t in hashers if x in costs[t]) for x in items)
    extractors = run.stage_tools(fs, img, lambda t: t in EXTRACT)
    if extractors:
        # Layers apply in order: the critical path is the sum of the layers.
        sums = {t: (sum(w for w, _ in run.stage(fs, img, t, agg).values()),
                    sum(c for _, c in run.stage(fs, img, t, agg).values())) for t in extractors}
        s, t = min((v[0], t) for t, v in sums.items())
        terms["extraction critical path"] = (s, f"{t}, sum of {len(run.stage(fs, img, t))} layers")
        cpu_parts["extract"] = min(v[1] for v in sums.values())
    if len(cpu_parts) == 3:
        total = sum(cpu_parts.values())
        how = " + ".join(f"{k} {v:.2f}" for k, v in cpu_parts.items())
        terms["CPU / cores"] = (total / cores, f"({how}) = {total:.2f} s CPU / {cores} cores")
    return terms


def with_registry(run, fs, img, cores, terms, agg=med):
    """The floor with the registry's CPU to serve the blobs added to the CPU term
    (it runs on the same cores here): (floor, CPU term, serving s, how), or None."""
    serving = run.serving(fs, img, agg)
    if not serving or "CPU / cores" not in terms:
        return None
    s, how = serving
    cpu = terms["CPU / cores"][0] + s / cores
    other = [v[0] for k, v in terms.items() if k != "CPU / cores"]
    return max([cpu] + other), cpu, s, how


def main():
    args = sys.argv[1:]
    served = None
    if args[:1] == ["--registry-cpu"]:
        served, args = args[1], args[2:]
    results, stages, cores = args[0], args[1], int(args[2])
    for line in args[3:]:
        print(line)
    print()
    run = Run(results, stages, served)
    summary = []
    for fs, img in run.order:
        key = (fs, img)
        terms = floor_of(run, fs, img, cores)
        floor = max(terms.values())[0] if terms else None
        bound = max(terms, key=lambda k: terms[k][0]) if terms else None
        base = med(run.walls[key, "pulltime"]) if run.walls.get((key, "pulltime")) else None

        print(f"### {img} on {fs}")
        print()
        reg = bool(run.served)
        print("| tool | median s | min s | max s | CPU s (user+sys, median) | tool / pulltime | tool / floor |"
              + (" registry CPU s (median) |" if reg else ""))
        print("|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if reg else ""))
        for t in run.tools[key]:
            v = run.walls[key, t]
            m = med(v)
            cpu = f"{med(run.cpus[key, t]):.2f}" + (" (client only)" if t in CLIENT_ONLY_CPU else "")
            vs_p = f"{m / base:.2f}x" if base else "-"
            vs_f = f"{m / floor:.2f}x" if floor else "-"
            served = run.served.get((fs, img, t))
            extra = (f" {med(served):.2f} |" if served else " - |") if reg else ""
            print(f"| {t} | {m:.2f} | {min(v):.2f} | {max(v):.2f} | {cpu} | {vs_p} | {vs_f} |{extra}")
        print()

        per_layer = run.stage_tools(fs, img, lambda t: is_inflate(t) or t in EXTRACT)
        if per_layer:
            costs = {t: run.stage(fs, img, t) for t in per_layer}
            layers = sorted(set().union(*costs.values()), key=layer_key)
            print("Single stages per layer, median wall s (CPU s):")
            print()
            print("| layer | " + " | ".join(per_layer) + " |")
            print("|---|" + "---:|" * len(per_layer))
            for x in layers:
                cells = [f"{costs[t][x][0]:.2f} ({costs[t][x][1]:.2f})" if x in costs[t] else "-" for t in per_layer]
                print(f"| {x} | " + " | ".join(cells) + " |")
            print()
            for t in run.stage_tools(fs, img, lambda t: t in HASH):
                c = run.stage(fs, img, t)
                print(f"sha256 of every blob and every tar stream with {t}: "
                      f"{sum(w for w, _ in c.values()):.2f} s wall ({sum(u for _, u in c.values()):.2f} s CPU).")
            print()

        if terms:
            print(f"The floor, the largest of these terms ({cores} cores):")
            print()
            print("| term | s | best measured by |")
            print("|---|---:|---|")
            for k, (s, how) in terms.items():
                print(f"| {'**' + k + '**' if k == bound else k} | {s:.2f} | {how} |")
            missing = [k for k in ("network", "largest single-layer inflate", "extraction critical path", "CPU / cores")
                       if k not in terms]
            line = f"| floor | {floor:.2f} | bound by {bound}"
            if missing:
                line += f"; not measured here: {', '.join(missing)}"
            print(line + " |")
            if base:
                print(f"| pulltime | {base:.2f} | pulltime / floor = {base / floor:.2f}x |")
            shared = with_registry(run, fs, img, cores, terms)
            if shared:
                f2, cpu2, s, how = shared
                print(f"| CPU / cores with the registry's | {cpu2:.2f} | the registry's {s:.2f} s of CPU to serve "
                      f"the blobs ({how}) added: it runs on the same cores here |")
                line = f"| floor with the registry's CPU | {f2:.2f} |"
                if base:
                    line += f" pulltime / that floor = {base / f2:.2f}x"
                print(line + " |")
            print()
            # The same from each stage's fastest round, against pulltime's fastest:
            # less sensitive to a round that met a slow filesystem state.
            best = floor_of(run, fs, img, cores, min)
            if best and base:
                f_min = max(best.values())[0]
                b_min = max(best, key=lambda k: best[k][0])
                p_min = min(run.walls[key, "pulltime"])
                print(f"From each stage's fastest round instead of the median: floor {f_min:.2f} s, bound by "
                      f"{b_min}; pulltime's fastest round {p_min:.2f} s = {p_min / f_min:.2f}x that floor.")
                print()
        shared = with_registry(run, fs, img, cores, terms) if terms else None
        summary.append((img, fs, floor, bound, key, shared[0] if shared else None))

    if any(row[2] for row in summary):
        print("### The floor, per image")
        print()
        pullers = [p for p in PULLERS if any(run.walls.get((row[4], p)) for row in summary)]
        shared = any(row[5] for row in summary)
        print("| image | fs | floor s | bound by | " + " | ".join(f"{p} / floor" for p in pullers) + " |"
              + (" floor with the registry's CPU s | pulltime / that |" if shared else ""))
        print("|---|---|---:|---|" + "---:|" * len(pullers) + ("---:|---:|" if shared else ""))
        for img, fs, floor, bound, key, f2 in summary:
            if not floor:
                continue
            cells = [f"{med(run.walls[key, p]) / floor:.2f}x" if run.walls.get((key, p)) else "-" for p in pullers]
            extra = ""
            if shared:
                base = run.walls.get((key, "pulltime"))
                extra = (f" {f2:.2f} | " + (f"{med(base) / f2:.2f}x" if base else "-") + " |") if f2 else " - | - |"
            print(f"| {img} | {fs} | {floor:.2f} | {bound} | " + " | ".join(cells) + " |" + extra)
        print()


if __name__ == "__main__":
    main()
