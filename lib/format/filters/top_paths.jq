# The ten most visited paths, per window of n events (default 1000).
def top_paths($n): _tl_window($n; .path) | {window, events, top: (_tl_top(10) | map({path: .key, count}))};
def top_paths: top_paths(1000);
