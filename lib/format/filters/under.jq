# under("/checkout"): events whose path starts with a prefix.
def under($prefix): select(.path | startswith($prefix));
