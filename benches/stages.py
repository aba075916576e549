#!/usr/bin/env python3
"""Shares of CPU time per stage of `apiconform bench`, from `perf report` output.

    perf record -F 999 -o perf.data -- target/release/apiconform bench --cases 3000
    perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | benches/stages.py

Each sampled function is put in the first stage whose pattern its name matches (the crates and
modules each stage lives in); what matches none is `other`. Whole-program LTO inlines across
crates, so a share is the stage whose function the sample landed in, not a strict partition.
"""
import re
import sys

STAGES = [
    ("signing (HMAC, SHA, base64)", r"sha1|sha2|sha256|Sha256|Sha1|hmac|Hmac|compress|base64|digest"),
    ("generation (proptest, rand)", r"proptest|rand_|rand::|generate::|ChaCha|chacha|xorshift"),
    ("judging (oracle, analysis)", r"oracle::|case::analysis|analyze|expect_in|judge"),
    ("emulator", r"emulator::"),
    ("wire encoding and decoding (protocol, serde_json, quick-xml, url)", r"protocol::|serde_json|serde::|quick_xml|percent_encoding|form_urlencoded|url::|idna"),
    ("HTTP client and server (reqwest, hyper, h1)", r"reqwest|hyper|http::|h2::|httparse|axum|tower"),
    ("async runtime (tokio)", r"tokio|mio::|futures|parking_lot"),
    ("the run (plan, model, observe, dispatch, reports)", r"apiconform::run|apiconform::report|apiconform::world|world::"),
    ("maps and comparisons (SipHash, BTreeMap, memcmp)", r"sip::|hash_one|Hasher|memcmp|btree|BTree|HashMap|hashbrown|Filter<"),
    ("allocation (mimalloc, memcpy)", r"mi_|mimalloc|malloc|free|memcpy|memmove|memset|realloc|_rjem|alloc::"),
    ("kernel (syscalls, network stack)", r"\[k\]|entry_SYSCALL|tcp_|__x64|syscall|epoll|sock|ip_|skb|copy_user|futex|schedule"),
]

def main():
    totals = {name: 0.0 for name, _ in STAGES}
    totals["other"] = 0.0
    line_re = re.compile(r"^\s*([0-9.]+)%\s+(.*)$")
    for line in sys.stdin:
        m = line_re.match(line)
        if not m:
            continue
        share, rest = float(m.group(1)), m.group(2)
        for name, pattern in STAGES:
            if re.search(pattern, rest):
                totals[name] += share
                break
        else:
            totals["other"] += share
    width = max(len(n) for n in totals)
    for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{name:<{width}}  {share:5.1f} %")

if __name__ == "__main__":
    main()
