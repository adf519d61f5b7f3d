# Clicks counted by metadata.button, per window of n clicks (default 1000).
def by_button($n):
  _tl_window($n; select(.type == "click") | .metadata.button // "-")
  | {window, clicks: .events, buttons: (_tl_top(1000) | map({button: .key, count}))};
def by_button: by_button(1000);
