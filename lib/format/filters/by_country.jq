# Events counted by metadata.country, per window of n events (default 1000).
def by_country($n):
  _tl_window($n; .metadata.country // "-")
  | {window, events, countries: (_tl_top(1000) | map({country: .key, count}))};
def by_country: by_country(1000);
