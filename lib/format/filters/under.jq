# Events whose path starts with a prefix: under("/checkout").
def under($prefix): select(.path | startswith($prefix));
