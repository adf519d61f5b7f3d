# _tl_window(n; f): every n events of the stream (this input, then the rest
# read with inputs; with -n the null input is skipped) that f keeps, emit
# {window, events, counts} where counts maps each value of f to its count; a
# last, partial window is emitted at the end of the input. f yields the key
# of an event, or nothing to skip it.
def _tl_window($n; f):
  if ($n | type) != "number" or $n < 1 then error("window size must be a positive number") else . end
  | foreach ((((., inputs) | select(. != null) | [f | tostring]) | select(length > 0) | .[0]), null) as $k (
      {window: 0, events: 0, counts: {}, emit: null};
      if $k == null then
        .emit = (if .events > 0 then {window: (.window + 1), events, counts} else null end)
      else
        .events += 1 | .counts[$k] += 1
        | if .events >= $n then
            .window += 1 | .emit = {window, events, counts} | .events = 0 | .counts = {}
          else .emit = null end
      end;
      .emit | select(. != null));

# _tl_top(m): the m largest counts as [{key, count}], largest first.
def _tl_top($m): .counts | to_entries | sort_by(-.value, .key) | .[:$m] | map({key, count: .value});
